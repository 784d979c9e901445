"""Operator controls of executions: confirm a manual step, cancel, resume, retry a step, mark a lost
step done. Re-exported by failover.services.

Each needs the permission that runs executions of that type (failover.common.run_permission), except
confirm_step (failover.confirm_step); each is audited in the transaction of its change.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from core import audit
from core.choices import AuditAction, AuthMethod
from core.exceptions import Conflict, InvalidInput
from core.roles import require_permission
from failover.choices import ACTIVE_STATUSES
from failover.choices import ExecutionStatus as ES
from failover.choices import StepStatus as SS
from failover.common import (
    CONFIRM_STEP,
    _audit,
    _enqueue_on_commit,
    _locked,
    _step,
    _user_or_none,
    _username,
    run_permission,
)
from failover.engine.events import emit
from failover.engine.states import transition_execution, transition_step
from failover.models import ExecutionEvent, FailoverExecution, StepRun

__all__ = ["cancel", "confirm_step", "mark_step_done", "resume", "retry_step"]


def confirm_step(
    execution: FailoverExecution,
    step_key: str,
    actor: Any,
    comment: str = "",
    *,
    auth_method: str = AuthMethod.SYSTEM,
) -> StepRun:
    """A person confirms a manual step is done (the step WAITING for confirmation → SUCCEEDED)."""
    require_permission(actor, CONFIRM_STEP, "confirm manual steps")
    with transaction.atomic():
        step = _step(execution, step_key, lock=True)
        if step.status != SS.WAITING or step.waiting_for != "confirmation":
            raise Conflict(
                f"step {step_key!r} of execution #{execution.pk} is not waiting for confirmation ({step.status})",
                code="invalid_transition",
            )
        now = timezone.now()
        fields: dict[str, Any] = {
            "confirmed_by": _user_or_none(actor),
            "confirmed_at": now,
            "finished_at": now,
            "output": {"confirmed_by": _username(actor), "comment": comment},
        }
        if step.started_at:
            fields["duration_seconds"] = (now - step.started_at).total_seconds()
        if not transition_step(
            step, SS.SUCCEEDED, only_from={SS.WAITING}, message=f"{step_key} confirmed by {_username(actor)}", **fields
        ):
            raise Conflict(f"step {step_key!r} changed meanwhile; reload it", code="invalid_transition")
        audit.record(
            AuditAction.CONFIRM,
            step,
            actor=actor,
            auth_method=auth_method,
            after={"execution": execution.pk, "step": step_key, "status": SS.SUCCEEDED},
            comment=comment,
        )
    return step


def cancel(
    execution: FailoverExecution,
    actor: Any,
    rollback: bool = False,
    *,
    comment: str = "",
    auth_method: str = AuthMethod.SYSTEM,
) -> FailoverExecution:
    """Ask an active execution to stop (optionally rolling back what it did).

    Not started yet (PENDING, AWAITING_APPROVAL) → CANCELLED at once. PAUSED without rollback →
    CANCELLED at once; with rollback it is handed back to a coordinator to roll back. Otherwise the
    running coordinator sees the flag, stops dispatching, terminates running steps and ends."""
    require_permission(actor, run_permission(execution), f"cancel a {execution.execution_type}")
    with transaction.atomic():
        locked = _locked(execution)
        if locked.status not in ACTIVE_STATUSES:
            raise Conflict(f"execution #{locked.pk} is {locked.status}; it is not running", code="invalid_transition")
        if locked.status == ES.ROLLING_BACK:
            raise Conflict(f"execution #{locked.pk} is rolling back and cannot be cancelled", code="invalid_transition")
        FailoverExecution.objects.filter(pk=locked.pk).update(cancel_requested=True, rollback_on_cancel=rollback)
        by = _username(actor)
        if locked.status in (ES.PENDING, ES.AWAITING_APPROVAL) or (locked.status == ES.PAUSED and not rollback):
            if transition_execution(
                locked.pk,
                ES.CANCELLED,
                only_from={locked.status},
                message=f"cancelled by {by}",
                error=f"cancelled by {by}" + (f": {comment}" if comment else ""),
            ):
                for step in StepRun.objects.filter(execution=locked, status=SS.PENDING):
                    transition_step(step, SS.CANCELLED, only_from={SS.PENDING}, message=f"{step.step_key} cancelled")
        elif locked.status == ES.PAUSED:
            # Nobody is coordinating a paused execution: hand it to a coordinator, which sees the flag and rolls back.
            if transition_execution(
                locked.pk,
                ES.RUNNING,
                only_from={ES.PAUSED},
                message=f"cancel with rollback requested by {by}",
                coordinator="",
                lease_expires_at=None,
            ):
                _enqueue_on_commit(locked.pk)
        else:
            emit(locked.pk, ExecutionEvent.Kind.STATUS, f"cancel requested by {by}", {"rollback": rollback})
        _audit(
            AuditAction.CANCEL,
            locked,
            actor,
            auth_method,
            before={"status": locked.status},
            after={"cancel_requested": True, "rollback": rollback},
            comment=comment,
        )
    locked.refresh_from_db()
    return locked


_RERUNNABLE = {SS.FAILED, SS.LOST, SS.CANCELLED}


def _restart(execution: FailoverExecution, message: str) -> None:
    """FAILED/PAUSED → RUNNING with the lease cleared, enqueued (caller holds the row lock)."""
    moved = transition_execution(
        execution.pk,
        ES.RUNNING,
        only_from={ES.FAILED, ES.PAUSED},
        message=message,
        coordinator="",
        lease_expires_at=None,
        finished_at=None,
        error="",
        cancel_requested=False,
        rollback_on_cancel=False,
    )
    if not moved:
        raise Conflict(f"execution #{execution.pk} changed meanwhile; reload it", code="invalid_transition")
    _enqueue_on_commit(execution.pk)


def _reset_step(step: StepRun, by: str) -> None:
    transition_step(
        step,
        SS.PENDING,
        only_from=_RERUNNABLE,
        message=f"{step.step_key} queued again by {by}",
        error="",
        worker="",
        heartbeat_at=None,
        started_at=None,
        finished_at=None,
        duration_seconds=None,
        waiting_for="",
    )


def resume(
    execution: FailoverExecution, actor: Any, *, comment: str = "", auth_method: str = AuthMethod.SYSTEM
) -> FailoverExecution:
    """Resume a FAILED or PAUSED execution from where it stopped: every FAILED/LOST/CANCELLED step is
    queued again, SUCCEEDED steps are never re-run."""
    require_permission(actor, run_permission(execution), f"resume a {execution.execution_type}")
    with transaction.atomic():
        locked = _locked(execution)
        if locked.status not in (ES.FAILED, ES.PAUSED):
            raise Conflict(
                f"execution #{locked.pk} is {locked.status}; only failed or paused executions can be resumed",
                code="invalid_transition",
            )
        by = _username(actor)
        steps = list(StepRun.objects.filter(execution=locked, status__in=_RERUNNABLE))
        _restart(locked, f"resumed by {by}")
        for step in steps:
            _reset_step(step, by)
        _audit(
            AuditAction.UPDATE,
            locked,
            actor,
            auth_method,
            before={"status": locked.status},
            after={"status": ES.RUNNING, "requeued_steps": [s.step_key for s in steps]},
            comment=comment or "resume",
        )
    locked.refresh_from_db()
    return locked


def retry_step(
    execution: FailoverExecution,
    step_key: str,
    actor: Any,
    *,
    comment: str = "",
    auth_method: str = AuthMethod.SYSTEM,
) -> StepRun:
    """Queue one FAILED/LOST/CANCELLED step again; a FAILED or PAUSED execution resumes for it
    (other failed steps stay failed), a running one picks it up."""
    require_permission(actor, run_permission(execution), f"retry steps of a {execution.execution_type}")
    with transaction.atomic():
        locked = _locked(execution)
        step = _step(locked, step_key, lock=True)
        if step.status not in _RERUNNABLE:
            raise Conflict(
                f"step {step_key!r} is {step.status}; only failed, lost or cancelled steps can be retried",
                code="invalid_transition",
            )
        if locked.status not in (ES.FAILED, ES.PAUSED, ES.RUNNING):
            raise Conflict(
                f"execution #{locked.pk} is {locked.status}; steps can be retried while it is failed, paused "
                "or running",
                code="invalid_transition",
            )
        by = _username(actor)
        if locked.status in (ES.FAILED, ES.PAUSED):
            _restart(locked, f"step {step_key} retried by {by}")
        _reset_step(step, by)
        audit.record(
            AuditAction.UPDATE,
            step,
            actor=actor,
            auth_method=auth_method,
            after={"execution": locked.pk, "step": step_key, "status": SS.PENDING},
            comment=comment or "retry",
        )
    return step


def mark_step_done(
    execution: FailoverExecution,
    step_key: str,
    actor: Any,
    comment: str = "",
    *,
    auth_method: str = AuthMethod.SYSTEM,
) -> StepRun:
    """An operator verified that a LOST step (its worker died mid-step) did complete: LOST → SUCCEEDED.
    The execution stays as it is (resume it to continue); a comment saying how it was verified is required."""
    require_permission(actor, run_permission(execution), f"mark steps of a {execution.execution_type} done")
    if not (comment or "").strip():
        raise InvalidInput("say how you verified the step completed", field="comment")
    with transaction.atomic():
        step = _step(execution, step_key, lock=True)
        if step.status != SS.LOST:
            raise Conflict(
                f"step {step_key!r} is {step.status}; only lost steps can be marked done", code="invalid_transition"
            )
        now = timezone.now()
        if not transition_step(
            step,
            SS.SUCCEEDED,
            only_from={SS.LOST},
            message=f"{step_key} marked done by {_username(actor)}",
            confirmed_by=_user_or_none(actor),
            confirmed_at=now,
            finished_at=step.finished_at or now,
            output={"marked_done_by": _username(actor), "comment": comment},
        ):
            raise Conflict(f"step {step_key!r} changed meanwhile; reload it", code="invalid_transition")
        audit.record(
            AuditAction.CONFIRM,
            step,
            actor=actor,
            auth_method=auth_method,
            before={"status": SS.LOST},
            after={"execution": execution.pk, "step": step_key, "status": SS.SUCCEEDED},
            comment=comment,
        )
    return step
