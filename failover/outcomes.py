"""What a finished execution leaves behind (DR test results, RTO targets), scheduled DR tests and
test compliance. Re-exported by failover.services, where callers find them."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core import audit
from core.choices import AuditAction, AuthMethod
from core.exceptions import DomainError, InvalidInput
from core.roles import require_permission
from failover.choices import ExecutionStatus as ES
from failover.choices import ExecutionType, TriggerType
from failover.engine import graph
from failover.engine.events import emit
from failover.engine.records import OUTCOME_MARKER
from failover.engine.states import TERMINAL_EXECUTION
from failover.models import ExecutionEvent, FailoverExecution
from plans.choices import PlanStatus
from plans.models import DRPlan
from runbooks.choices import RunbookCategory

logger = logging.getLogger(__name__)
RUN_TEST = "failover.run_test"
SCHEDULED_TEST_FUNC = "failover.services.run_scheduled_test"


def _locked(execution_id: int) -> FailoverExecution:
    return FailoverExecution.objects.select_for_update(of=("self",)).select_related("plan").get(pk=execution_id)


# --- Outcome ----------------------------------------------------------------------


def record_outcome(execution_id: int) -> None:
    """After an execution reached a terminal status: a DRTestResult for tests that started (passed if
    completed within the plan's RTO/RPO, partial if completed but a target was missed, failed
    otherwise), the RTO targets of the plan's applications updated (current RTO/RPO, trend, breaches)
    for completed, measured, non-dry plan executions, and an audit entry. Idempotent: a second call
    does nothing."""
    from analytics.choices import TestOutcome, TestType, Trend
    from analytics.models import DRTestResult, RTOTarget

    with transaction.atomic():
        execution = _locked(execution_id)
        if execution.status not in TERMINAL_EXECUTION or execution.plan_id is None or execution.dry_run:
            return
        if (
            ExecutionEvent.objects.filter(execution=execution, kind=ExecutionEvent.Kind.SUMMARY)
            .filter(message=OUTCOME_MARKER)
            .exists()
        ):
            return
        plan = execution.plan
        summary: dict[str, Any] = {"status": execution.status, "actual_rto_seconds": execution.actual_rto_seconds}
        completed = execution.status == ES.COMPLETED
        rto, rpo = execution.actual_rto_seconds, execution.actual_rpo_seconds
        if execution.execution_type == ExecutionType.TEST and execution.started_at is not None:
            met = (rto is not None and rto <= plan.rto_seconds) and (rpo is None or rpo <= plan.rpo_seconds)
            outcome = TestOutcome.FAILED if not completed else TestOutcome.PASSED if met else TestOutcome.PARTIAL
            result, _ = DRTestResult.objects.get_or_create(
                execution=execution,
                defaults={
                    "plan": plan,
                    "test_type": TestType.SCHEDULED
                    if execution.trigger_type == TriggerType.SCHEDULED
                    else TestType.AD_HOC,
                    "test_date": execution.started_at,
                    "outcome": outcome,
                    "target_rto_seconds": plan.rto_seconds,
                    "target_rpo_seconds": plan.rpo_seconds,
                    "actual_rto_seconds": rto,
                    "actual_rpo_seconds": rpo,
                    "data_loss_mb": round(execution.data_loss_bytes / 1_000_000, 2)
                    if execution.data_loss_bytes is not None
                    else None,
                    "summary": f"Execution #{execution.pk} ended {execution.status}."
                    + (f" {execution.error}" if execution.error else ""),
                    "recorded_by": execution.triggered_by,
                },
            )
            audit.record(AuditAction.CREATE, result, after=audit.snapshot(result))
            summary["test_result"] = {"id": result.pk, "outcome": result.outcome}
        if completed and rto is not None:
            updated = []
            for target in (
                RTOTarget.objects.select_for_update(of=("self",)).filter(application__plans=plan).order_by("pk")
            ):
                before = audit.snapshot(target)
                previous = target.current_rto_seconds
                target.trend = (
                    Trend.STABLE
                    if previous is None or previous == rto
                    else Trend.IMPROVING
                    if rto < previous
                    else Trend.DEGRADING
                )
                target.current_rto_seconds = rto
                if rpo is not None:
                    target.current_rpo_seconds = rpo
                target.save(update_fields=["trend", "current_rto_seconds", "current_rpo_seconds", "updated_at"])
                if rto > target.sla_breach_threshold_seconds:
                    RTOTarget.objects.filter(pk=target.pk).update(breach_count=F("breach_count") + 1)
                target.refresh_from_db()
                audit.record(
                    AuditAction.UPDATE,
                    target,
                    before=before,
                    after=audit.snapshot(target),
                    comment=f"measured by execution #{execution.pk}",
                )
                updated.append(target.application_id)
            summary["rto_targets_updated"] = updated
        emit(execution.pk, ExecutionEvent.Kind.SUMMARY, OUTCOME_MARKER, summary)


# --- Scheduled tests and compliance -----------------------------------------------

FREQUENCIES = {"daily": "D", "weekly": "W", "monthly": "M", "quarterly": "Q", "yearly": "Y"}


def schedule_test(
    plan: DRPlan,
    *,
    cron: str | None = None,
    frequency: str | None = None,
    actor: Any = None,
    auth_method: str = AuthMethod.SYSTEM,
) -> Any:
    """Run the plan's DR test on a recurring django-q2 schedule (cron or frequency; one per plan,
    rescheduling replaces it). The plan must be active and have an approved test runbook."""
    from django_q.models import Schedule

    from failover.services import _require_active

    require_permission(actor, RUN_TEST, "schedule DR tests")
    if (cron is None) == (frequency is None):
        raise InvalidInput("give either cron or frequency, not both", field="frequency" if cron else "cron")
    if frequency is not None and frequency not in FREQUENCIES:
        raise InvalidInput(f"frequency must be one of {', '.join(FREQUENCIES)}", field="frequency")
    if cron is not None:
        from croniter import croniter

        if not isinstance(cron, str) or len(cron) > 100 or not croniter.is_valid(cron):
            raise InvalidInput(f"{cron!r} is not a valid cron expression", field="cron")
    _require_active(plan)
    graph.build_plan_steps(plan, RunbookCategory.TEST)  # 409 naming the plan if it has nothing to test
    name = f"dr-test:{plan.plan_id}"
    with transaction.atomic():
        existing = Schedule.objects.select_for_update().filter(name=name).first()
        before = _schedule_summary(existing) if existing else None
        schedule = existing or Schedule(name=name)
        schedule.func = SCHEDULED_TEST_FUNC
        schedule.args = repr(plan.pk)
        schedule.kwargs = None
        schedule.repeats = -1
        schedule.cron = cron
        schedule.schedule_type = Schedule.CRON if cron else FREQUENCIES[frequency]
        schedule.next_run = None if cron else timezone.now()
        schedule.save()
        if cron and schedule.next_run is None:  # django-q2 computes cron's next run on first save only
            schedule.next_run = schedule.calculate_next_run(timezone.now())
            schedule.save(update_fields=["next_run"])
        audit.record(
            AuditAction.UPDATE if existing else AuditAction.CREATE,
            schedule,
            actor=actor,
            auth_method=auth_method,
            before=before,
            after=_schedule_summary(schedule),
            object_type="django_q.schedule",
            object_repr=name,
        )
    return schedule


def _schedule_summary(schedule: Any) -> dict[str, Any]:
    return {
        "name": schedule.name,
        "func": schedule.func,
        "args": schedule.args,
        "schedule_type": schedule.schedule_type,
        "cron": schedule.cron,
        "next_run": schedule.next_run.isoformat() if schedule.next_run else None,
    }


def run_scheduled_test(plan_pk: int) -> int | None:
    """django-q2 schedule entry point: start the plan's DR test; returns the execution id, or None
    (logged) when the plan cannot be tested now (inactive, nothing approved, …)."""
    from failover.services import start_test

    plan = DRPlan.objects.filter(pk=plan_pk).first()
    if plan is None:
        logger.warning("scheduled DR test: plan %s no longer exists", plan_pk)
        return None
    try:
        return start_test(
            plan, auth_method=AuthMethod.SYSTEM, trigger_type=TriggerType.SCHEDULED, reason="scheduled DR test"
        ).pk
    except DomainError as exc:
        logger.warning("scheduled DR test of %s not started: %s", plan.plan_id, exc.message)
        return None


def test_compliance(now: datetime | None = None) -> list[dict[str, Any]]:
    """Per non-archived plan, over the last 12 months (or since the plan was created, if later): tests
    required by its test frequency, tests done, tests passed, and whether that is enough."""
    from django.db.models import Count, Max

    from analytics.choices import TestOutcome
    from plans.choices import TEST_FREQUENCY_DAYS

    now = now or timezone.now()
    since = now - timedelta(days=365)
    plans = (
        DRPlan.objects.exclude(status=PlanStatus.ARCHIVED)
        .annotate(
            done=Count("test_results", filter=Q(test_results__test_date__gte=since, test_results__test_date__lte=now)),
            passed=Count(
                "test_results",
                filter=Q(
                    test_results__test_date__gte=since,
                    test_results__test_date__lte=now,
                    test_results__outcome=TestOutcome.PASSED,
                ),
            ),
            last_test=Max("test_results__test_date"),
        )
        .order_by("plan_id")
    )
    rows = []
    for plan in plans:
        window_days = max(0, min(365, (now - plan.created_at).days))
        required = window_days // TEST_FREQUENCY_DAYS.get(plan.test_frequency, 91)
        rows.append(
            {
                "plan": plan.pk,
                "plan_id": plan.plan_id,
                "name": plan.name,
                "status": plan.status,
                "test_frequency": plan.test_frequency,
                "window_start": max(since, plan.created_at),
                "required": required,
                "done": plan.done,
                "passed": plan.passed,
                "last_test": plan.last_test,
                "compliant": plan.passed >= required,
            }
        )
    return rows
