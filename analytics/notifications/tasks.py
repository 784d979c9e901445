"""django-q2 entry points of alerts and notifications (thin: the work is in services and delivery).

- `deliver(delivery_id)`: one attempt of a delivery (queued at once when the message is created).
- `run_notifications()`: the schedule's task, every minute: evaluate the alert rules, check the RTO
  forecasts of running executions, release dead workers' claims, queue the deliveries due for a retry.
- `ensure_schedule()`: create that schedule (idempotent); every worker does at start
  (django-q2's post_spawn, connected in analytics/apps.py), and `manage.py notifications schedule`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

logger = logging.getLogger(__name__)

SCHEDULE_NAME = "drplan-notifications"


def deliver(delivery_id: int) -> str:
    from analytics.notifications import delivery

    return delivery.deliver(int(delivery_id))


def enqueue_deliveries(delivery_ids: Iterable[int]) -> None:
    """Queue one delivery task per id (call on commit). A failure to queue is logged: the minute sweep
    finds the pending delivery anyway."""
    for delivery_id in delivery_ids:
        try:
            async_task(
                "analytics.notifications.tasks.deliver", int(delivery_id), task_name=f"notification-{delivery_id}"
            )
        except Exception:
            logger.exception("could not queue notification delivery #%s; the sweep will send it", delivery_id)


def run_notifications() -> str:
    """The every-minute sweep."""
    from analytics.notifications import delivery, services

    counts = services.evaluate_alert_rules()
    forecasts = services.check_rto_forecasts()
    released = delivery.release_stale_claims()
    due = services.pending_due(timezone.now())
    enqueue_deliveries(due)
    return (
        f"alerts fired {counts['fired']}, repeated {counts['repeated']}, resolved {counts['resolved']}; "
        f"RTO forecasts {forecasts}; released {released}; queued {len(due)} due deliveries"
    )


def ensure_schedule() -> bool:
    """Create the every-minute schedule if it does not exist; returns whether it was created."""
    if Schedule.objects.filter(name=SCHEDULE_NAME).exists():
        return False
    Schedule.objects.create(
        name=SCHEDULE_NAME,
        func="analytics.notifications.tasks.run_notifications",
        schedule_type=Schedule.MINUTES,
        minutes=1,
        repeats=-1,
        next_run=timezone.now(),
    )
    return True


def on_worker_start(sender: Any = None, proc_name: str = "", **kwargs: Any) -> None:
    """django_q post_spawn: make sure the schedule exists. Never let this stop the worker."""
    try:
        ensure_schedule()
    except Exception:
        logger.exception("notifications schedule could not be ensured in %s", proc_name)
