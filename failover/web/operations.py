"""The one-click operations of the plan page: what each one runs, what the user sees before confirming,
and the call that starts it — the same use cases the API's POST /failover, /failback, /test and
/failover/validate call (failover.services), so every rule holds from the page too: permissions, an
active plan, approved runbooks, go/no-go approvals, one active failover or failback per plan.

A submitted confirmation carries a one-time token: the same token twice (a double click, a resent form)
starts one execution, and the second submission lands on the first one's console.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache

from core.choices import AuthMethod
from core.exceptions import Conflict, InvalidInput, PermissionDenied
from failover import selectors, services
from failover.choices import ACTIVE_STATUSES, ExecutionType, TriggerType
from failover.common import FAILOVER_TYPES, RUN_FAILOVER, RUN_TEST
from failover.engine import graph
from failover.models import FailoverExecution
from plans.choices import PlanStatus
from plans.models import DRPlan
from runbooks.choices import RunbookCategory
from runbooks.selectors import critical_path

TOKEN_PATTERN = re.compile(r"^[0-9a-f]{32}$")
TOKEN_TTL_SECONDS = 24 * 3600
TOKEN_WAIT_SECONDS = 10  # a second submission waits this long for the first one to finish starting


@dataclass(frozen=True)
class Operation:
    key: str
    label: str
    permission: str
    category: str  # the runbooks it composes
    execution_type: str | None  # None: validate readiness, which starts nothing
    dry_run: bool = False
    confirm_id: bool = False  # the person types the plan's id to confirm
    danger: bool = False
    summary: str = ""

    @property
    def starts_execution(self) -> bool:
        return self.execution_type is not None

    @property
    def needs_approval(self) -> bool:
        return self.execution_type in FAILOVER_TYPES and not self.dry_run


OPERATIONS: dict[str, Operation] = {
    op.key: op
    for op in (
        Operation(
            "validate",
            "Validate readiness",
            RUN_FAILOVER,
            RunbookCategory.FAILOVER,
            None,
            summary="Checks that the plan could fail over now: active, runbooks approved, secrets defined, "
            "targets reachable, approvers available. Changes nothing.",
        ),
        Operation(
            "dry-run",
            "Dry run",
            RUN_FAILOVER,
            RunbookCategory.FAILOVER,
            ExecutionType.PLANNED,
            dry_run=True,
            summary="Renders every step of the planned failover without executing any of them "
            "(the latest version of a runbook that has no approved one).",
        ),
        Operation(
            "test",
            "Start DR test",
            RUN_TEST,
            RunbookCategory.TEST,
            ExecutionType.TEST,
            summary="Runs the plan's non-disruptive test runbooks; the result is recorded as a DR test.",
        ),
        Operation(
            "planned",
            "Planned failover",
            RUN_FAILOVER,
            RunbookCategory.FAILOVER,
            ExecutionType.PLANNED,
            confirm_id=True,
            danger=True,
            summary="Moves production to the DR site: the failover runbooks of the plan's applications, "
            "composed along the dependency map.",
        ),
        Operation(
            "unplanned",
            "Declare disaster",
            RUN_FAILOVER,
            RunbookCategory.FAILOVER,
            ExecutionType.UNPLANNED,
            confirm_id=True,
            danger=True,
            summary="Declares a disaster and starts an unplanned failover; the RTO is measured from the "
            "moment the disaster was declared.",
        ),
        Operation(
            "failback",
            "Failback",
            RUN_FAILOVER,
            RunbookCategory.FAILBACK,
            ExecutionType.FAILBACK,
            confirm_id=True,
            danger=True,
            summary="Moves production back to the primary site: the plan's failback runbooks.",
        ),
    )
}


def get_operation(key: str) -> Operation | None:
    return OPERATIONS.get(key)


def operations_for(user: Any, plan: DRPlan) -> list[Operation]:
    """The operations this user holds the permission for (the page shows only those). Whether the plan's
    state allows one now is shown on its confirmation page, with the reason."""
    if not user.is_authenticated:
        return []
    return [op for op in OPERATIONS.values() if user.has_perm(op.permission)]


def active_failover(plan: DRPlan) -> FailoverExecution | None:
    return (
        FailoverExecution.objects.filter(plan=plan, status__in=ACTIVE_STATUSES, execution_type__in=FAILOVER_TYPES)
        .order_by("pk")
        .first()
    )


def preview(op: Operation, plan: DRPlan, user: Any) -> dict[str, Any]:
    """What the confirmation page shows: the composed steps and their critical path, the go/no-go levels
    the execution will wait for, the last measured RPO, and every reason it would be refused now (the
    service decides again on submit)."""
    blockers: list[str] = []
    if not user.has_perm(op.permission):
        blockers.append(f"Your role does not allow this: it needs the {op.permission} permission.")
    if not op.starts_execution:  # validating readiness reports the plan's state as its findings
        return {"blockers": blockers, "active": None, "steps": [], "critical_path": [], "critical_seconds": 0,
                "approval_levels": [], "approval_timeout_seconds": None, "last_rpo_seconds": None}  # fmt: skip
    if plan.status != PlanStatus.ACTIVE:
        blockers.append(f"The plan is {plan.get_status_display().lower()}; only active plans run operations.")
    active = active_failover(plan) if op.execution_type in FAILOVER_TYPES else None  # dry runs too (the guard)
    if active is not None:
        blockers.append(
            f"Another failover or failback of this plan is active: execution #{active.pk} "
            f"({active.get_execution_type_display().lower()}, {active.get_status_display().lower()})."
        )
    steps: list[dict[str, Any]] = []
    path: list[str] = []
    seconds = 0
    try:
        specs = graph.build_plan_steps(plan, op.category, include_unapproved=op.dry_run)
    except (Conflict, InvalidInput) as exc:
        blockers.append(_sentence(exc.message))
        specs = []
    if specs:
        doc = {
            "steps": [
                {"id": s.step_key, "needs": list(s.needs), "estimated_duration": s.estimated_duration_seconds or 0}
                for s in specs
            ]
        }
        path, seconds = critical_path(doc)
        on_path = set(path)
        steps = [
            {
                "key": s.step_key,
                "title": s.title,
                "action": s.action,
                "needs": s.needs,
                "tier": s.tier,
                "estimate": s.estimated_duration_seconds,
                "critical": s.step_key in on_path,
                "approval": s.approval,
            }
            for s in graph.topological_order(specs)
        ]
    levels = list(plan.approval_levels.order_by("level")) if op.needs_approval else []
    return {
        "blockers": blockers,
        "active": active,
        "steps": steps,
        "critical_path": path,
        "critical_seconds": seconds,
        "approval_levels": levels,
        "approval_timeout_seconds": plan.approval_timeout_seconds if levels else None,
        "last_rpo_seconds": selectors.last_measured_rpo(plan.pk),
    }


def _sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def new_token() -> str:
    return uuid.uuid4().hex


def _token_key(token: str) -> str:
    return f"web-operation:{token}"


def claim_token(token: str) -> int | None:
    """Claim a confirmation's token for one start. Returns None when this submission is the first (go on),
    else the execution the first one started (waiting briefly while it is still starting). Conflict when
    the first submission did not finish in time; InvalidInput for a malformed token."""
    if not isinstance(token, str) or not TOKEN_PATTERN.match(token):
        raise InvalidInput("This form has no valid submission token: reload the page and try again.", field="token")
    key = _token_key(token)
    if cache.add(key, 0, timeout=TOKEN_TTL_SECONDS):
        return None
    deadline = time.monotonic() + TOKEN_WAIT_SECONDS
    while True:
        value = cache.get(key)
        if value:
            return int(value)
        # None: the first submission was refused and released the token, so this one may try again.
        if value is None and cache.add(key, 0, timeout=TOKEN_TTL_SECONDS):
            return None
        if time.monotonic() > deadline:
            raise Conflict("This form was already submitted and is still being processed.", code="already_submitted")
        time.sleep(0.1)


def settle_token(token: str, execution: FailoverExecution | None) -> None:
    """Record what the token started (a later submission lands there), or release it after a refusal."""
    if execution is None:
        cache.delete(_token_key(token))
    else:
        cache.set(_token_key(token), execution.pk, timeout=TOKEN_TTL_SECONDS)


def start(
    op: Operation,
    plan: DRPlan,
    user: Any,
    *,
    reason: str = "",
    disaster_declared_at: datetime | None = None,
) -> FailoverExecution:
    """Start the operation through failover.services, as the API does (trigger type manual: a person on the
    page). Raises the services' PermissionDenied, Conflict or InvalidInput, with their messages."""
    kwargs: dict[str, Any] = {
        "actor": user,
        "auth_method": AuthMethod.SESSION,
        "reason": reason,
        "trigger_type": TriggerType.MANUAL,
    }
    if op.execution_type == ExecutionType.TEST:
        return services.start_test(plan, **kwargs)
    if op.execution_type == ExecutionType.FAILBACK:
        return services.start_failback(plan, **kwargs)
    if op.execution_type in (ExecutionType.PLANNED, ExecutionType.UNPLANNED):
        return services.start_failover(
            plan,
            execution_type=op.execution_type,
            dry_run=op.dry_run,
            disaster_declared_at=disaster_declared_at if op.execution_type == ExecutionType.UNPLANNED else None,
            **kwargs,
        )
    raise InvalidInput(f"{op.label} does not start an execution", field="operation")


def validate(plan: DRPlan, user: Any) -> dict[str, Any]:
    """Readiness checks, as POST /failover/validate: the same permission, the same service."""
    if not user.has_perm(RUN_FAILOVER):
        raise PermissionDenied(f"You need the {RUN_FAILOVER} permission to validate a plan's readiness.")
    checks = services.validate_readiness(plan, requester=user)
    return {"ready": all(c["passed"] for c in checks), "checks": checks}
