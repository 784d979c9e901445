"""Failover use cases: start executions, decide approvals, control running executions, record outcomes.

Each use case is audited (core.audit.record) in the transaction of its change, and every status
change goes through failover.engine.states (conditional updates: of two racing callers exactly one
wins). The queue is transport: an execution is created in the database and enqueued on commit
(failover.tasks.enqueue_execution), never the other way round.

Decisions worth knowing:
- Go/no-go approval (the plan's approval levels, snapshotted into execution.approval_policy) applies
  to planned/unplanned failovers and failbacks. DR tests and runbook runs are not disruptive and need
  none; dry runs (which execute nothing) need none either.
- A dry run of a plan takes each runbook's latest approved version, else its latest version; a real
  run needs an approved version of every runbook (400 naming the runbook otherwise).
- A DR test runs the plan's `test`-category runbooks (400 naming the plan if it has none).
- A person counts once per execution: who approved level 1 cannot also approve level 2.
- record_outcome creates a DRTestResult for tests that started, and updates the RTO targets of the
  plan's applications for every non-dry plan execution that completed with a measured RTO.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import audit
from core.choices import AuditAction, AuthMethod
from core.exceptions import Conflict, InvalidInput, PermissionDenied
from failover.choices import ACTIVE_STATUSES, ExecutionStatus, ExecutionType, StepStatus, TriggerType
from failover.engine import graph
from failover.engine.events import emit
from failover.engine.states import transition_execution, transition_step
from failover.models import ApprovalDecision, ExecutionEvent, FailoverExecution, StepRun
from plans.choices import PlanStatus, StrategyKind
from plans.models import DRPlan
from runbooks.choices import Decision, RunbookCategory, VersionStatus
from runbooks.models import Runbook, RunbookVersion
from runbooks.services import holds_role

ES = ExecutionStatus
SS = StepStatus
RUN_FAILOVER = "failover.run_failover"
RUN_TEST = "failover.run_test"
CONFIRM_STEP = "failover.confirm_step"
APPROVE_EXECUTION = "failover.approve_execution"
FAILOVER_TYPES = {ExecutionType.PLANNED, ExecutionType.UNPLANNED, ExecutionType.FAILBACK}


# --- Helpers ----------------------------------------------------------------------


def _enqueue(execution_id: int) -> None:
    """Hand the execution to a worker (django-q2). Called on commit only."""
    from failover import tasks

    tasks.enqueue_execution(execution_id)


def _enqueue_on_commit(execution_id: int) -> None:
    transaction.on_commit(lambda: _enqueue(execution_id))


def run_permission(execution: FailoverExecution) -> str:
    """The permission that controls (cancel/resume/retry) an execution of this type."""
    return RUN_FAILOVER if execution.execution_type in FAILOVER_TYPES else RUN_TEST


def _require(actor: Any, permission: str, what: str) -> None:
    """Services are called by the API and the CLI; a None actor is the system (schedules, reaper)."""
    if actor is None:
        return
    if not getattr(actor, "is_authenticated", False) or not actor.has_perm(permission):
        raise PermissionDenied(f"You need the {permission} permission to {what}.")


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
        raise InvalidInput(f"execution #{execution.pk} has no step {step_key!r}", field="step_key")
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


# --- Starting executions ----------------------------------------------------------


def _require_active(plan: DRPlan) -> None:
    if plan.status != PlanStatus.ACTIVE:
        raise Conflict(
            f"plan {plan.plan_id!r} is {plan.status}; only active plans can run failovers, failbacks and tests",
            code="plan_not_active",
        )


def _active_failover(plan: DRPlan) -> FailoverExecution | None:
    return (
        FailoverExecution.objects.filter(plan=plan, status__in=ACTIVE_STATUSES, execution_type__in=FAILOVER_TYPES)
        .order_by("pk")
        .first()
    )


def _already_active(plan: DRPlan, active: FailoverExecution | None) -> Conflict:
    if active is None:
        return Conflict(f"plan {plan.plan_id!r} already has an active failover", code="already_active")
    return Conflict(
        f"plan {plan.plan_id!r} already has an active failover #{active.pk} ({active.execution_type}, {active.status})",
        code="already_active",
    )


def _approval_policy(plan: DRPlan) -> list[dict[str, Any]]:
    return [
        {"level": level.level, "role": level.role, "approvers": level.min_approvers}
        for level in plan.approval_levels.order_by("level")
    ]


def _rollback_trigger(plan: DRPlan, kind: str) -> str:
    """The rollback trigger of the plan's strategy of this kind that has validation checks ('' = none)."""
    strategy = (
        plan.recovery_strategies.filter(kind=kind, validation_checks__isnull=False).order_by("name").distinct().first()
    )
    return strategy.rollback_trigger if strategy else ""


