"""Reads for the executions list and the schedules page (the approvals inbox reuses
failover.console.execution_approvals_for and runbooks.selectors.runbook_approvals_for,
the rules the console and the services apply)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import F, QuerySet
from django.utils import timezone

from core.exceptions import InvalidInput
from failover.choices import ExecutionStatus, ExecutionType
from failover.selectors import execution_list
from failover.services import SCHEDULE_PREFIX
from plans.models import DRPlan

PERIODS = {
    "24h": ("Last 24 hours", 1),
    "7d": ("Last 7 days", 7),
    "30d": ("Last 30 days", 30),
    "90d": ("Last 90 days", 90),
    "365d": ("Last year", 365),
}
PLAN_ID = re.compile(r"[-a-zA-Z0-9_]{1,100}")  # a slug (plans.models.DRPlan.plan_id)


@dataclass(frozen=True)
class ExecutionFilters:
    plan: str = ""
    type: str = ""
    status: str = ""
    period: str = ""

    @classmethod
    def from_query(cls, query: Any) -> ExecutionFilters:
        """The list's filters from a query string; an unknown value is InvalidInput naming it."""
        values = {name: (query.get(name) or "").strip() for name in ("plan", "type", "status", "period")}
        if values["plan"] and not PLAN_ID.fullmatch(values["plan"]):
            raise InvalidInput(f"no plan {values['plan']!r}", field="plan")
        if values["type"] and values["type"] not in ExecutionType.values:
            raise InvalidInput(f"type must be one of {', '.join(ExecutionType.values)}", field="type")
        if values["status"] and values["status"] not in ExecutionStatus.values:
            raise InvalidInput(f"status must be one of {', '.join(ExecutionStatus.values)}", field="status")
        if values["period"] and values["period"] not in PERIODS:
            raise InvalidInput(f"period must be one of {', '.join(PERIODS)}", field="period")
        if values["plan"] and not DRPlan.objects.filter(plan_id=values["plan"]).exists():
            raise InvalidInput(f"no plan {values['plan']!r}", field="plan")
        return cls(**values)


def executions(filters: ExecutionFilters) -> QuerySet:
    """Executions newest first, with what the list shows (plan, runbook, who triggered)."""
    queryset = execution_list().order_by("-triggered_at", "-id")
    if filters.plan:
        queryset = queryset.filter(plan__plan_id=filters.plan)
    if filters.type:
        queryset = queryset.filter(execution_type=filters.type)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.period:
        queryset = queryset.filter(triggered_at__gte=timezone.now() - timedelta(days=PERIODS[filters.period][1]))
    return queryset


def schedules() -> list[dict[str, Any]]:
    """The recurring DR tests (django-q2 schedules made by failover.services.schedule_test), by next run."""
    from django_q.models import Schedule

    rows = Schedule.objects.filter(name__startswith=SCHEDULE_PREFIX).order_by(
        F("next_run").asc(nulls_last=True), "name"
    )
    plans = {
        p.plan_id: p for p in DRPlan.objects.filter(plan_id__in=[s.name.removeprefix(SCHEDULE_PREFIX) for s in rows])
    }
    return [
        {
            "schedule": s,
            "plan_id": s.name.removeprefix(SCHEDULE_PREFIX),
            "plan": plans.get(s.name.removeprefix(SCHEDULE_PREFIX)),
            "paused": s.repeats == 0,
        }
        for s in rows
    ]
