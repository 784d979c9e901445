"""Failover use cases: start executions, decide approvals, control running executions, schedule DR tests.

The one entry point for callers. The trigger use cases (start_failover, start_failback, start_test,
execute_runbook) live here; the others are re-exported from their homes: failover/approvals.py
(decisions), failover/controls.py (confirm, cancel, resume, retry, mark done) and
failover/parameters.py; shared plumbing is in failover/common.py. What a finished execution leaves
behind (DR test results, RTO targets) is analytics' business: analytics/outcomes.py, called through
the engine's outcome hook.

Each use case is audited (core.audit.record) in the transaction of its change, and every status
change goes through failover.engine.states (conditional updates: of two racing callers exactly one
wins). The queue is transport: an execution is created in the database and enqueued on commit
(failover.tasks.enqueue_execution), never the other way round.

Decisions worth knowing:
- Go/no-go approval (the plan's approval levels, snapshotted into execution.approval_policy) applies
  to planned/unplanned failovers and failbacks. DR tests and runbook runs are not disruptive and need
  none; dry runs (which execute nothing) need none either. A failover or failback runbook never runs
  on its own (execute_runbook refuses it): only through its plan, under the plan's approvals.
- No execution runs while its approval policy is outstanding (failover.engine.states); an approval
  request that expires ends EXPIRED, which cannot be resumed.
- A dry run of a plan takes each runbook's latest approved version, else its latest version; a real
  run needs an approved version of every runbook (400 naming the runbook otherwise).
- A DR test runs the plan's `test`-category runbooks (400 naming the plan if it has none).
- A person counts once per execution: who approved level 1 cannot also approve level 2.
- A plan has at most one DR test schedule (django-q2, named dr-test:<plan_id>); rescheduling replaces it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.models import Schedule

from core import audit
from core.choices import AuditAction, AuthMethod
from core.exceptions import Conflict, DomainError, InvalidInput
from core.roles import require_permission
from failover.approvals import decide_execution, decide_step, expire_approval_requests
from failover.choices import ACTIVE_STATUSES, ExecutionStatus, ExecutionType, TriggerType
from failover.common import (
    APPROVE_EXECUTION,
    CONFIRM_STEP,
    FAILOVER_TYPES,
    RUN_FAILOVER,
    RUN_TEST,
    _audit,
    _enqueue_on_commit,
    _user_or_none,
    _username,
    run_permission,
)
from failover.controls import cancel, confirm_step, mark_step_done, resume, retry_step
from failover.engine import graph
from failover.engine.events import emit
from failover.models import ExecutionEvent, FailoverExecution
from plans.choices import FailoverMode, PlanStatus, StrategyKind
from plans.models import DRPlan
from runbooks.choices import RunbookCategory, VersionStatus
from runbooks.models import Runbook, RunbookVersion

__all__ = [
    "APPROVE_EXECUTION",
    "CONFIRM_STEP",
    "FAILOVER_TYPES",
    "FREQUENCIES",
    "RUN_FAILOVER",
    "RUN_TEST",
    "cancel",
    "confirm_step",
    "decide_execution",
    "decide_step",
    "execute_runbook",
    "expire_approval_requests",
    "get_user",
    "mark_step_done",
    "resume",
    "retry_step",
    "run_permission",
    "run_scheduled_test",
    "schedule_test",
    "start_failback",
    "start_failover",
    "start_test",
    "validate_parameters",
    "validate_readiness",
]

ES = ExecutionStatus
logger = logging.getLogger(__name__)
SCHEDULE_PREFIX = "dr-test:"  # a plan's DR test schedule is named dr-test:<plan_id> (one per plan)
SCHEDULED_TEST_FUNC = "failover.services.run_scheduled_test"  # stored in django-q2 schedules: keep the path

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


SEMI_AUTOMATIC_APPROVAL = [{"level": 1, "role": "approver", "approvers": 1}]


def _approval_policy(plan: DRPlan, trigger_type: str) -> list[dict[str, Any]]:
    """The plan's go/no-go levels. A semi-automatic plan's automatically detected failover
    always waits for at least one approver, even when the plan names no levels."""
    levels = [
        {"level": level.level, "role": level.role, "approvers": level.min_approvers}
        for level in plan.approval_levels.order_by("level")
    ]
    if not levels and trigger_type == TriggerType.AUTOMATIC and plan.failover_mode == FailoverMode.SEMI_AUTOMATIC:
        return list(SEMI_AUTOMATIC_APPROVAL)
    return levels


def _rollback_trigger(plan: DRPlan, kind: str) -> str:
    """The rollback trigger of the plan's strategy of this kind that has validation checks ('' = none)."""
    strategy = (
        plan.recovery_strategies.filter(kind=kind, validation_checks__isnull=False).order_by("name").distinct().first()
    )
    return strategy.rollback_trigger if strategy else ""


