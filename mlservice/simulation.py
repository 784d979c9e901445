"""Monte Carlo of a recovery: the composed step DAG run many times with random step durations.

Model of one run (what the engine does, failover/engine/runner.py):
- the execution may first wait for its go/no-go approval levels (`start_delay`, a distribution);
- a step starts once every step it needs has finished and a parallelism slot is free; a manual step or a
  step approval gate holds its slot while it waits for a person (its `wait` distribution) and then does
  its work (its `duration` distribution);
- the recovery time is the finish of the last step, measured from the start of the clock.

Vectorised over simulations with NumPy: every step is one array operation over all runs. Without a
parallelism limit (or with one at least as large as the step count) the answer is exact: a step finishes
at max(finish of its needs) + its duration. With a limit it is the serial schedule-generation scheme:
steps are taken in the engine's dispatch order (a deterministic run with mean durations, higher priority
first among the ready steps) and each takes the slot that lets it start soonest. The engine dispatches
dynamically per run, so with scarce slots the two can differ; `reference_makespan` is an exact
event-driven simulation of the engine's rule for one run, and the tests compare the two.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MAX_SIMULATIONS = 100_000
MAX_STEPS = 2_000
MAX_CELLS = 20_000_000  # simulations x steps: the finish matrix is this many floats (160 MB at most)
DISTRIBUTIONS = ("fixed", "lognormal", "exponential", "uniform", "empirical")


class SimulationInputError(ValueError):
    """Input the simulation cannot run: `field` names it (dotted path)."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Distribution:
    """A duration distribution in seconds.

    fixed: value · lognormal: median, sigma (of the log) · exponential: mean · uniform: low, high ·
    empirical: samples (resampled with replacement)."""

    kind: str
    value: float = 0.0
    median: float = 0.0
    sigma: float = 0.0
    mean: float = 0.0
    low: float = 0.0
    high: float = 0.0
    samples: tuple[float, ...] = ()

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.kind == "fixed":
            return np.full(n, self.value)
        if self.kind == "lognormal":
            if self.sigma == 0:
                return np.full(n, self.median)
            return self.median * np.exp(self.sigma * rng.standard_normal(n))
        if self.kind == "exponential":
            return rng.exponential(self.mean, n)
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high, n)
        if self.kind == "empirical":
            return rng.choice(np.asarray(self.samples, dtype=float), size=n, replace=True)
        raise ValueError(f"unknown distribution {self.kind!r}")

    def expected(self) -> float:
        if self.kind == "fixed":
            return self.value
        if self.kind == "lognormal":
            return self.median * math.exp(self.sigma**2 / 2)
        if self.kind == "exponential":
            return self.mean
        if self.kind == "uniform":
            return (self.low + self.high) / 2
        return float(np.mean(self.samples))

    def describe(self) -> dict[str, object]:
        if self.kind == "fixed":
            return {"type": "fixed", "value": self.value}
        if self.kind == "lognormal":
            return {"type": "lognormal", "median": self.median, "sigma": self.sigma}
        if self.kind == "exponential":
            return {"type": "exponential", "mean": self.mean}
        if self.kind == "uniform":
            return {"type": "uniform", "low": self.low, "high": self.high}
        return {"type": "empirical", "samples": len(self.samples)}


ZERO = Distribution("fixed", value=0.0)


@dataclass
class SimStep:
    key: str
    duration: Distribution
    needs: list[str] = field(default_factory=list)
    wait: Distribution = ZERO  # a person: manual confirmation or approval gate, holding the slot
    priority: float = 0.0  # higher dispatches first (the engine's tier + critical path priority)
    source: str = "given"  # history | estimate | default | given
    done_at: float | None = None  # already finished at this offset (a running execution)
    started_at: float | None = None  # already running since this offset


