"""Plumbing shared by the failover use-case modules (services, approvals, controls, outcomes).

Not an API of its own: permission names (the check is core.roles.require_permission), who the actor
is, row locks, the audit call, and the hand-off to a worker on commit (tests replace `_enqueue` to see
what would be enqueued).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from core import audit
from core.exceptions import NotFound
from failover import tasks
from failover.choices import ExecutionType
from failover.models import FailoverExecution, StepRun

RUN_FAILOVER = "failover.run_failover"
RUN_TEST = "failover.run_test"
CONFIRM_STEP = "failover.confirm_step"
APPROVE_EXECUTION = "failover.approve_execution"
FAILOVER_TYPES = {ExecutionType.PLANNED, ExecutionType.UNPLANNED, ExecutionType.FAILBACK}


def _enqueue(execution_id: int) -> None:
    """Hand the execution to a worker (django-q2). Called on commit only."""
    tasks.enqueue_execution(execution_id)


def _enqueue_on_commit(execution_id: int) -> None:
    transaction.on_commit(lambda: _enqueue(execution_id))


def run_permission(execution: FailoverExecution) -> str:
    """The permission that controls (cancel/resume/retry) an execution of this type."""
    return RUN_FAILOVER if execution.execution_type in FAILOVER_TYPES else RUN_TEST


def _username(actor: Any) -> str:
    return actor.get_username() if actor is not None and getattr(actor, "is_authenticated", False) else "system"


def _user_or_none(actor: Any) -> Any:
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def _locked(execution: FailoverExecution | int) -> FailoverExecution:
    pk = execution.pk if isinstance(execution, FailoverExecution) else execution
    return FailoverExecution.objects.select_for_update(of=("self",)).select_related("plan").get(pk=pk)


def _step(execution: FailoverExecution, step_key: str, *, lock: bool = False) -> StepRun:
    queryset = StepRun.objects.select_for_update() if lock else StepRun.objects
    step = queryset.filter(execution_id=execution.pk, step_key=step_key).first()
    if step is None:
        raise NotFound(f"execution #{execution.pk} has no step {step_key!r}", field="step_key")
    return step


def _audit(
    action: str,
    execution: FailoverExecution,
    actor: Any,
    auth_method: str,
    *,
    after: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    comment: str = "",
) -> None:
    audit.record(action, execution, actor=actor, auth_method=auth_method, before=before, after=after, comment=comment)
