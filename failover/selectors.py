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
