"""The RTO clock of an execution: how long it has been down, when it will probably finish, what it costs.

The projected finish walks the remaining step graph (StepRun.needs) forward from now: a step that is
done keeps its real finish, a running or waiting step finishes at max(now, started + expected), a step
still to run starts when the last of its needs finishes. A step's expected duration is the median
duration of the same step_key in earlier executions that succeeded, else its estimate, else
DEFAULT_STEP_SECONDS. The longest chain (the critical path) decides the projected finish; when that
finish lies beyond the RTO target the console warns while there is still time to act.

Plain functions over plain values (`project`, `downtime_cost`); `historical_medians` is the one query.

When the ML service's recovery-time estimator answers (failover/estimates.py, a seam: failover does not import
the service), the console shows its projection instead: a Monte Carlo of the remaining step graph, with the
finished steps fixed, the running ones drawn given how long they have run, and each step's duration fitted from
its history, else its estimate. `estimator_request` builds the question, `with_estimate` puts the P50 in the
projected finish (P90 and the probability of meeting the RTO alongside). `source` says which one is shown.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from failover.choices import ExecutionStatus as ES
from failover.choices import StepStatus as SS

if TYPE_CHECKING:
    from failover.models import FailoverExecution, StepRun

DEFAULT_STEP_SECONDS = 30.0  # a step with neither history nor estimate: a short manual or scripted action
HISTORY_SAMPLES = 20  # the median is taken over at most this many most recent successful runs per step_key

DONE_STEPS = {SS.SUCCEEDED, SS.SKIPPED, SS.ROLLED_BACK, SS.ROLLBACK_FAILED}
STARTED_STEPS = {SS.RUNNING, SS.WAITING}
TERMINAL_EXECUTIONS = {
    ES.COMPLETED,
    ES.FAILED,
    ES.ROLLED_BACK,
    ES.ROLLBACK_FAILED,
    ES.CANCELLED,
    ES.REJECTED,
    ES.EXPIRED,
}
FAILOVER_TYPES = {"planned", "unplanned", "failback"}
ESTIMATOR_SIMULATIONS = 2000  # enough for a stable P50/P90 of a console's graph, quick to answer

# Which projection is shown
CRITICAL_PATH = "critical_path"  # the longest chain of expected step durations (this module)
ESTIMATOR = "estimator"  # the ML service's Monte Carlo P50
MEASURED = "measured"  # the execution is over: what happened

# RTO states (shown as text, never by colour alone)
NO_TARGET = "no_target"  # no plan, so no RTO to compare with
ON_TRACK = "on_track"  # projected finish within the target
AT_RISK = "at_risk"  # still within the target, but the projection breaches it: act now
BREACHED = "breached"  # the target has passed and the execution is still going
MET = "met"  # finished within the target
MISSED = "missed"  # finished after the target


@dataclass(frozen=True)
class StepTiming:
    """What the projection needs of a step (built from a StepRun by `timings_of`)."""

    key: str
    status: str
    needs: Sequence[str] = ()
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expected_seconds: float = DEFAULT_STEP_SECONDS
    expected_source: str = "default"  # history | estimate | default


@dataclass(frozen=True)
class StepForecast:
    key: str
    start: datetime | None
    finish: datetime | None
    projected: bool  # finish is a forecast, not a measurement
    critical: bool


@dataclass(frozen=True)
class Projection:
    now: datetime
    clock_start: datetime
    complete: bool
    target_seconds: float | None
    elapsed_seconds: float
    projected_finish: datetime
    projected_total_seconds: float
    critical_path: list[str]
    steps: dict[str, StepForecast] = field(default_factory=dict)
    source: str = CRITICAL_PATH  # CRITICAL_PATH | ESTIMATOR | MEASURED
    estimate: dict | None = None  # the estimator's answer (p50/p90/p99 seconds, probability_meet_rto …) when shown
    estimate_unavailable: str = ""  # why the estimator's projection is not shown, when it was asked

    @property
    def remaining_seconds(self) -> float:
        return max(0.0, (self.projected_finish - self.now).total_seconds())

    @property
    def state(self) -> str:
        if self.target_seconds is None:
            return NO_TARGET
        if self.complete:
            return MET if self.elapsed_seconds <= self.target_seconds else MISSED
        if self.elapsed_seconds > self.target_seconds:
            return BREACHED
        if self.projected_total_seconds > self.target_seconds:
            return AT_RISK
        return ON_TRACK

    @property
    def breach_seconds(self) -> float:
        """By how much the projection (or the measurement, once complete) exceeds the target; 0 when within."""
        if self.target_seconds is None:
            return 0.0
        return max(0.0, self.projected_total_seconds - self.target_seconds)

    @property
    def warning(self) -> bool:
        """Worth a visible warning: the target will be or has been exceeded."""
        return self.state in {AT_RISK, BREACHED, MISSED}


def expected_duration(
    step_key: str, estimate: float | None, medians: dict[str, float], default: float = DEFAULT_STEP_SECONDS
) -> tuple[float, str]:
    """(seconds, source): the historical median of the step_key, else the estimate, else the default."""
    if step_key in medians:
        return medians[step_key], "history"
    if estimate:
        return float(estimate), "estimate"
    return default, "default"


def historical_medians(execution: FailoverExecution, step_keys: Iterable[str]) -> dict[str, float]:
    """step_key → median duration_seconds of succeeded StepRuns with that key in executions triggered
    before this one (the HISTORY_SAMPLES most recent per key)."""
    from failover.models import StepRun

    keys = set(step_keys)
    if not keys:
        return {}
    rows = (
        StepRun.objects.filter(
            step_key__in=keys,
            status=SS.SUCCEEDED,
            duration_seconds__isnull=False,
            execution__triggered_at__lt=execution.triggered_at,
        )
        .exclude(execution_id=execution.pk)
        .order_by("-execution__triggered_at", "-id")
        .values_list("step_key", "duration_seconds")
    )
    samples: dict[str, list[float]] = {}
    for key, seconds in rows.iterator():
        bucket = samples.setdefault(key, [])
        if len(bucket) < HISTORY_SAMPLES:
            bucket.append(float(seconds))
    return {key: float(statistics.median(values)) for key, values in samples.items()}


def timings_of(steps: Iterable[StepRun], medians: dict[str, float]) -> list[StepTiming]:
    timings = []
    for step in steps:
        seconds, source = expected_duration(step.step_key, step.estimated_duration_seconds, medians)
        timings.append(
            StepTiming(
                key=step.step_key,
                status=step.status,
                needs=tuple(step.needs or ()),
                started_at=step.started_at,
                finished_at=step.finished_at,
                expected_seconds=seconds,
                expected_source=source,
            )
        )
    return timings


def clock_start(execution: FailoverExecution) -> datetime:
    """RTO is measured from the declared disaster when given, else from the trigger."""
    return execution.disaster_declared_at or execution.triggered_at


def project(
    steps: Sequence[StepTiming],
    *,
    now: datetime,
    start: datetime,
    target_seconds: float | None,
    finished_at: datetime | None = None,
) -> Projection:
    """Forecast the finish of an execution that started its RTO clock at `start`.

    `finished_at` set means the execution is over: the projection is the measurement."""
    if finished_at is not None:
        return _measured(steps, now=now, start=start, target_seconds=target_seconds, finished_at=finished_at)
    by_key = {s.key: s for s in steps}
    finishes: dict[str, datetime] = {}
    starts: dict[str, datetime | None] = {}
    projected: dict[str, bool] = {}
    via: dict[str, str | None] = {}  # the need whose finish made this step start (for the critical path)
    visiting: set[str] = set()

    def finish_of(key: str) -> datetime:
        if key in finishes:
            return finishes[key]
        step = by_key[key]
        if key in visiting:  # a cycle cannot run; do not loop on it
            return now
        visiting.add(key)
        expected = timedelta(seconds=max(0.0, step.expected_seconds))
        if step.status in DONE_STEPS:
            starts[key] = step.started_at
            finish = step.finished_at or step.started_at or now
            projected[key], via[key] = False, None
        elif step.status in STARTED_STEPS and step.started_at is not None:
            starts[key] = step.started_at
            finish = max(now, step.started_at + expected)
            projected[key], via[key] = True, None
        else:  # pending, or failed/lost/cancelled work that must run again before the end
            ready, latest = now, None
            for need in step.needs:
                if need in by_key:
                    need_finish = finish_of(need)
                    if need_finish >= ready:
                        ready, latest = need_finish, need
            starts[key] = ready
            finish = ready + expected
            projected[key], via[key] = True, latest
        visiting.discard(key)
        finishes[key] = finish
        return finish

    for step in steps:
        finish_of(step.key)

    end = max([now, *finishes.values()])
    last = max(finishes, key=lambda k: (finishes[k], k), default=None)
    critical: list[str] = []
    if last is not None and finishes[last] >= now:
        node: str | None = last
        while node is not None and node not in critical:
            critical.append(node)
            node = via.get(node)
        critical.reverse()
    forecasts = {
        key: StepForecast(
            key=key, start=starts.get(key), finish=finishes[key], projected=projected[key], critical=key in critical
        )
        for key in finishes
    }
    return Projection(
        now=now,
        clock_start=start,
        complete=False,
        target_seconds=float(target_seconds) if target_seconds is not None else None,
        elapsed_seconds=max(0.0, (now - start).total_seconds()),
        projected_finish=end,
        projected_total_seconds=max(0.0, (end - start).total_seconds()),
        critical_path=critical,
        steps=forecasts,
    )


def _measured(
    steps: Sequence[StepTiming], *, now: datetime, start: datetime, target_seconds: float | None, finished_at: datetime
) -> Projection:
    """A finished execution: what happened, nothing forecast."""
    forecasts = {
        s.key: StepForecast(
            key=s.key,
            start=s.started_at,
            finish=s.finished_at or (finished_at if s.started_at else None),
            projected=False,
            critical=False,
        )
        for s in steps
    }
    total = max(0.0, (finished_at - start).total_seconds())
    return Projection(
        now=now,
        clock_start=start,
        complete=True,
        target_seconds=float(target_seconds) if target_seconds is not None else None,
        elapsed_seconds=total,
        projected_finish=finished_at,
        projected_total_seconds=total,
        critical_path=[],
        steps=forecasts,
        source=MEASURED,
    )


def project_execution(execution: FailoverExecution, steps: Sequence[StepRun], now: datetime) -> Projection:
    """The projection of a stored execution (one query for the step histories)."""
    medians = historical_medians(execution, [s.step_key for s in steps])
    terminal = execution.status in TERMINAL_EXECUTIONS
    return project(
        timings_of(steps, medians),
        now=now,
        start=clock_start(execution),
        target_seconds=execution.plan.rto_seconds if execution.plan_id else None,
        finished_at=(execution.finished_at or now) if terminal else None,
    )


def _offset(value: datetime, start: datetime) -> float:
    return round(max(0.0, (value - start).total_seconds()), 3)


def estimator_request(execution: FailoverExecution, steps: Sequence[StepRun], now: datetime) -> dict[str, Any] | None:
    """The body of POST /estimate-recovery-time for what is left of a running execution, or None when there is
    nothing to estimate (finished, or no steps yet). Offsets are seconds from the RTO clock's start; failed,
    lost or cancelled steps count as still to run, as in `project`."""
    if execution.status in TERMINAL_EXECUTIONS or not steps:
        return None
    start = clock_start(execution)
    keys = {s.step_key for s in steps}
    body_steps = []
    for step in steps:
        item: dict[str, Any] = {
            "key": step.step_key,
            "needs": [need for need in (step.needs or ()) if need in keys],
            "action": step.action or "noop",
            "estimate": float(step.estimated_duration_seconds) if step.estimated_duration_seconds else None,
            "gate": bool(step.approval),
        }
        if step.status in DONE_STEPS:
            item["done_at"] = _offset(min(step.finished_at or step.started_at or now, now), start)
        elif step.status in STARTED_STEPS and step.started_at is not None:
            item["started_at"] = _offset(min(step.started_at, now), start)
        body_steps.append(item)
    body: dict[str, Any] = {
        "steps": body_steps,
        "now_offset": _offset(now, start),
        "simulations": ESTIMATOR_SIMULATIONS,
        "seed": execution.pk % 2**32,  # the same question gets the same answer on every refresh
        "parallelism": execution.parallelism,
    }
    if execution.plan_id and execution.plan.rto_seconds:
        body["rto_seconds"] = float(execution.plan.rto_seconds)
    return body


def with_estimate(projection: Projection, answer: dict[str, Any]) -> Projection:
    """The projection with the estimator's P50 as its projected finish (the step bars and the critical path stay
    the critical-path forecast's), or unchanged, saying why, when the estimator was unavailable."""
    if projection.complete:
        return projection
    if not answer.get("available") or not isinstance(answer.get("p50_seconds"), (int, float)):
        return replace(projection, estimate_unavailable=str(answer.get("reason") or "no estimate"))
    total = max(float(answer["p50_seconds"]), projection.elapsed_seconds)
    keep = ("p50_seconds", "p90_seconds", "p99_seconds", "probability_meet_rto", "simulations", "model_version")
    return replace(
        projection,
        projected_total_seconds=total,
        projected_finish=projection.clock_start + timedelta(seconds=total),
        source=ESTIMATOR,
        estimate={k: answer.get(k) for k in keep},
    )


CENT = Decimal("0.01")


def downtime_cost(seconds: float, cost_per_hour: Decimal | float | int | None) -> Decimal:
    """Cost of `seconds` of downtime at `cost_per_hour`, rounded to cents."""
    if not cost_per_hour or seconds <= 0:
        return Decimal("0.00")
    rate = Decimal(str(cost_per_hour))
    return (Decimal(str(seconds)) * rate / Decimal(3600)).quantize(CENT, rounding=ROUND_HALF_UP)


def causes_downtime(execution: FailoverExecution) -> bool:
    """A real failover or failback takes service down; a test, runbook run or dry run does not."""
    return execution.execution_type in FAILOVER_TYPES and not execution.dry_run
