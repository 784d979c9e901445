"""What a finished execution leaves behind in analytics (DR test results, the RTO targets' current
figures), and test compliance per plan. The engine calls record_outcome through its outcome hook
(failover/engine/hooks.py, installed by drplan/wiring.py) after an execution's terminal transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone

from analytics.choices import TestOutcome, TestType, Trend
from analytics.models import DRTestResult, RTOTarget
from analytics.monitoring import violations
from core import audit
from core.choices import AuditAction
from failover.choices import ExecutionStatus as ES
from failover.choices import ExecutionType, TriggerType
from failover.engine.events import emit
from failover.engine.records import OUTCOME_MARKER
from failover.engine.states import TERMINAL_EXECUTION
from failover.models import ExecutionEvent, FailoverExecution
from plans.choices import TEST_FREQUENCY_DAYS, PlanStatus
from plans.models import DRPlan


def _locked(execution_id: int) -> FailoverExecution:
    return FailoverExecution.objects.select_for_update(of=("self",)).select_related("plan").get(pk=execution_id)


def record_outcome(execution_id: int) -> None:
    """After an execution reached a terminal status: a DRTestResult for tests that started (passed if
    completed within the plan's RTO/RPO, partial if completed but a target was missed, failed
    otherwise), the RTO targets of the plan's applications updated (current RTO/RPO, trend, breaches)
    for completed, measured, non-dry plan executions, and an audit entry. Idempotent: a second call
    does nothing."""
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
                    violations.record_execution_rto(execution, target, rto)  # an SLA violation, with its penalty
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


def test_compliance(
    now: datetime | None = None, *, since: datetime | None = None, plan_ids: list[int] | None = None
) -> list[dict[str, Any]]:
    """Per non-archived plan, over the last 12 months (or since the plan was created, if later): tests
    required by its test frequency, tests done, tests passed, and whether that is enough.

    `since`/`now` choose another window and `plan_ids` the plans (named plans count even when archived): a
    compliance report's testing section is this function over its period, so the two always agree."""
    now = now or timezone.now()
    since = since or now - timedelta(days=365)
    plans = DRPlan.objects.filter(pk__in=plan_ids) if plan_ids is not None else DRPlan.objects.all()
    if plan_ids is None:
        plans = plans.exclude(status=PlanStatus.ARCHIVED)
    plans = plans.annotate(
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
    ).order_by("plan_id")
    rows = []
    for plan in plans:
        window_days = max(0, (now - max(since, plan.created_at)).days)
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
