"""Impact severity scores from BIA figures, and the recovery order that costs the least downtime.

Scores (0-100, documented formulas, not a trained model: there are no labelled severities to learn from).
Each input's contribution is returned with the score, so a DR manager sees why.

    log_scale(x, low, high) = 100 · clamp(log10(x / low) / log10(high / low), 0, 1)

- financial = log_scale(exposure, 10 000, 100 000 000), exposure = max(downtime cost at 24 h,
  24 x revenue per hour) + recovery cost (currency units as entered).
- operational = 40 · share of affected processes that are critical + 30 · log_scale(employees, 10, 100 000)/100
  + 30 · log_scale(customers, 100, 10 000 000)/100.
- reputation = 30 · sentiment (positive 0, neutral 0.25, negative 0.6, severe 1) + 25 · media exposure
  + 25 · brand damage (low 0, medium 0.4, high 0.75, critical 1) + 20 · min(churn % / 10, 1).
- regulatory = 50 · log_scale(estimated fines, 10 000, 50 000 000)/100 + 30 · min(violations / 4, 1)
  + 20 · min(frameworks / 4, 1).
- overall = 0.4 financial + 0.2 each of the others; level: < 25 low, < 50 medium, < 75 high, else critical.

Recovery order: applications j with recovery time p_j, downtime cost w_j per hour, the dependency map
(j starts only once everything it depends on is recovered) and at most m recoveries at once. Objective:
total downtime cost Σ_j w_j · C_j / 3600, every application down from the disaster (t = 0) until its
recovery completes at C_j. This is P|prec|Σ w_j C_j, NP-hard in general.

- A list (an order that respects the dependencies) is turned into a schedule by the serial rule: each
  application starts as early as its dependencies and a free slot allow. Taking the applications of any
  schedule in order of their start, this rule starts each no later than that schedule did, so the best
  list is an optimal schedule (the objective only grows with completion times).
- Up to EXACT_LIMIT applications: depth-first search over all lists with a lower bound that prunes
  (exact: the optimum). The tests compare it with brute force over every permutation on ≤ 8 applications.
- Above it: the best of three priority rules (weighted shortest processing time; the weight of the
  application and everything waiting for it over its time; the longest chain first), improved by moving
  single applications while the cost falls (at most SEARCH_WORK_LIMIT placements: a bounded answer time).
  No a-priori factor is claimed for this heuristic; every answer carries a certified bound instead: its cost
  divided by a lower bound on the optimum, the larger of
  (a) Σ w_j · (longest dependency chain ending at j), ignoring the slot limit, and (b) Eastman, Even and
  Isaacs' bound for m identical machines, ignoring the dependencies:
  (1/m)·(single-machine WSPT optimum) + ((m - 1)/(2m))·Σ w_j p_j.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlservice.simulation import kahn_order

EXACT_LIMIT = 8  # the exact search: 8! orders at worst (~1 s for identical applications; 9 took 6.5 s)
# The heuristic's local search stops after this many application placements (~1 s on one core whatever the
# size; a full search of 100 applications took 12 s). Its answer still carries its certified ratio.
SEARCH_WORK_LIMIT = 2_000_000
MAX_APPLICATIONS = 500

# The figures scores() reads: the fields of analytics.ImpactAnalysis it uses.
BIA_FIELDS = (
    "revenue_per_hour",
    "downtime_cost_24h",
    "recovery_cost",
    "affected_processes",
    "critical_processes",
    "affected_employees",
    "affected_customers",
    "customer_sentiment",
    "media_exposure",
    "brand_damage",
    "customer_churn_percent",
    "estimated_fines",
    "potential_violations",
    "regulatory_frameworks",
)
SENTIMENT = {"positive": 0.0, "neutral": 0.25, "negative": 0.6, "severe": 1.0}
LEVEL = {"low": 0.0, "medium": 0.4, "high": 0.75, "critical": 1.0}


class ImpactInputError(ValueError):
    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def log_scale(value: float, low: float, high: float) -> float:
    if value <= low:
        return 0.0
    return 100.0 * min(1.0, math.log10(value / low) / math.log10(high / low))


def _level(score: float) -> str:
    return "low" if score < 25 else "medium" if score < 50 else "high" if score < 75 else "critical"


def scores(bia: dict[str, Any]) -> dict[str, Any]:
    """The four scores and the overall one from BIA figures (the fields of analytics.ImpactAnalysis)."""
    exposure = max(float(bia["downtime_cost_24h"]), 24 * float(bia["revenue_per_hour"])) + float(bia["recovery_cost"])
    financial = log_scale(exposure, 1e4, 1e8)
    affected = list(bia["affected_processes"])
    critical = list(bia["critical_processes"])
    processes = set(affected) | set(critical)
    critical_share = len(set(critical)) / len(processes) if processes else 0.0
    employees = log_scale(float(bia["affected_employees"]), 10, 1e5)
    customers = log_scale(float(bia["affected_customers"]), 100, 1e7)
    operational = 40 * critical_share + 0.3 * employees + 0.3 * customers
    churn = min(float(bia["customer_churn_percent"]) / 10, 1.0)
    reputation = (
        30 * SENTIMENT[bia["customer_sentiment"]]
        + 25 * LEVEL[bia["media_exposure"]]
        + 25 * LEVEL[bia["brand_damage"]]
        + 20 * churn
    )
    fines = log_scale(float(bia["estimated_fines"]), 1e4, 5e7)
    violations = min(len(bia["potential_violations"]) / 4, 1.0)
    frameworks = min(len(bia["regulatory_frameworks"]) / 4, 1.0)
    regulatory = 0.5 * fines + 30 * violations + 20 * frameworks
    overall = 0.4 * financial + 0.2 * (operational + reputation + regulatory)
    r = lambda x: round(x, 1)  # noqa: E731
    return {
        "financial": {"score": r(financial), "inputs": {"exposure": round(exposure, 2)}},
        "operational": {
            "score": r(operational),
            "inputs": {
                "critical_share": round(critical_share, 3),
                "employees_part": r(0.3 * employees),
                "customers_part": r(0.3 * customers),
            },
        },
        "reputation": {
            "score": r(reputation),
            "inputs": {
                "sentiment_part": r(30 * SENTIMENT[bia["customer_sentiment"]]),
                "media_part": r(25 * LEVEL[bia["media_exposure"]]),
                "brand_part": r(25 * LEVEL[bia["brand_damage"]]),
                "churn_part": r(20 * churn),
            },
        },
        "regulatory": {
            "score": r(regulatory),
            "inputs": {
                "fines_part": r(0.5 * fines),
                "violations_part": r(30 * violations),
                "frameworks_part": r(20 * frameworks),
            },
        },
        "overall": {"score": r(overall), "level": _level(overall)},
    }


# --- Recovery order ---------------------------------------------------------------------------


@dataclass
class App:
    key: str
    recovery_seconds: float
    cost_per_hour: float
    depends_on: list[str] = field(default_factory=list)


@dataclass
class Schedule:
    order: list[str]
    start: dict[str, float]
    finish: dict[str, float]
    cost: float  # currency units

    def as_dict(self) -> list[dict[str, Any]]:
        return [
            {
                "application": key,
                "start_seconds": round(self.start[key], 3),
                "finish_seconds": round(self.finish[key], 3),
            }
            for key in self.order
        ]


def check_apps(apps: Sequence[App]) -> list[int]:
    """A topological order; ImpactInputError on duplicates, unknown dependencies or a cycle."""
    if not apps:
        raise ImpactInputError("applications", "at least one application is needed")
    if len(apps) > MAX_APPLICATIONS:
        raise ImpactInputError("applications", f"at most {MAX_APPLICATIONS} applications")
    index: dict[str, int] = {}
    for i, app in enumerate(apps):
        if app.key in index:
            raise ImpactInputError(f"applications[{i}].id", f"duplicate application {app.key!r}")
        index[app.key] = i
    indegree = [0] * len(apps)
    children: list[list[int]] = [[] for _ in apps]
    for i, app in enumerate(apps):
        for j, dep in enumerate(dict.fromkeys(app.depends_on)):
            if dep not in index:
                raise ImpactInputError(f"applications[{i}].depends_on[{j}]", f"unknown application {dep!r}")
            if dep == app.key:
                raise ImpactInputError(f"applications[{i}].depends_on[{j}]", "an application cannot depend on itself")
            indegree[i] += 1
            children[index[dep]].append(i)
    order = kahn_order(children, indegree)
    if len(order) != len(apps):
        stuck = sorted(apps[i].key for i, d in enumerate(indegree) if d > 0)
        raise ImpactInputError("applications", f"the dependency map has a cycle through {', '.join(stuck[:20])}")
    return order


def decode(apps: Sequence[App], order: Sequence[int], slots: int) -> tuple[float, list[float], list[float]]:
    """Serial rule: (cost, start, finish) of a dependency-respecting list."""
    index = {a.key: i for i, a in enumerate(apps)}
    free = [0.0] * slots
    start = [0.0] * len(apps)
    finish = [0.0] * len(apps)
    cost = 0.0
    for i in order:
        ready = max((finish[index[d]] for d in apps[i].depends_on), default=0.0)
        s = min(range(slots), key=lambda k: free[k])
        begin = max(ready, free[s])
        start[i], finish[i] = begin, begin + apps[i].recovery_seconds
        free[s] = finish[i]
        cost += apps[i].cost_per_hour * finish[i] / 3600
    return cost, start, finish


def lower_bound(apps: Sequence[App], slots: int, topo: Sequence[int]) -> float:
    index = {a.key: i for i, a in enumerate(apps)}
    chain = [0.0] * len(apps)
    for i in topo:
        chain[i] = apps[i].recovery_seconds + max((chain[index[d]] for d in apps[i].depends_on), default=0.0)
    bound_chains = sum(a.cost_per_hour * chain[i] for i, a in enumerate(apps)) / 3600
    by_ratio = sorted(apps, key=lambda a: -(a.cost_per_hour / a.recovery_seconds) if a.recovery_seconds else -math.inf)
    t, single = 0.0, 0.0
    for a in by_ratio:
        t += a.recovery_seconds
        single += a.cost_per_hour * t
    eei = (single / slots + (slots - 1) / (2 * slots) * sum(a.cost_per_hour * a.recovery_seconds for a in apps)) / 3600
    return max(bound_chains, eei)


def _exact(apps: Sequence[App], slots: int) -> list[int]:
    index = {a.key: i for i, a in enumerate(apps)}
    needs = [[index[d] for d in a.depends_on] for a in apps]
    n = len(apps)
    best_cost, best_order = math.inf, list(range(n))
    order: list[int] = []
    placed = [False] * n
    finish = [0.0] * n

    def search(free: list[float], cost: float) -> None:
        nonlocal best_cost, best_order
        if len(order) == n:
            if cost < best_cost - 1e-9:
                best_cost, best_order = cost, list(order)
            return
        earliest = min(free)
        bound = cost
        for j in range(n):
            if not placed[j]:
                ready = max([earliest, *(finish[k] for k in needs[j] if placed[k])])
                bound += apps[j].cost_per_hour * (ready + apps[j].recovery_seconds) / 3600
        if bound >= best_cost - 1e-9:
            return
        for j in range(n):
            if placed[j] or not all(placed[k] for k in needs[j]):
                continue
            ready = max((finish[k] for k in needs[j]), default=0.0)
            s = min(range(slots), key=lambda k: free[k])
            begin = max(ready, free[s])
            finish[j] = begin + apps[j].recovery_seconds
            new_free = list(free)
            new_free[s] = finish[j]
            placed[j] = True
            order.append(j)
            search(new_free, cost + apps[j].cost_per_hour * finish[j] / 3600)
            order.pop()
            placed[j] = False

    search([0.0] * slots, 0.0)
    return best_order


def _list_by(apps: Sequence[App], key: list[float]) -> list[int]:
    """Greedy list: among applications whose dependencies are listed, the highest key first."""
    index = {a.key: i for i, a in enumerate(apps)}
    needs = [{index[d] for d in a.depends_on} for a in apps]
    listed: set[int] = set()
    order: list[int] = []
    while len(order) < len(apps):
        available = [i for i in range(len(apps)) if i not in listed and needs[i] <= listed]
        choice = max(available, key=lambda i: (key[i], -i))
        order.append(choice)
        listed.add(choice)
    return order


def _feasible(apps: Sequence[App], order: Sequence[int]) -> bool:
    index = {a.key: i for i, a in enumerate(apps)}
    seen: set[int] = set()
    for i in order:
        if any(index[d] not in seen for d in apps[i].depends_on):
            return False
        seen.add(i)
    return True


def _heuristic(apps: Sequence[App], slots: int, topo: Sequence[int]) -> list[int]:
    index = {a.key: i for i, a in enumerate(apps)}
    n = len(apps)
    children: list[list[int]] = [[] for _ in apps]
    for i, a in enumerate(apps):
        for d in a.depends_on:
            children[index[d]].append(i)
    descendants: list[set[int]] = [set() for _ in apps]
    tail = [0.0] * n
    for i in reversed(list(topo)):
        for c in children[i]:
            descendants[i] |= descendants[c] | {c}
        tail[i] = apps[i].recovery_seconds + max((tail[c] for c in children[i]), default=0.0)
    eps = 1e-9
    wspt = [a.cost_per_hour / (a.recovery_seconds + eps) for a in apps]
    unlocked = [
        (a.cost_per_hour + sum(apps[d].cost_per_hour for d in descendants[i])) / (a.recovery_seconds + eps)
        for i, a in enumerate(apps)
    ]
    candidates = [_list_by(apps, wspt), _list_by(apps, unlocked), _list_by(apps, tail)]
    best = min(candidates, key=lambda o: decode(apps, o, slots)[0])
    best_cost = decode(apps, best, slots)[0]
    improved, rounds, work = True, 0, 0
    while improved and rounds < 20:  # move one application to another place while that lowers the cost
        improved, rounds = False, rounds + 1
        for a in range(n):
            for b in range(n):
                if a == b:
                    continue
                work += n
                if work > SEARCH_WORK_LIMIT:  # a bounded answer time: what is found so far, still certified
                    return best
                trial = list(best)
                trial.insert(b, trial.pop(a))
                if not _feasible(apps, trial):
                    continue
                cost = decode(apps, trial, slots)[0]
                if cost < best_cost - 1e-9:
                    best, best_cost, improved = trial, cost, True
    return best


def recovery_order(apps: Sequence[App], parallelism: int | None) -> dict[str, Any]:
    topo = check_apps(apps)
    for i, app in enumerate(apps):
        for name in ("recovery_seconds", "cost_per_hour"):
            value = getattr(app, name)
            if not math.isfinite(value) or value < 0:
                raise ImpactInputError(f"applications[{i}].{name}", "must be a finite number, not negative")
    slots = min(parallelism or len(apps), len(apps))
    exact = len(apps) <= EXACT_LIMIT
    order = _exact(apps, slots) if exact else _heuristic(apps, slots, topo)
    cost, start, finish = decode(apps, order, slots)
    bound = lower_bound(apps, slots, topo)
    keys = [apps[i].key for i in order]
    schedule = Schedule(keys, {apps[i].key: start[i] for i in order}, {apps[i].key: finish[i] for i in order}, cost)
    naive_order = _list_by(apps, [-float(i) for i in range(len(apps))])  # as listed, dependencies first
    naive_cost = decode(apps, naive_order, slots)[0]
    return {
        "order": keys,
        "schedule": schedule.as_dict(),
        "total_downtime_cost": round(cost, 2),
        "method": "exact" if exact else "heuristic",
        "optimal": exact,
        "lower_bound": round(bound, 2),
        "certified_ratio": round(cost / bound, 4) if bound > 0 else 1.0,
        "parallelism": slots,
        "cost_in_given_order": round(naive_cost, 2),
    }
