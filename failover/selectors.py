"""Reused reads for executions and their evidence."""

from __future__ import annotations

from django.db.models import QuerySet

from failover.models import ExecutionEvent, FailoverExecution


def execution_list() -> QuerySet[FailoverExecution]:
    """Executions with what the list renders (plan, runbook version, trigger user)."""
    return FailoverExecution.objects.select_related("plan", "runbook_version__runbook", "triggered_by")


def execution_detail() -> QuerySet[FailoverExecution]:
    return execution_list().prefetch_related("step_runs", "validation_results")


def events_after(execution: FailoverExecution, after: int = 0) -> QuerySet[ExecutionEvent]:
    """Events of an execution with seq > after, in order: what a client backfills after a reconnect."""
    return ExecutionEvent.objects.filter(execution=execution, seq__gt=after).order_by("seq")


def execution_full() -> QuerySet[FailoverExecution]:
    """Executions with everything the detail renders: steps (with who confirmed), checks, decisions."""
    from django.db.models import Prefetch

    from failover.models import ApprovalDecision, StepRun

    return execution_list().prefetch_related(
        Prefetch("step_runs", queryset=StepRun.objects.select_related("confirmed_by")),
        "validation_results",
        Prefetch("approval_decisions", queryset=ApprovalDecision.objects.select_related("user", "step_run")),
    )


def active_executions() -> QuerySet[FailoverExecution]:
    from failover.choices import ACTIVE_STATUSES

    return execution_full().filter(status__in=ACTIVE_STATUSES).order_by("triggered_at", "id")


def runbook_history(runbook_id: int) -> QuerySet[FailoverExecution]:
    """Every execution of any version of a runbook (runbook runs), newest first."""
    return execution_list().filter(runbook_version__runbook_id=runbook_id).order_by("-triggered_at", "-id")


def dr_test_executions() -> QuerySet[FailoverExecution]:
    """DR test executions with their recorded result, newest first."""
    return execution_list().filter(execution_type="test").select_related("test_result").order_by("-triggered_at", "-id")


def last_measured_rpo(plan_pk: int) -> float | None:
    """The RPO the plan's latest execution that measured one achieved (failover, failback or DR test;
    dry runs measure nothing), or None when no execution has measured it."""
    latest = (
        FailoverExecution.objects.filter(plan_id=plan_pk, dry_run=False, actual_rpo_seconds__isnull=False)
        .order_by("-finished_at", "-pk")
        .values_list("actual_rpo_seconds", flat=True)
        .first()
    )
    return latest


def last_completed_real_run(version_ids: list[int]) -> dict | None:
    """{rto_seconds, finished_at, execution} of the newest completed, real (not dry-run) execution with a
    measured RTO that ran one of these runbook versions (on its own or composed into a plan); else None.
    The template library's "last verified run" (runbooks.library, installed by drplan/wiring.py)."""
    from django.db.models import Q

    if not version_ids:
        return None
    found = (
        FailoverExecution.objects.filter(status="completed", dry_run=False, actual_rto_seconds__isnull=False)
        .filter(Q(runbook_version_id__in=version_ids) | Q(step_runs__runbook_step__version_id__in=version_ids))
        .order_by("-finished_at", "-pk")
        .values("pk", "actual_rto_seconds", "finished_at")
        .first()
    )
    if found is None:
        return None
    return {"rto_seconds": found["actual_rto_seconds"], "finished_at": found["finished_at"], "execution": found["pk"]}
