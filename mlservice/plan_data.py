"""What the models read from the platform's database: a plan's composed step graph, step histories, and
the measured runs `ml train` learns from. Reads only."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.exceptions import Conflict, NotFound

HISTORY_LIMIT = 50  # most recent successful runs per step_key
FAILOVER_TYPES = ("planned", "unplanned", "failback")


@dataclass
class PlanStep:
    key: str
    action: str
    needs: list[str]
    estimate: float | None
    gate: bool
    tier: int
    priority: int
    application: str  # slug (the step_key's prefix)


@dataclass
class PlanGraph:
    plan_id: str
    rto_seconds: float
    strategy: str
    tier: int
    parallelism: int | None
    approval_levels: int
    steps: list[PlanStep] = field(default_factory=list)


def find_plan(reference: str) -> Any:
    """The plan by numeric id or plan_id (core.lookups' rule); NotFound naming the field."""
    from plans.models import DRPlan

    reference = str(reference)
    lookup = {"pk": int(reference)} if reference.isdigit() else {"plan_id": reference}
    try:
        return DRPlan.objects.get(**lookup)
    except DRPlan.DoesNotExist:
        raise NotFound(f"plan {reference!r} does not exist", field="plan") from None


def plan_graph(plan: Any, category: str = "failover") -> PlanGraph:
    """The plan's runbooks of `category` composed as a failover would (failover.engine.graph), latest version
    where none is approved yet. Conflict (409) when the plan has no such runbook."""
    from failover.engine.graph import assign_priorities, build_plan_steps

    try:
        specs = assign_priorities(build_plan_steps(plan, category, include_unapproved=True))
    except Conflict as exc:
        raise Conflict(exc.message, field="plan", code=exc.code) from None
    tiers = list(plan.applications.values_list("tier", flat=True))
    return PlanGraph(
        plan_id=plan.plan_id,
        rto_seconds=float(plan.rto_seconds),
        strategy=plan.strategy,
        tier=min(tiers) if tiers else 3,
        parallelism=None,
        approval_levels=plan.approval_levels.count(),
        steps=[
            PlanStep(
                key=s.step_key,
                action=s.action,
                needs=list(s.needs),
                estimate=float(s.estimated_duration_seconds) if s.estimated_duration_seconds else None,
                gate=bool(s.approval),
                tier=s.tier,
                priority=s.priority,
                application=s.step_key.split(".", 1)[0],
            )
            for s in specs
        ],
    )


def step_history(
    keys: Iterable[str], before: datetime | None = None, exclude_execution: int | None = None
) -> dict[str, list[float]]:
    """step_key → durations of its successful runs in real (not dry-run) executions, newest first."""
    from failover.models import StepRun

    keys = set(keys)
    if not keys:
        return {}
    rows = StepRun.objects.filter(
        step_key__in=keys, status="succeeded", duration_seconds__isnull=False, execution__dry_run=False
    )
    if before is not None:
        rows = rows.filter(execution__triggered_at__lt=before)
    if exclude_execution is not None:
        rows = rows.exclude(execution_id=exclude_execution)
    samples: dict[str, list[float]] = defaultdict(list)
    for key, seconds in rows.order_by("-execution__triggered_at", "-id").values_list("step_key", "duration_seconds"):
        if len(samples[key]) < HISTORY_LIMIT:
            samples[key].append(float(seconds))
    return dict(samples)


def measured_steps() -> list[tuple[str, float, float]]:
    """(action, estimate, measured seconds) of every successful real step with an estimate: calibration."""
    from failover.models import StepRun

    rows = StepRun.objects.filter(
        status="succeeded",
        duration_seconds__isnull=False,
        estimated_duration_seconds__isnull=False,
        execution__dry_run=False,
    ).values_list("action", "estimated_duration_seconds", "duration_seconds")
    return [(a, float(e), float(d)) for a, e, d in rows]


def measured_test_ratios() -> list[dict[str, Any]]:
    """Recorded DR tests with a measured RTO, next to the sum of their plan's failover strategy step
    estimates (the plan's own estimate of its recovery): the spread of actual / estimate calibrates the
    generator's run-to-run variation."""
    from analytics.models import DRTestResult
    from plans.models import StrategyStep

    estimates: dict[int, float] = defaultdict(float)
    for plan_id, seconds in StrategyStep.objects.filter(strategy__kind="failover").values_list(
        "strategy__plan_id", "estimated_duration_seconds"
    ):
        estimates[plan_id] += float(seconds or 0)
    out = []
    for plan_id, actual in DRTestResult.objects.filter(actual_rto_seconds__isnull=False).values_list(
        "plan_id", "actual_rto_seconds"
    ):
        if estimates.get(plan_id) and actual and actual > 0:
            out.append({"plan": plan_id, "estimate": estimates[plan_id], "actual": float(actual)})
    return out


def finished_runs() -> list[Any]:
    """Real failover executions of a plan that completed, with their step rows (the RTO model's history)."""
    from failover.models import FailoverExecution

    return list(
        FailoverExecution.objects.filter(
            plan__isnull=False, status="completed", dry_run=False, execution_type__in=FAILOVER_TYPES
        )
        .select_related("plan")
        .prefetch_related("step_runs")
        .order_by("triggered_at", "id")
    )