def _create_execution(
    *,
    execution_type: str,
    specs: list[graph.StepSpec],
    actor: Any,
    auth_method: str,
    plan: DRPlan | None = None,
    runbook_version: RunbookVersion | None = None,
    reason: str = "",
    parameters: dict[str, Any] | None = None,
    dry_run: bool = False,
    disaster_declared_at: datetime | None = None,
    trigger_type: str = TriggerType.MANUAL,
    approval_policy: list[dict[str, Any]] | None = None,
    approval_timeout_seconds: int | None = None,
    parallelism: int | None = None,
    rollback_trigger: str = "",
) -> FailoverExecution:
    if trigger_type not in TriggerType.values:
        raise InvalidInput(f"trigger_type must be one of {', '.join(TriggerType.values)}", field="trigger_type")
    if parallelism is not None and (isinstance(parallelism, bool) or not isinstance(parallelism, int)):
        raise InvalidInput("parallelism must be a whole number", field="parallelism")
    if parallelism is not None and not 1 <= parallelism <= 1000:
        raise InvalidInput("parallelism must be between 1 and 1000", field="parallelism")
    policy = approval_policy or []
    now = timezone.now()
    status = ES.AWAITING_APPROVAL if policy else ES.PENDING
    deadline = now + timedelta(seconds=approval_timeout_seconds) if policy and approval_timeout_seconds else None
    guarded = plan is not None and execution_type in FAILOVER_TYPES
    try:
        with transaction.atomic():
            if guarded and (active := _active_failover(plan)) is not None:
                raise _already_active(plan, active)
            execution = FailoverExecution.objects.create(
                plan=plan,
                runbook_version=runbook_version,
                execution_type=execution_type,
                status=status,
                dry_run=dry_run,
                parameters=parameters or {},
                trigger_type=trigger_type,
                trigger_reason=reason,
                triggered_by=_user_or_none(actor),
                triggered_at=now,
                disaster_declared_at=disaster_declared_at,
                parallelism=parallelism,
                rollback_trigger=rollback_trigger,
                approval_policy=policy,
                approval_deadline=deadline,
            )
            graph.create_step_runs(execution, specs)
            what = "dry run" if dry_run else execution_type
            waiting = f", awaiting approval ({len(policy)} level(s))" if policy else ""
            emit(
                execution.pk,
                ExecutionEvent.Kind.STATUS,
                f"{what} triggered by {_username(actor)}{waiting}",
                {"status": status, "steps": len(specs)},
            )
            _audit(
                AuditAction.EXECUTE,
                execution,
                actor,
                auth_method,
                after={
                    "execution_type": execution_type,
                    "plan": plan.plan_id if plan else None,
                    "runbook_version": str(runbook_version) if runbook_version else None,
                    "dry_run": dry_run,
                    "parameters": parameters or {},
                    "status": status,
                    "approval_policy": policy,
                },
                comment=reason,
            )
            if status == ES.PENDING:
                _enqueue_on_commit(execution.pk)
    except IntegrityError:
        if guarded:
            raise _already_active(plan, _active_failover(plan)) from None
        raise
    return execution


def _start_plan(
    plan: DRPlan,
    *,
    execution_type: str,
    category: str,
    strategy_kind: str,
    permission: str,
    actor: Any,
    auth_method: str,
    reason: str,
    parameters: Any,
    dry_run: bool,
    disaster_declared_at: datetime | None,
    trigger_type: str,
    parallelism: int | None,
    coerce_strings: bool,
) -> FailoverExecution:
    _require(actor, permission, f"start a {execution_type}")
    _require_active(plan)
    if execution_type in FAILOVER_TYPES and (active := _active_failover(plan)) is not None:
        raise _already_active(plan, active)
    specs = graph.build_plan_steps(plan, category, include_unapproved=dry_run)
    versions = [v for _, v in graph.plan_runbook_versions(plan, category, include_unapproved=dry_run) if v]
    resolved = validate_parameters(versions, parameters, coerce_strings=coerce_strings)
    needs_approval = execution_type in FAILOVER_TYPES and not dry_run
    return _create_execution(
        execution_type=execution_type,
        specs=specs,
        actor=actor,
        auth_method=auth_method,
        plan=plan,
        reason=reason,
        parameters=resolved,
        dry_run=dry_run,
        disaster_declared_at=disaster_declared_at,
        trigger_type=trigger_type,
        approval_policy=_approval_policy(plan) if needs_approval else [],
        approval_timeout_seconds=plan.approval_timeout_seconds,
        parallelism=parallelism,
        rollback_trigger=_rollback_trigger(plan, strategy_kind),
    )


