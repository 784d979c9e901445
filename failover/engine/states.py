"""The two state machines of an execution, each with one transition function.

A transition is a conditional UPDATE (`WHERE status IN allowed_sources`), never
read-then-save: when two callers race, exactly one gets `True`, and only the winner
acts on it (enqueues the coordinator, records the event, …).

No execution moves to RUNNING while a level of its go/no-go policy is outstanding
(failover.engine.approval_policy): whoever asks — a coordinator, resume, retry — gets
ApprovalRequired (409) instead.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from failover.choices import ExecutionStatus as ES
from failover.choices import StepStatus as SS
from failover.engine import rawsql
from failover.engine.approval_policy import ApprovalRequired, describe, outstanding_level
from failover.engine.events import Redact, emit
from failover.models import ExecutionEvent, FailoverExecution, StepRun

# status -> statuses it may move to
EXECUTION_TRANSITIONS: dict[str, set[str]] = {
    ES.PENDING: {ES.AWAITING_APPROVAL, ES.RUNNING, ES.CANCELLED, ES.FAILED},
    # Never FAILED: a failed execution can be resumed, one that was never approved must not be.
    ES.AWAITING_APPROVAL: {ES.PENDING, ES.REJECTED, ES.CANCELLED, ES.EXPIRED},
    ES.RUNNING: {ES.VALIDATING, ES.COMPLETED, ES.FAILED, ES.ROLLING_BACK, ES.PAUSED, ES.CANCELLED},
    ES.PAUSED: {ES.RUNNING, ES.FAILED, ES.ROLLING_BACK, ES.CANCELLED},
    ES.VALIDATING: {ES.COMPLETED, ES.FAILED, ES.ROLLING_BACK, ES.CANCELLED},
    ES.ROLLING_BACK: {ES.ROLLED_BACK, ES.ROLLBACK_FAILED},
    ES.FAILED: {ES.RUNNING, ES.ROLLING_BACK},  # resume, or roll back on an operator's decision
    ES.COMPLETED: set(),
    ES.ROLLED_BACK: set(),
    ES.ROLLBACK_FAILED: set(),
    ES.CANCELLED: set(),
    ES.REJECTED: set(),
    ES.EXPIRED: set(),
}

STEP_TRANSITIONS: dict[str, set[str]] = {
    SS.PENDING: {SS.RUNNING, SS.WAITING, SS.SKIPPED, SS.CANCELLED},
    SS.WAITING: {SS.RUNNING, SS.SUCCEEDED, SS.FAILED, SS.CANCELLED},
    SS.RUNNING: {SS.SUCCEEDED, SS.FAILED, SS.CANCELLED, SS.LOST, SS.PENDING},
    SS.FAILED: {SS.PENDING},  # an operator retries it
    SS.LOST: {SS.PENDING, SS.FAILED, SS.SUCCEEDED},  # retried, given up, or confirmed done by an operator
    SS.CANCELLED: {SS.PENDING},  # resumed after a cancel
    SS.SUCCEEDED: set(),
    SS.SKIPPED: set(),
    SS.ROLLED_BACK: set(),
    SS.ROLLBACK_FAILED: set(),
}

TERMINAL_EXECUTION = {s for s, targets in EXECUTION_TRANSITIONS.items() if not targets}


def _sources(table: dict[str, set[str]], to: str) -> set[str]:
    return {source for source, targets in table.items() if to in targets}


def transition_execution(
    execution_id: int,
    to: str,
    *,
    only_from: set[str] | None = None,
    message: str = "",
    redact: Redact | None = None,
    **fields: Any,
) -> bool:
    """Move an execution to `to` if the table allows it from its current status
    (and, if given, only from `only_from`). Records a status event. Returns whether it moved."""
    sources = _sources(EXECUTION_TRANSITIONS, to)
    if only_from is not None:
        sources &= set(only_from)
    if to in TERMINAL_EXECUTION and "finished_at" not in fields:
        fields["finished_at"] = timezone.now()
    with transaction.atomic():
        if to == ES.RUNNING:
            require_approved(execution_id)
        moved = FailoverExecution.objects.filter(pk=execution_id, status__in=sources).update(status=to, **fields)
        if moved:
            emit(execution_id, ExecutionEvent.Kind.STATUS, message or f"execution {to}", {"status": to}, redact=redact)
    return bool(moved)


def require_approved(execution_id: int) -> None:
    """ApprovalRequired naming the first outstanding level of the execution's go/no-go policy, if any."""
    policy = FailoverExecution.objects.filter(pk=execution_id).values_list("approval_policy", flat=True).first()
    level = outstanding_level(execution_id, policy)
    if level is not None:
        raise ApprovalRequired(
            f"execution #{execution_id} has not been approved: {describe(level)}; it cannot run without its "
            "go/no-go approvals (trigger it again to ask for them)"
        )


def transition_step(
    step: StepRun,
    to: str,
    *,
    only_from: set[str] | None = None,
    message: str = "",
    redact: Redact | None = None,
    **fields: Any,
) -> bool:
    """Move a step run to `to` if allowed from its current status. Records a step event.
    On success the in-memory `step` is updated too."""
    with transaction.atomic(savepoint=False):
        moved = rawsql.update_step_if_status(step.pk, step_sources(to, only_from), {"status": to, **fields})
        if moved:
            _step_event(step, to, message, redact, fields)
    if moved:
        _apply(step, to, fields)
    return bool(moved)


def step_sources(to: str, only_from: set[str] | None = None) -> set[str]:
    """The statuses a step may move to `to` from (and, if given, only from `only_from`)."""
    sources = _sources(STEP_TRANSITIONS, to)
    return sources & set(only_from) if only_from is not None else sources


def transition_steps(moves: list[tuple[StepRun, dict[str, Any]]], to: str, *, only_from: set[str]) -> set[int]:
    """The rows of several steps (step, fields) to `to` from `only_from`, in one round trip on PostgreSQL
    (rawsql.update_steps_if_status); inside the caller's transaction, which then
    records each moved step's transition in its own order (record_step_transition). The ids that moved."""
    rows = [(step.pk, {"status": to, **fields}) for step, fields in moves]
    return rawsql.update_steps_if_status(rows, step_sources(to, only_from))


def record_step_transition(step: StepRun, to: str, message: str, redact: Redact | None, fields: dict[str, Any]) -> None:
    """After transition_steps moved a step's row: its STEP_STATUS event, and the in-memory `step` updated."""
    _step_event(step, to, message, redact, fields)
    _apply(step, to, fields)


def _step_event(step: StepRun, to: str, message: str, redact: Redact | None, fields: dict[str, Any]) -> None:
    data = {"step": step.step_key, "status": to, **{k: _plain(v) for k, v in fields.items() if k in _EVENT_FIELDS}}
    emit(
        step.execution_id,
        ExecutionEvent.Kind.STEP_STATUS,
        message or f"{step.step_key} {to}",
        data,
        step_run_id=step.pk,
        redact=redact,
    )


def _apply(step: StepRun, to: str, fields: dict[str, Any]) -> None:
    step.status = to
    for name, value in fields.items():
        setattr(step, name, value)


_EVENT_FIELDS = {"attempts", "started_at", "finished_at", "duration_seconds", "error", "worker"}


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
