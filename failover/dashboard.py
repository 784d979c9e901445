"""What the dashboard shows: plans against their targets, active executions, approvals waiting for the
signed-in user, upcoming DR tests and recent SLA breaches. Reads only."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Prefetch, Q, QuerySet
from django.utils import timezone

from analytics.models import DRTestResult, RTOTarget
from failover import selectors
from failover.choices import ACTIVE_STATUSES
from failover.choices import ExecutionStatus as ES
from failover.common import APPROVE_EXECUTION
from failover.console import can_decide_execution, role_names
from failover.models import ApprovalDecision, FailoverExecution
from plans.choices import PlanStatus
from plans.models import DRPlan
from plans.selectors import plans_with_last_measured
from runbooks.choices import VersionStatus
from runbooks.models import RunbookVersion
from runbooks.services import _current_level as _runbook_level

APPROVE_RUNBOOK = "runbooks.approve_runbookversion"
SCHEDULE_PREFIX = "dr-test:"  # failover.outcomes.schedule_test names each plan's schedule dr-test:<plan_id>
BREACH_WINDOW_DAYS = 90


def _plans_in_force() -> QuerySet[DRPlan]:
    return DRPlan.objects.exclude(status=PlanStatus.ARCHIVED)


def _met(measured: float | None, target: float) -> bool | None:
    return None if measured is None else measured <= target


def plan_rows() -> list[dict[str, Any]]:
    """Plans in force (not archived) with their RTO/RPO targets against the latest test's measurements."""
    plans = plans_with_last_measured(_plans_in_force()).order_by("plan_id")
    return [
        {
            "plan": plan,
            "rto_met": _met(plan.last_rto_seconds, plan.rto_seconds),
            "rpo_met": _met(plan.last_rpo_seconds, plan.rpo_seconds),
        }
        for plan in plans
    ]


def active_executions(limit: int = 50) -> list[FailoverExecution]:
    return list(selectors.execution_list().filter(status__in=ACTIVE_STATUSES).order_by("-triggered_at", "-id")[:limit])


def execution_approvals_for(user: Any) -> list[FailoverExecution]:
    """Executions awaiting approval whose current level this user may decide now: permitted, holding the
    level's role, not the one who triggered it, not decided on it yet (failover.approvals' rules)."""
    if not user.is_authenticated or not user.has_perm(APPROVE_EXECUTION):
        return []
    roles = role_names(user)
    waiting = (
        selectors.execution_list()
        .filter(status=ES.AWAITING_APPROVAL)
        .exclude(triggered_by=user)
        .prefetch_related(Prefetch("approval_decisions", queryset=ApprovalDecision.objects.filter(step_run=None)))
        .order_by("triggered_at", "id")
    )
    return [e for e in waiting if can_decide_execution(user, e, list(e.approval_decisions.all()), roles)]


def runbook_approvals_for(user: Any) -> list[RunbookVersion]:
    """Runbook versions pending approval that this user may decide now (runbooks.services.decide's rules:
    permitted, not a contributor (creator, editor or submitter), not decided before, holding the current
    required level's role)."""
    if not user.is_authenticated or not user.has_perm(APPROVE_RUNBOOK):
        return []
    roles = role_names(user)
    pending = (
        RunbookVersion.objects.filter(status=VersionStatus.PENDING_APPROVAL)
        .exclude(created_by=user)
        .exclude(contributors=user)
        .exclude(decisions__user=user)
        .select_related("runbook", "created_by")
        .prefetch_related("approval_levels", "decisions")
        .order_by("submitted_at", "id")
    )
    mine = []
    for version in pending:
        levels = sorted(version.approval_levels.all(), key=lambda lv: lv.level)
        if not levels:
            mine.append(version)
            continue
        current = _runbook_level(levels, list(version.decisions.all()))
        if current is not None and (roles is None or current.role in roles):
            mine.append(version)
    return mine


def upcoming_tests(now: datetime | None = None, limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """Scheduled DR tests (django-q2 schedules made by failover.outcomes.schedule_test), soonest first,
    and active plans by when their next test is due (overdue ones flagged)."""
    from django_q.models import Schedule

    now = now or timezone.now()
    scheduled = [
        {
            "plan_id": schedule.name.removeprefix(SCHEDULE_PREFIX),
            "next_run": schedule.next_run,
            "cron": schedule.cron or "",
            "schedule_type": schedule.get_schedule_type_display(),
        }
        for schedule in Schedule.objects.filter(name__startswith=SCHEDULE_PREFIX)
        .exclude(repeats=0)  # paused (failover.schedules)
        .order_by(F("next_run").asc(nulls_last=True), "name")[:limit]
    ]
    due = [
        {"plan": plan, "next_test_due": plan.next_test_due, "overdue": plan.next_test_due < now}
        for plan in plans_with_last_measured(_plans_in_force().filter(status=PlanStatus.ACTIVE)).order_by(
            "next_test_due", "plan_id"
        )[:limit]
    ]
    return {"scheduled": scheduled, "due": due}


def sla_breaches(now: datetime | None = None, limit: int = 20) -> dict[str, list[Any]]:
    """Applications whose RTO target counts breaches, and test results of the last BREACH_WINDOW_DAYS
    that missed their RTO or RPO target, newest first."""
    now = now or timezone.now()
    targets = list(
        RTOTarget.objects.filter(breach_count__gt=0)
        .select_related("application")
        .order_by("-breach_count", "application__slug")[:limit]
    )
    missed = list(
        DRTestResult.objects.filter(test_date__gte=now - timedelta(days=BREACH_WINDOW_DAYS))
        .filter(Q(actual_rto_seconds__gt=F("target_rto_seconds")) | Q(actual_rpo_seconds__gt=F("target_rpo_seconds")))
        .select_related("plan", "execution")
        .order_by("-test_date", "-id")[:limit]
    )
    return {"targets": targets, "tests": missed}