def start_failover(
    plan: DRPlan,
    *,
    execution_type: str = ExecutionType.PLANNED,
    actor: Any = None,
    auth_method: str = AuthMethod.SYSTEM,
    reason: str = "",
    parameters: Any = None,
    dry_run: bool = False,
    disaster_declared_at: datetime | None = None,
    trigger_type: str = TriggerType.MANUAL,
    parallelism: int | None = None,
    coerce_strings: bool = False,
) -> FailoverExecution:
    """Fail the plan over: its applications' failover runbooks composed into one DAG.

    Needs failover.run_failover and an active plan; one active failover/failback per plan (Conflict).
    Starts AWAITING_APPROVAL when the plan has approval levels (not for dry runs), else PENDING."""
    if execution_type not in (ExecutionType.PLANNED, ExecutionType.UNPLANNED):
        raise InvalidInput("type must be planned or unplanned (or test, via start_test)", field="type")
    return _start_plan(
        plan,
        execution_type=execution_type,
        category=RunbookCategory.FAILOVER,
        strategy_kind=StrategyKind.FAILOVER,
        permission=RUN_FAILOVER,
        actor=actor,
        auth_method=auth_method,
        reason=reason,
        parameters=parameters,
        dry_run=dry_run,
        disaster_declared_at=disaster_declared_at,
        trigger_type=trigger_type,
        parallelism=parallelism,
        coerce_strings=coerce_strings,
    )


def start_failback(
    plan: DRPlan,
    *,
    actor: Any = None,
    auth_method: str = AuthMethod.SYSTEM,
    reason: str = "",
    parameters: Any = None,
    dry_run: bool = False,
    trigger_type: str = TriggerType.MANUAL,
    parallelism: int | None = None,
    coerce_strings: bool = False,
) -> FailoverExecution:
    """Fail the plan back: its failback runbooks, as an execution of its own (same rules as a failover)."""
    return _start_plan(
        plan,
        execution_type=ExecutionType.FAILBACK,
        category=RunbookCategory.FAILBACK,
        strategy_kind=StrategyKind.FAILBACK,
        permission=RUN_FAILOVER,
        actor=actor,
        auth_method=auth_method,
        reason=reason,
        parameters=parameters,
        dry_run=dry_run,
        disaster_declared_at=None,
        trigger_type=trigger_type,
        parallelism=parallelism,
        coerce_strings=coerce_strings,
    )


def start_test(
    plan: DRPlan,
    *,
    actor: Any = None,
    auth_method: str = AuthMethod.SYSTEM,
    reason: str = "",
    parameters: Any = None,
    dry_run: bool = False,
    trigger_type: str = TriggerType.MANUAL,
    parallelism: int | None = None,
    coerce_strings: bool = False,
) -> FailoverExecution:
    """A non-disruptive DR test: the plan's `test` runbooks (400 naming the plan if it has none).
    Needs failover.run_test; no go/no-go approval; validation checks of the failover strategy apply."""
    return _start_plan(
        plan,
        execution_type=ExecutionType.TEST,
        category=RunbookCategory.TEST,
        strategy_kind=StrategyKind.FAILOVER,
        permission=RUN_TEST,
        actor=actor,
        auth_method=auth_method,
        reason=reason,
        parameters=parameters,
        dry_run=dry_run,
        disaster_declared_at=None,
        trigger_type=trigger_type,
        parallelism=parallelism,
        coerce_strings=coerce_strings,
    )


def execute_runbook(
    target: Runbook | RunbookVersion,
    *,
    actor: Any = None,
    auth_method: str = AuthMethod.SYSTEM,
    reason: str = "",
    parameters: Any = None,
    dry_run: bool = False,
    trigger_type: str = TriggerType.MANUAL,
    parallelism: int | None = None,
    coerce_strings: bool = False,
) -> FailoverExecution:
    """Run one runbook version (a Runbook means its latest approved version). Needs failover.run_test.
    Only approved versions run for real (Conflict otherwise); a dry run may take any version."""
    from runbooks.selectors import latest

    _require(actor, RUN_TEST, "run runbooks")
    if isinstance(target, Runbook):
        versions = list(target.versions.all())
        version = latest(v for v in versions if v.status == VersionStatus.APPROVED)
        if version is None and dry_run:
            version = latest(versions)
        if version is None:
            raise Conflict(f"runbook {target.slug!r} has no approved version to run", code="not_approved")
    else:
        version = target
        if version.status != VersionStatus.APPROVED and not dry_run:
            raise Conflict(
                f"runbook version {version} is {version.status}; only approved versions run (a dry run may take any)",
                code="not_approved",
            )
    application = version.runbook.application
    specs = graph.build_runbook_steps(version, tier=application.tier if application else 3)
    resolved = validate_parameters([version], parameters, coerce_strings=coerce_strings)
    return _create_execution(
        execution_type=ExecutionType.RUNBOOK,
        specs=specs,
        actor=actor,
        auth_method=auth_method,
        runbook_version=version,
        reason=reason,
        parameters=resolved,
        dry_run=dry_run,
        trigger_type=trigger_type,
        parallelism=parallelism if parallelism is not None else version.parallelism,
    )