# How long before its failover a disaster may have been declared. The RTO is measured from that moment,
# and measured RTOs feed targets, tests and compliance reports: a mistyped date must not reach them.
MAX_DISASTER_AGE = timedelta(days=7)


def _check_disaster_declared_at(value: datetime | None, triggered_at: datetime) -> None:
    """disaster_declared_at must be an aware time, not after the trigger and at most MAX_DISASTER_AGE before it."""
    if value is None:
        return
    if not isinstance(value, datetime) or timezone.is_naive(value):
        raise InvalidInput(
            "disaster_declared_at must be a date and time with a time zone", field="disaster_declared_at"
        )
    if value > triggered_at:
        raise InvalidInput(
            f"disaster_declared_at {value.isoformat()} is after the trigger time {triggered_at.isoformat()}: "
            "a disaster is declared before its failover starts",
            field="disaster_declared_at",
        )
    if value < triggered_at - MAX_DISASTER_AGE:
        raise InvalidInput(
            f"disaster_declared_at {value.isoformat()} is more than {MAX_DISASTER_AGE.days} days before the trigger "
            f"time {triggered_at.isoformat()}; the RTO is measured from it, so check the date",
            field="disaster_declared_at",
        )


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
    _check_disaster_declared_at(disaster_declared_at, now)
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
    require_permission(actor, permission, f"start a {execution_type}")
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
        approval_policy=_approval_policy(plan, trigger_type) if needs_approval else [],
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
    """A non-disruptive DR test: the plan's `test` runbooks (409 naming the plan if it has none).
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


# Runbooks that change which site serves production. They only run as part of their plan's failover or
# failback (start_failover / start_failback): never on their own, which would skip the plan's go/no-go
# approvals and the one-active-failover guard.
DISRUPTIVE_CATEGORIES = {RunbookCategory.FAILOVER, RunbookCategory.FAILBACK}


def _plans_of(version: RunbookVersion) -> str:
    plan_ids = sorted(
        DRPlan.objects.filter(applications=version.application_id).values_list("plan_id", flat=True)
        if version.application_id
        else []
    )
    return "plan " + ", ".join(repr(p) for p in plan_ids) if plan_ids else "a plan that includes its application"


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
    Only approved versions run for real (Conflict otherwise); a dry run may take any version.
    Failover and failback runbooks only run for real through their plan (Conflict "use_plan_failover")."""
    from runbooks.selectors import latest

    require_permission(actor, RUN_TEST, "run runbooks")
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
    if not dry_run and version.category in DISRUPTIVE_CATEGORIES:
        raise Conflict(
            f"runbook version {version} is a {version.category} runbook: run it through "
            f"POST /api/v1/dr/{version.category} of {_plans_of(version)}, where the plan's go/no-go approvals "
            "and one active failover per plan apply (a dry run may take it on its own)",
            code="use_plan_failover",
        )
    application = version.application
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


# --- Readiness --------------------------------------------------------------------


def validate_readiness(plan: DRPlan, *, requester: Any = None, connect_timeout: float = 1.0) -> list[dict[str, Any]]:
    """Can this plan fail over now? Checks, each {name, passed, detail}: plan active, runbooks approved,
    secrets present, targets reachable, approvers available. Reads only (and opens TCP connections)."""
    from failover import readiness

    return readiness.check_plan(plan, requester=requester, connect_timeout=connect_timeout)


# --- Scheduled DR tests ----------------------------------------------------------------

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
    require_permission(actor, RUN_TEST, "schedule DR tests")
    if (cron is None) == (frequency is None):
        raise InvalidInput("give either cron or frequency, not both", field="frequency" if cron else "cron")
    if frequency is not None and frequency not in FREQUENCIES:
        raise InvalidInput(f"frequency must be one of {', '.join(FREQUENCIES)}", field="frequency")
    if cron is not None and (not isinstance(cron, str) or len(cron) > 100 or not croniter.is_valid(cron)):
        raise InvalidInput(f"{cron!r} is not a valid cron expression", field="cron")
    _require_active(plan)
    graph.build_plan_steps(plan, RunbookCategory.TEST)  # 409 naming the plan if it has nothing to test
    name = SCHEDULE_PREFIX + plan.plan_id
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


# --- Parameters (failover/parameters.py) ---

from failover.parameters import validate_parameters as validate_parameters  # noqa: E402


def get_user(username: str) -> Any:
    """For the CLI: the active user of that name, or InvalidInput."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise InvalidInput(f"no active user {username!r}", field="user")
    return user
