"""SLA violations: when a breach is recorded, and what it costs.

- RPO (`on_rpo_sample`, on every replication probe's sample): the application's RPO (the worst of its
  replication probes' latest samples) above its RTO target's `rpo_target_seconds` for at least
  `rpo_breach_window_seconds`, counted from the first sample above the target after the last one within it.
  Open while it lasts (worst value kept up to date), closed by the first sample back within the target. An
  unknown sample neither extends nor ends it. One open RPO violation per application.
- RTO (`record_execution_rto`, from analytics.outcomes.record_outcome; `sweep_test_results` for DR test
  results recorded without an execution): a measured recovery longer than the target's
  `sla_breach_threshold_seconds`; from the RTO clock's start to the recovery.
- Missed test cadence (`sweep_cadence`): an active plan's next test is due `test_frequency` after its last test
  (or its creation, or its first test if earlier); a test after that date, or none yet, is a miss from the
  due date to the test (open until one happens). Worst value in days late.

The penalty is the application's RTO target's `penalty_per_breach` when the violation is recorded (0 for a
missed cadence, which has no application). The target's `breach_count` counts what DRPlan measured itself:
RPO violations here, executions in record_outcome; a test result entered by hand comes with the figures its
author keeps on the target.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Q, Sum
from django.utils import timezone

from analytics.models import DRTestResult, RTOTarget
from analytics.monitoring.choices import ViolationKind
from analytics.monitoring.models import ProbeSample, SLAViolation
from plans.choices import TEST_FREQUENCY_DAYS, PlanStatus
from plans.models import DRPlan

REPLICATION = Q(probe__action__startswith="postgres.") | Q(probe__action__startswith="redis.")


def _count_breach(target: RTOTarget) -> None:
    RTOTarget.objects.filter(pk=target.pk).update(breach_count=F("breach_count") + 1)


def on_rpo_sample(target: RTOTarget, sample: ProbeSample, rpo: float | None) -> SLAViolation | None:
    """Open, extend or close the application's RPO violation after `sample`; `rpo` is the application's
    current RPO (services.current_rpo). Returns the open violation, if any."""
    if rpo is None:
        return None
    application_id, threshold = target.application_id, float(target.rpo_target_seconds)
    open_one = (
        SLAViolation.objects.select_for_update()
        .filter(kind=ViolationKind.RPO, application_id=application_id, ended_at__isnull=True)
        .first()
    )
    if rpo <= threshold:
        if open_one is not None:
            open_one.ended_at = sample.at
            open_one.save(update_fields=["ended_at", "updated_at"])
        return None
    if open_one is not None:
        if rpo > open_one.worst_value:
            open_one.worst_value = rpo
            open_one.save(update_fields=["worst_value", "updated_at"])
        return open_one
    samples = ProbeSample.objects.filter(REPLICATION, application_id=application_id, at__lte=sample.at)
    last_ok = samples.filter(rpo_seconds__lte=threshold).order_by("-at").values_list("at", flat=True).first()
    above = samples.filter(rpo_seconds__gt=threshold)
    if last_ok is not None:
        above = above.filter(at__gt=last_ok)
    first = above.order_by("at").values_list("at", flat=True).first()
    if first is None or (sample.at - first).total_seconds() < target.rpo_breach_window_seconds:
        return None
    worst = max(rpo, above.aggregate(worst=Max("rpo_seconds"))["worst"] or rpo)
    try:
        with transaction.atomic():
            violation = SLAViolation.objects.create(
                kind=ViolationKind.RPO,
                application_id=application_id,
                started_at=first,
                worst_value=worst,
                threshold=threshold,
                penalty=target.penalty_per_breach,
                detail=f"RPO above {threshold:g} s for more than {target.rpo_breach_window_seconds} s (probe samples)",
            )
    except IntegrityError:  # another probe of the application opened it first
        return SLAViolation.objects.filter(
            kind=ViolationKind.RPO, application_id=application_id, ended_at__isnull=True
        ).first()
    _count_breach(target)
    return violation


def record_execution_rto(execution: Any, target: RTOTarget, rto: float) -> SLAViolation | None:
    """An execution's measured RTO above the target's SLA threshold (breach_count: record_outcome's)."""
    if rto <= target.sla_breach_threshold_seconds:
        return None
    start = execution.disaster_declared_at or execution.triggered_at
    violation, _ = SLAViolation.objects.get_or_create(
        execution=execution,
        application_id=target.application_id,
        defaults={
            "kind": ViolationKind.RTO,
            "plan_id": execution.plan_id,
            "started_at": start,
            "ended_at": execution.finished_at or start + timedelta(seconds=rto),
            "worst_value": rto,
            "threshold": float(target.sla_breach_threshold_seconds),
            "penalty": target.penalty_per_breach,
            "detail": f"execution #{execution.pk} ({execution.execution_type}) recovered in {rto:g} s",
        },
    )
    return violation


def sweep_test_results() -> int:
    """RTO violations of DR test results recorded without an execution (by hand or imported); returns how
    many were new."""
    new = 0
    results = DRTestResult.objects.filter(execution__isnull=True, actual_rto_seconds__isnull=False).select_related(
        "plan"
    )
    for result in results:
        targets = RTOTarget.objects.filter(
            application__plans=result.plan, sla_breach_threshold_seconds__lt=result.actual_rto_seconds
        )
        for target in targets:
            _, created = SLAViolation.objects.get_or_create(
                test_result=result,
                application_id=target.application_id,
                defaults={
                    "kind": ViolationKind.RTO,
                    "plan": result.plan,
                    "started_at": result.test_date,
                    "ended_at": result.test_date + timedelta(seconds=result.actual_rto_seconds),
                    "worst_value": result.actual_rto_seconds,
                    "threshold": float(target.sla_breach_threshold_seconds),
                    "penalty": target.penalty_per_breach,
                    "detail": f"DR test of {result.test_date:%Y-%m-%d} recovered in {result.actual_rto_seconds:g} s",
                },
            )
            new += int(created)
    return new


def cadence_misses(plan: DRPlan, tests: list[datetime], now: datetime) -> list[tuple[datetime, datetime | None]]:
    """(due, done) of every test that came late, or (due, None) for the one overdue now (the module rule)."""
    every = timedelta(days=TEST_FREQUENCY_DAYS.get(plan.test_frequency, 91))
    anchor = min([plan.created_at, *tests[:1]])
    misses: list[tuple[datetime, datetime | None]] = []
    for done in tests:
        if done <= anchor:
            continue
        due = anchor + every
        if done > due:
            misses.append((due, done))
        anchor = done
    due = anchor + every
    if now > due:
        misses.append((due, None))
    return misses


def sweep_cadence(now: datetime | None = None) -> int:
    """Record (or bring up to date) the missed test cadences of active plans; returns how many were new."""
    now = now or timezone.now()
    new = 0
    for plan in DRPlan.objects.filter(status=PlanStatus.ACTIVE).order_by("pk"):
        tests = sorted(plan.test_results.values_list("test_date", flat=True))
        for due, done in cadence_misses(plan, tests, now):
            late_days = round(((done or now) - due).total_seconds() / 86400, 2)
            values = {
                "kind": ViolationKind.TEST_CADENCE,
                "ended_at": done,
                "worst_value": late_days,
                "threshold": float(TEST_FREQUENCY_DAYS.get(plan.test_frequency, 91)),
                "unit": "days",
                "detail": f"{plan.get_test_frequency_display()} test due {due:%Y-%m-%d}"
                + (f", done {done:%Y-%m-%d}" if done else ", not done yet"),
            }
            _, created = SLAViolation.objects.update_or_create(
                kind=ViolationKind.TEST_CADENCE, plan=plan, started_at=due, defaults=values
            )
            new += int(created)
    return new


def evaluate(now: datetime | None = None) -> dict[str, int]:
    """The sweeps (hourly, with compaction; `manage.py monitoring evaluate`)."""
    with transaction.atomic():
        return {"rto_from_test_results": sweep_test_results(), "missed_cadence": sweep_cadence(now)}


def quarter_start(now: datetime) -> datetime:
    month = 3 * ((now.month - 1) // 3) + 1
    return now.replace(month=month, day=1, hour=0, minute=0, second=0, microsecond=0)


def quarter_totals(application_ids: set[int], now: datetime | None = None) -> dict[int, dict[str, Any]]:
    """application id -> {"breaches", "penalty_total"} of violations started this quarter (one query)."""
    since = quarter_start(now or timezone.now())
    rows = (
        SLAViolation.objects.filter(application_id__in=application_ids, started_at__gte=since)
        .values("application_id")
        .annotate(breaches=Count("id"), penalty_total=Sum("penalty"))
        .order_by()
    )
    totals = {pk: {"breaches": 0, "penalty_total": Decimal("0.00")} for pk in application_ids}
    for row in rows:
        totals[row["application_id"]] = {
            "breaches": row["breaches"],
            "penalty_total": Decimal(row["penalty_total"] or 0).quantize(Decimal("0.01")),
        }
    return totals


def open_violations(limit: int = 20) -> list[SLAViolation]:
    """For the dashboard: open violations, the oldest first."""
    return list(
        SLAViolation.objects.filter(ended_at__isnull=True)
        .select_related("application", "plan")
        .order_by("started_at", "id")[:limit]
    )
