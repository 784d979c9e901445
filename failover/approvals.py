"""Approvals: the go/no-go decision on an execution awaiting approval, decisions on a step's approval
gate, and the expiry of approval requests past their deadline. Re-exported by failover.services.

Levels are decided in order, each by `approvers` distinct holders of its role, never by the
requester; a person counts once per execution (who approved level 1 cannot also approve level 2).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from core import audit
from core.choices import AuditAction, AuthMethod
from core.exceptions import Conflict, InvalidInput, PermissionDenied
from core.roles import holds_role, require_permission
from failover.choices import ExecutionStatus as ES
from failover.choices import StepStatus as SS
from failover.common import APPROVE_EXECUTION, _audit, _enqueue_on_commit, _locked, _step
from failover.engine.approval_policy import current_level
from failover.engine.events import emit
from failover.engine.states import transition_execution, transition_step
from failover.models import ApprovalDecision, ExecutionEvent, FailoverExecution, StepRun
from runbooks.choices import Decision

__all__ = ["decide_execution", "decide_step", "expire_approval_requests"]


def _check_decision(decision: str, comment: str) -> None:
    if decision not in Decision.values:
        raise InvalidInput(f"decision must be one of {', '.join(Decision.values)}", field="decision")
    if decision == Decision.REJECT and not (comment or "").strip():
        raise InvalidInput("a rejection needs a comment explaining why", field="comment")


def _check_approver(actor: Any, execution: FailoverExecution, role: str, what: str) -> None:
    require_permission(actor, APPROVE_EXECUTION, "approve or reject", system=False)
    if execution.triggered_by_id is not None and execution.triggered_by_id == actor.pk:
        raise PermissionDenied(
            f"Separation of duties: {actor.get_username()} triggered execution #{execution.pk} "
            f"and cannot approve or reject {what}."
        )
    if not holds_role(actor, role):
        raise PermissionDenied(f"{what} must be decided by a holder of role {role!r}; {actor.get_username()} is not.")


def decide_execution(
    execution: FailoverExecution,
    actor: Any,
    decision: str,
    comment: str = "",
    *,
    auth_method: str = AuthMethod.SYSTEM,
) -> FailoverExecution:
    """One approver's go/no-go on the current level of an execution AWAITING_APPROVAL.

    Levels are decided in order, each by `approvers` distinct holders of its role, never by the
    requester; a person decides once per execution. A rejection (with a comment) ends it REJECTED.
    When the last level is satisfied the execution moves to PENDING and is enqueued — the row is
    locked and the move is conditional, so two approvers at the same instant give one transition."""
    _check_decision(decision, comment)
    with transaction.atomic():
        locked = _locked(execution)
        if locked.status != ES.AWAITING_APPROVAL:
            raise Conflict(
                f"execution #{locked.pk} is {locked.status}; only executions awaiting approval can be decided",
                code="invalid_transition",
            )
        decisions = list(ApprovalDecision.objects.filter(execution=locked, step_run__isnull=True))
        level = current_level(locked.approval_policy or [], decisions)
        if level is None:
            raise Conflict(f"execution #{locked.pk} has no approval level left to decide", code="invalid_transition")
        _check_approver(actor, locked, level["role"], f"level {level['level']} of execution #{locked.pk}")
        earlier = next((d for d in decisions if d.user_id == actor.pk), None)
        if earlier is not None:
            raise Conflict(
                f"{actor.get_username()} already decided on execution #{locked.pk} (level {earlier.level}); "
                "each level needs different people",
                code="already_decided",
            )
        record = ApprovalDecision.objects.create(
            execution=locked, level=level["level"], user=actor, decision=decision, comment=comment
        )
        audit.record(
            AuditAction.APPROVE if decision == Decision.APPROVE else AuditAction.REJECT,
            locked,
            actor=actor,
            auth_method=auth_method,
            after={"level": level["level"], "role": level["role"], "decision": decision},
            comment=comment,
        )
        emit(
            locked.pk,
            ExecutionEvent.Kind.APPROVAL,
            f"{actor.get_username()} {decision}d level {level['level']} ({level['role']})",
            {"level": level["level"], "user": actor.get_username(), "decision": decision, "comment": comment},
        )
        if decision == Decision.REJECT:
            transition_execution(
                locked.pk,
                ES.REJECTED,
                only_from={ES.AWAITING_APPROVAL},
                message=f"rejected by {actor.get_username()}",
                error=f"rejected by {actor.get_username()} at level {level['level']}: {comment}",
            )
        elif current_level(locked.approval_policy, [*decisions, record]) is None:
            moved = transition_execution(
                locked.pk, ES.PENDING, only_from={ES.AWAITING_APPROVAL}, message="all approval levels satisfied"
            )
            if moved:
                _enqueue_on_commit(locked.pk)
    locked.refresh_from_db()
    return locked


def decide_step(
    execution: FailoverExecution,
    step_key: str,
    actor: Any,
    decision: str,
    comment: str = "",
    *,
    auth_method: str = AuthMethod.SYSTEM,
) -> StepRun:
    """A decision on a step's approval gate (the step WAITING for approval). Same rules as executions
    (one level: `approvers` distinct holders of the step's role, not the requester). Approval sets
    gate_approved_at once (conditional update); a rejection fails the step."""
    _check_decision(decision, comment)
    with transaction.atomic():
        locked_execution = _locked(execution)
        step = _step(locked_execution, step_key, lock=True)
        if step.status != SS.WAITING or step.waiting_for != "approval" or step.gate_approved_at is not None:
            raise Conflict(
                f"step {step_key!r} of execution #{locked_execution.pk} is not waiting for approval ({step.status})",
                code="invalid_transition",
            )
        gate = step.approval or {}
        role, needed = gate.get("role", "approver"), int(gate.get("approvers", 1))
        _check_approver(actor, locked_execution, role, f"step {step_key!r}")
        decisions = list(ApprovalDecision.objects.filter(step_run=step))
        if any(d.user_id == actor.pk for d in decisions):
            raise Conflict(f"{actor.get_username()} already decided on step {step_key!r}", code="already_decided")
        record = ApprovalDecision.objects.create(
            execution=locked_execution, step_run=step, level=1, user=actor, decision=decision, comment=comment
        )
        audit.record(
            AuditAction.APPROVE if decision == Decision.APPROVE else AuditAction.REJECT,
            step,
            actor=actor,
            auth_method=auth_method,
            after={"execution": locked_execution.pk, "step": step_key, "role": role, "decision": decision},
            comment=comment,
        )
        emit(
            locked_execution.pk,
            ExecutionEvent.Kind.APPROVAL,
            f"{actor.get_username()} {decision}d step {step_key}",
            {"step": step_key, "user": actor.get_username(), "decision": decision, "comment": comment},
            step_run_id=step.pk,
        )
        if decision == Decision.REJECT:
            transition_step(
                step,
                SS.FAILED,
                only_from={SS.WAITING},
                message=f"{step_key} rejected by {actor.get_username()}",
                error=f"approval rejected by {actor.get_username()}: {comment}",
                finished_at=timezone.now(),
            )
        else:
            approvals = {d.user_id for d in [*decisions, record] if d.decision == Decision.APPROVE}
            if len(approvals) >= needed:
                passed = StepRun.objects.filter(pk=step.pk, status=SS.WAITING, gate_approved_at__isnull=True).update(
                    gate_approved_at=timezone.now()
                )
                if passed:
                    emit(
                        locked_execution.pk,
                        ExecutionEvent.Kind.APPROVAL,
                        f"approval gate of {step_key} passed",
                        {"step": step_key, "gate": "passed"},
                        step_run_id=step.pk,
                    )
    step.refresh_from_db()
    return step


def expire_approval_requests(now: datetime | None = None) -> int:
    """AWAITING_APPROVAL executions past their deadline → EXPIRED "approval request expired".

    EXPIRED is terminal (never FAILED, which an operator may resume): the failover must be triggered
    again, asking for its approvals again. Called by the reaper; returns how many expired."""
    now = now or timezone.now()
    expired = 0
    overdue = FailoverExecution.objects.filter(status=ES.AWAITING_APPROVAL, approval_deadline__lt=now)
    for execution_id in overdue.values_list("pk", flat=True):
        with transaction.atomic():
            if transition_execution(
                execution_id,
                ES.EXPIRED,
                only_from={ES.AWAITING_APPROVAL},
                message="approval request expired",
                error="approval request expired",
            ):
                execution = FailoverExecution.objects.get(pk=execution_id)
                _audit(
                    AuditAction.UPDATE,
                    execution,
                    None,
                    AuthMethod.SYSTEM,
                    before={"status": ES.AWAITING_APPROVAL},
                    after={"status": ES.EXPIRED, "error": "approval request expired"},
                )
                expired += 1
    return expired
