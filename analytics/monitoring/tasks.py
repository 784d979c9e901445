"""django-q2 entry points of monitoring: the probe ticker and the hourly compaction.

One ticker, not one schedule per monitor: a single django-q2 schedule (TICK_SCHEDULE, every minute) runs
whichever probes are due (`Probe.next_run_at`, claimed with a conditional update so two workers never run the
same probe twice). The probe rows are the truth and the queue only transport (docs/architecture.md): creating,
editing, disabling or deleting a monitor changes rows only, never schedules that could drift from them or be
left behind; 100 monitors cost one task a minute rather than 100 schedule rows and tasks. The price: a probe
runs at most once a tick, so an interval under 60 s behaves as 60 s (the django-q2 scheduler itself only
looks every 30 s). The compaction (and the violation sweeps) run hourly from a second schedule.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone
from django_q.models import Schedule

logger = logging.getLogger(__name__)

TICK_SCHEDULE = "monitoring-tick"
COMPACT_SCHEDULE = "monitoring-compact"


def tick() -> str:
    from analytics.monitoring import services

    samples = services.run_due()
    unknown = sum(1 for s in samples if s.status != "ok")
    return f"{len(samples)} probe(s) ran, {unknown} unknown"


def compact() -> str:
    from analytics.monitoring import retention, violations

    done = retention.compact()
    swept = violations.evaluate()
    return f"compaction {done}; violations {swept}"


def ensure_schedules() -> list[str]:
    """Create the ticker and the compaction schedules if missing; returns the names created."""
    created = []
    for name, func, minutes in (
        (TICK_SCHEDULE, "analytics.monitoring.tasks.tick", 1),
        (COMPACT_SCHEDULE, "analytics.monitoring.tasks.compact", 60),
    ):
        if not Schedule.objects.filter(name=name).exists():
            Schedule.objects.create(
                name=name,
                func=func,
                schedule_type=Schedule.MINUTES,
                minutes=minutes,
                repeats=-1,
                next_run=timezone.now(),
            )
            created.append(name)
    return created


def on_worker_start(sender: Any = None, proc_name: str = "", **kwargs: Any) -> None:
    """django_q post_spawn: make sure the schedules exist. Never let this stop the worker."""
    try:
        ensure_schedules()
    except Exception:
        logger.exception("monitoring schedules could not be ensured in %s", proc_name)