def _finite_nonnegative(value: float, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise SimulationInputError(name, "must be a finite number")
    if value < 0:
        raise SimulationInputError(name, "must not be negative")
    return float(value)


def distribution_from(spec: dict, name: str) -> Distribution:
    """A Distribution from its JSON form ({"type": …, params}); SimulationInputError naming the field."""
    kind = spec.get("type")
    if kind not in DISTRIBUTIONS:
        raise SimulationInputError(f"{name}.type", f"must be one of {', '.join(DISTRIBUTIONS)}")
    allowed = {
        "fixed": {"value"},
        "lognormal": {"median", "sigma"},
        "exponential": {"mean"},
        "uniform": {"low", "high"},
        "empirical": {"samples"},
    }[kind]
    extra = sorted(set(spec) - allowed - {"type"})
    if extra:
        raise SimulationInputError(f"{name}.{extra[0]}", f"is not a parameter of a {kind} distribution")
    missing = sorted(allowed - set(spec))
    if missing:
        raise SimulationInputError(f"{name}.{missing[0]}", "is required")
    if kind == "empirical":
        samples = spec["samples"]
        if not isinstance(samples, list) or not samples:
            raise SimulationInputError(f"{name}.samples", "must be a non-empty list of durations")
        if len(samples) > 10_000:
            raise SimulationInputError(f"{name}.samples", "at most 10000 samples")
        values = tuple(_finite_nonnegative(v, f"{name}.samples[{i}]") for i, v in enumerate(samples))
        return Distribution("empirical", samples=values)
    params = {key: _finite_nonnegative(spec[key], f"{name}.{key}") for key in allowed}
    if kind == "lognormal" and params["median"] <= 0:
        raise SimulationInputError(f"{name}.median", "must be greater than 0")
    if kind == "lognormal" and params["sigma"] > 5:
        raise SimulationInputError(f"{name}.sigma", "must be at most 5")
    if kind == "uniform" and params["high"] < params["low"]:
        raise SimulationInputError(f"{name}.high", "must not be below low")
    return Distribution(kind, **params)


def kahn_order(children: list[list[int]], indegree: list[int]) -> list[int]:
    """Kahn's topological order of nodes 0..n-1 (children[i]: the nodes that need i; indegree[i]: how many
    nodes i needs). Shorter than n when there is a cycle; `indegree` is left > 0 exactly on the cycle's side."""
    ready = [i for i, d in enumerate(indegree) if d == 0]
    order: list[int] = []
    while ready:
        i = ready.pop()
        order.append(i)
        for child in children[i]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return order


def check_graph(steps: Sequence[SimStep]) -> list[int]:
    """A topological order (indices); SimulationInputError on a duplicate key, an unknown need or a cycle."""
    index: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.key in index:
            raise SimulationInputError(f"steps[{i}].key", f"duplicate step key {step.key!r}")
        index[step.key] = i
    indegree = [0] * len(steps)
    children: list[list[int]] = [[] for _ in steps]
    for i, step in enumerate(steps):
        for j, need in enumerate(dict.fromkeys(step.needs)):
            if need not in index:
                raise SimulationInputError(f"steps[{i}].needs[{j}]", f"unknown step {need!r}")
            if need == step.key:
                raise SimulationInputError(f"steps[{i}].needs[{j}]", f"step {step.key!r} needs itself (a cycle)")
            indegree[i] += 1
            children[index[need]].append(i)
    order = kahn_order(children, indegree)
    if len(order) != len(steps):
        stuck = sorted(steps[i].key for i, d in enumerate(indegree) if d > 0)
        raise SimulationInputError("steps", f"the step graph has a cycle through {', '.join(stuck[:20])}")
    return order


def reference_makespan(
    durations: Sequence[float],
    needs: Sequence[Sequence[int]],
    priority: Sequence[float],
    parallelism: int | None,
    start: float = 0.0,
) -> tuple[float, list[float]]:
    """One run of the engine's rule, exactly: event-driven, a freed slot goes to the ready step with the
    highest priority (ties: lower index). Returns (makespan, finish per step)."""
    n = len(durations)
    remaining = [len(set(ns)) for ns in needs]
    children: list[list[int]] = [[] for _ in range(n)]
    for i, ns in enumerate(needs):
        for j in set(ns):
            children[j].append(i)
    limit = parallelism or n
    ready = [(-priority[i], i) for i in range(n) if remaining[i] == 0]
    heapq.heapify(ready)
    running: list[tuple[float, int]] = []
    finish = [0.0] * n
    now = start
    while ready or running:
        while ready and len(running) < limit:
            _, i = heapq.heappop(ready)
            finish[i] = now + durations[i]
            heapq.heappush(running, (finish[i], i))
        now, i = heapq.heappop(running)
        done = [i]
        while running and running[0][0] == now:
            done.append(heapq.heappop(running)[1])
        for d in done:
            for child in children[d]:
                remaining[child] -= 1
                if remaining[child] == 0:
                    heapq.heappush(ready, (-priority[child], child))
    return (max(finish) if n else start), finish


def dispatch_order(steps: Sequence[SimStep], topo: list[int], parallelism: int | None) -> list[int]:
    """The engine's dispatch order in a run with mean durations (ties kept topological)."""
    index = {s.key: i for i, s in enumerate(steps)}
    needs = [[index[k] for k in s.needs] for s in steps]
    means = [s.duration.expected() + s.wait.expected() for s in steps]
    rank = {i: r for r, i in enumerate(topo)}
    prio = [s.priority - rank[i] * 1e-9 for i, s in enumerate(steps)]
    _, finish = reference_makespan(means, needs, prio, parallelism)
    starts = [finish[i] - means[i] for i in range(len(steps))]
    order = sorted(range(len(steps)), key=lambda i: (starts[i], -prio[i]))
    # a zero-duration need can share its dependant's start: keep needs before dependants
    position = {i: p for p, i in enumerate(order)}
    placed: set[int] = set()
    fixed: list[int] = []

    def place(i: int) -> None:
        if i in placed:
            return
        for j in sorted(needs[i], key=lambda j: position[j]):
            place(j)
        placed.add(i)
        fixed.append(i)

    for i in order:
        place(i)
    return fixed


@dataclass
class SimulationResult:
    totals: np.ndarray  # seconds, one per simulation
    critical_counts: dict[str, float]  # step key → share of runs where it finished last

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.totals, q))

    def probability_within(self, seconds: float) -> float:
        return float(np.mean(self.totals <= seconds))


