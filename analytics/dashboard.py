"""What the dashboard shows: plans against their targets, active executions, approvals waiting for the
signed-in user, upcoming DR tests and recent SLA breaches. Reads only."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from analytics.models import DRTestResult, RTOTarget
from analytics.monitoring import violations
from analytics.selectors import plans_with_last_measured
from failover import selectors
from failover.choices import ACTIVE_STATUSES
from failover.models import FailoverExecution
from failover.services import SCHEDULE_PREFIX
from plans.choices import PlanStatus
from plans.models import DRPlan

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


def upcoming_tests(now: datetime | None = None, limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """Scheduled DR tests (django-q2 schedules made by failover.services.schedule_test), soonest first,
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


def open_violations(limit: int = 20) -> list[Any]:
    """SLA violations still open (RPO above target, missed test cadence), the oldest first."""
    return violations.open_violations(limit)