# --- Approvals --------------------------------------------------------------------


def _check_decision(decision: str, comment: str) -> None:
    if decision not in Decision.values:
        raise InvalidInput(f"decision must be one of {', '.join(Decision.values)}", field="decision")
    if decision == Decision.REJECT and not (comment or "").strip():
        raise InvalidInput("a rejection needs a comment explaining why", field="comment")


def _current_level(policy: list[dict[str, Any]], decisions: list[ApprovalDecision]) -> dict[str, Any] | None:
    for level in sorted(policy, key=lambda lv: lv["level"]):
        approvals = {d.user_id for d in decisions if d.level == level["level"] and d.decision == Decision.APPROVE}
        if len(approvals) < int(level.get("approvers", 1)):
            return level
    return None


def _check_approver(actor: Any, execution: FailoverExecution, role: str, what: str) -> None:
    if actor is None or not getattr(actor, "is_authenticated", False) or not actor.has_perm(APPROVE_EXECUTION):
        raise PermissionDenied(f"You need the {APPROVE_EXECUTION} permission to approve or reject.")
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
        level = _current_level(locked.approval_policy or [], decisions)
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
        elif _current_level(locked.approval_policy, [*decisions, record]) is None:
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
    """AWAITING_APPROVAL executions past their deadline → FAILED "approval request expired".
    Called by the reaper; returns how many expired."""
    now = now or timezone.now()
    expired = 0
    overdue = FailoverExecution.objects.filter(status=ES.AWAITING_APPROVAL, approval_deadline__lt=now)
    for execution_id in overdue.values_list("pk", flat=True):
        with transaction.atomic():
            if transition_execution(
                execution_id,
                ES.FAILED,
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
                    after={"status": ES.FAILED, "error": "approval request expired"},
                )
                expired += 1
    return expired


# --- Controlling executions -------------------------------------------------------


def confirm_step(
    execution: FailoverExecution,
    step_key: str,
    actor: Any,
    comment: str = "",
    *,
    auth_method: str = AuthMethod.SYSTEM,
) -> StepRun:
    """A person confirms a manual step is done (the step WAITING for confirmation → SUCCEEDED)."""
    _require(actor, CONFIRM_STEP, "confirm manual steps")
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
    _require(actor, run_permission(execution), f"cancel a {execution.execution_type}")
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
    _require(actor, run_permission(execution), f"resume a {execution.execution_type}")
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
    _require(actor, run_permission(execution), f"retry steps of a {execution.execution_type}")
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
    _require(actor, run_permission(execution), f"mark steps of a {execution.execution_type} done")
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


# --- Readiness --------------------------------------------------------------------


def validate_readiness(plan: DRPlan, *, requester: Any = None, connect_timeout: float = 1.0) -> list[dict[str, Any]]:
    """Can this plan fail over now? Checks, each {name, passed, detail}: plan active, runbooks approved,
    secrets present, targets reachable, approvers available. Reads only (and opens TCP connections)."""
    from failover import readiness

    return readiness.check_plan(plan, requester=requester, connect_timeout=connect_timeout)


# --- Outcome, scheduled tests, compliance (failover/outcomes.py), parameters (failover/parameters.py) ---

from failover.outcomes import FREQUENCIES as FREQUENCIES  # noqa: E402  (re-exported: every use case is here)
from failover.outcomes import OUTCOME_MARKER as OUTCOME_MARKER  # noqa: E402
from failover.outcomes import record_outcome as record_outcome  # noqa: E402
from failover.outcomes import run_scheduled_test as run_scheduled_test  # noqa: E402
from failover.outcomes import schedule_test as schedule_test  # noqa: E402
from failover.outcomes import test_compliance as test_compliance  # noqa: E402
from failover.parameters import validate_parameters as validate_parameters  # noqa: E402


def get_user(username: str) -> Any:
    """For the CLI: the active user of that name, or InvalidInput."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise InvalidInput(f"no active user {username!r}", field="user")
    return user