def simulate(
    steps: Sequence[SimStep],
    *,
    parallelism: int | None = None,
    simulations: int = 10_000,
    seed: int | None = None,
    start_delay: Distribution = ZERO,
    now_offset: float = 0.0,
) -> SimulationResult:
    """Run the Monte Carlo. `now_offset` (a running execution): steps still to run cannot start before it;
    steps with `done_at` keep that finish; a step with `started_at` finishes after now, its duration drawn
    given that it has already run for (now - started_at)."""
    if not 1 <= simulations <= MAX_SIMULATIONS:
        raise SimulationInputError("simulations", f"must be between 1 and {MAX_SIMULATIONS}")
    if not steps:
        raise SimulationInputError("steps", "at least one step is needed")
    if len(steps) > MAX_STEPS:
        raise SimulationInputError("steps", f"at most {MAX_STEPS} steps")
    if simulations * len(steps) > MAX_CELLS:
        raise SimulationInputError(
            "simulations", f"simulations x steps must be at most {MAX_CELLS:,} (here {simulations * len(steps):,})"
        )
    if parallelism is not None and parallelism < 1:
        raise SimulationInputError("parallelism", "must be at least 1")
    topo = check_graph(steps)
    rng = np.random.default_rng(seed)
    n, count = simulations, len(steps)
    index = {s.key: i for i, s in enumerate(steps)}
    needs = [sorted({index[k] for k in s.needs}) for s in steps]
    limited = parallelism is not None and parallelism < count
    order = dispatch_order(steps, topo, parallelism) if limited else topo
    # what has finished or is running goes first: it holds its slot from the start
    order = (
        [i for i in order if steps[i].done_at is not None]
        + [i for i in order if steps[i].done_at is None and steps[i].started_at is not None]
        + [i for i in order if steps[i].done_at is None and steps[i].started_at is None]
    )
    origin = start_delay.sample(n, rng) if now_offset == 0 else np.zeros(n)
    floor = np.maximum(origin, now_offset)
    finish = np.empty((count, n))
    slots = np.zeros((n, parallelism)) if limited else None
    rows = np.arange(n)
    for i in order:
        step = steps[i]
        if step.done_at is not None:
            finish[i] = step.done_at
            continue
        work = step.duration.sample(n, rng) + step.wait.sample(n, rng)
        if step.started_at is not None:
            elapsed = max(0.0, now_offset - step.started_at)
            work = _remaining_given_elapsed(step, work, elapsed, rng) + now_offset - step.started_at
            finish[i] = step.started_at + work
            if slots is not None:  # it holds a slot until it finishes
                slot = slots.argmin(axis=1)
                slots[rows, slot] = np.maximum(slots[rows, slot], finish[i])
            continue
        ready = floor.copy()
        for j in needs[i]:
            np.maximum(ready, finish[j], out=ready)
        if slots is None:
            finish[i] = ready + work
            continue
        free = slots <= ready[:, None]
        latest_free = np.where(free, slots, -np.inf).argmax(axis=1)
        slot = np.where(free.any(axis=1), latest_free, slots.argmin(axis=1))
        begin = np.maximum(ready, slots[rows, slot])
        finish[i] = begin + work
        slots[rows, slot] = finish[i]
    totals = finish.max(axis=0)
    last = finish.argmax(axis=0)
    counts = np.bincount(last, minlength=count) / n
    critical = {steps[i].key: float(counts[i]) for i in np.argsort(-counts)[:5] if counts[i] > 0}
    return SimulationResult(totals=totals, critical_counts=critical)


def _remaining_given_elapsed(step: SimStep, work: np.ndarray, elapsed: float, rng: np.random.Generator) -> np.ndarray:
    """Durations drawn given that the step has already run `elapsed` seconds: draws shorter than that are
    redrawn (up to 20 rounds); what is still shorter is set to the elapsed time (the step ends now)."""
    work = work.copy()
    for _ in range(20):
        short = work < elapsed
        if not short.any():
            break
        work[short] = step.duration.sample(int(short.sum()), rng) + step.wait.sample(int(short.sum()), rng)
    return np.maximum(work, elapsed) - elapsed


def summary(result: SimulationResult, rto_seconds: float | None) -> dict[str, object]:
    t = result.totals
    out: dict[str, object] = {
        "p50_seconds": round(float(np.percentile(t, 50)), 3),
        "p90_seconds": round(float(np.percentile(t, 90)), 3),
        "p99_seconds": round(float(np.percentile(t, 99)), 3),
        "mean_seconds": round(float(t.mean()), 3),
        "min_seconds": round(float(t.min()), 3),
        "max_seconds": round(float(t.max()), 3),
        "simulations": int(t.size),
        "last_to_finish": result.critical_counts,
    }
    if rto_seconds is not None:
        out["rto_seconds"] = rto_seconds
        out["probability_meet_rto"] = round(result.probability_within(rto_seconds), 4)
    return out
