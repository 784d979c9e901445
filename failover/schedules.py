"""Pause, resume and delete a plan's recurring DR test (failover.services.schedule_test creates and
replaces it: one django-q2 schedule per plan, named dr-test:<plan_id>). Audited like the rest.

django-q2 runs a schedule while `repeats` is not 0 (-1: for ever), so pausing sets 0 and resuming -1,
with the next run recomputed from now (a paused schedule does not catch up on the runs it missed).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from core import audit
from core.choices import AuditAction, AuthMethod
from core.exceptions import NotFound
from core.roles import require_permission
from failover.common import RUN_TEST
from failover.services import SCHEDULE_PREFIX, _schedule_summary
from plans.models import DRPlan


def _locked_schedule(plan: DRPlan) -> Any:
    schedule = Schedule.objects.select_for_update().filter(name=SCHEDULE_PREFIX + plan.plan_id).first()
    if schedule is None:
        raise NotFound(f"plan {plan.plan_id!r} has no scheduled DR test", field="plan")
    return schedule


def _record(action: str, schedule: Any, before: dict[str, Any] | None, actor: Any, how: str, comment: str) -> None:
    audit.record(
        action,
        schedule,
        actor=actor,
        auth_method=how,
        before=before,
        after=_schedule_summary(schedule) if action != AuditAction.DELETE else None,
        object_type="django_q.schedule",
        object_repr=schedule.name,
        comment=comment,
    )


def set_schedule_paused(plan: DRPlan, paused: bool, *, actor: Any = None, auth_method: str = AuthMethod.SYSTEM) -> Any:
    """Pause (repeats 0) or resume (repeats -1, next run recomputed) the plan's DR test schedule."""
    require_permission(actor, RUN_TEST, "pause or resume DR test schedules")
    with transaction.atomic():
        schedule = _locked_schedule(plan)
        if (schedule.repeats == 0) == paused:
            return schedule
        before = _schedule_summary(schedule)
        schedule.repeats = 0 if paused else -1
        if not paused:
            schedule.next_run = schedule.calculate_next_run(timezone.now()) if schedule.cron else timezone.now()
        schedule.save()
        _record(AuditAction.UPDATE, schedule, before, actor, auth_method, "paused" if paused else "resumed")
    return schedule


def delete_schedule(plan: DRPlan, *, actor: Any = None, auth_method: str = AuthMethod.SYSTEM) -> None:
    """Delete the plan's DR test schedule (the plan's next test is then due by its frequency only)."""
    require_permission(actor, RUN_TEST, "delete DR test schedules")
    with transaction.atomic():
        schedule = _locked_schedule(plan)
        before = _schedule_summary(schedule)
        _record(AuditAction.DELETE, schedule, before, actor, auth_method, "deleted")
        schedule.delete()
