"""Small explicit factories for executions and their evidence."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from failover.models import ExecutionEvent, FailoverExecution
from plans.models import DRPlan


def make_execution(plan: DRPlan | None, *, execution_type: str = "test", status: str = "completed", **extra: Any):
    return FailoverExecution.objects.create(
        plan=plan, execution_type=execution_type, status=status, triggered_at=timezone.now(), **extra
    )


def add_events(execution: FailoverExecution, count: int, kind: str = "log") -> list[ExecutionEvent]:
    events = [
        ExecutionEvent(execution=execution, seq=execution.event_seq + i + 1, kind=kind, message=f"line {i + 1}")
        for i in range(count)
    ]
    ExecutionEvent.objects.bulk_create(events)
    FailoverExecution.objects.filter(pk=execution.pk).update(event_seq=execution.event_seq + count)
    execution.event_seq += count
    return events
