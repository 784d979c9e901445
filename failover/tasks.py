"""django-q2 entry points of the execution engine (thin: the work is in failover/engine/).

- `enqueue_execution(id)`: queue the coordinator of an execution; call it inside
  `transaction.on_commit` after creating or resuming the execution.
- `run_execution(id)`: the task: runs the coordinator in this worker (failover.engine.runner).
- `reap()`: the task the schedule runs every 30 s (failover.engine.reaper).
Both use the engine hooks installed at start-up (drplan/wiring.py), whose `enqueue` is
`enqueue_execution` here.

Worker start: every django-q2 worker process, when spawned, makes sure the reap schedule
exists and runs `reap()` once (django_q's `post_spawn` signal, connected in
failover/apps.py — the framework offers no other start-up hook), so executions of a worker
that died are picked up as soon as a worker is back. `python manage.py engine schedule`
creates the schedule too (idempotent).
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from core import dbtime
from core.tasks import ensure_checkpoint_schedule
from failover.engine import reaper, runner

logger = logging.getLogger(__name__)

REAP_SCHEDULE_NAME = "drplan-engine-reap"
REAP_CRON = "* * * * * */30"  # every 30 s (6th field: seconds); the django-q2 scheduler looks every 30 s


def run_execution(execution_id: int) -> str:
    return runner.run_execution(int(execution_id))


def reap() -> list[str]:
    return reaper.reap()


def enqueue_execution(execution_id: int) -> None:
    """Queue the coordinator of an execution (django-q2 async_task)."""
    async_task("failover.tasks.run_execution", int(execution_id), task_name=f"execution-{execution_id}")


def ensure_reap_schedule() -> bool:
    """Create the reap schedule if it does not exist; returns whether it was created."""
    if Schedule.objects.filter(name=REAP_SCHEDULE_NAME).exists():
        return False
    Schedule.objects.create(
        name=REAP_SCHEDULE_NAME,
        func="failover.tasks.reap",
        schedule_type=Schedule.CRON,
        cron=REAP_CRON,
        repeats=-1,
        next_run=timezone.now(),
    )
    return True


def on_worker_start(sender: Any = None, proc_name: str = "", **kwargs: Any) -> None:
    """django_q post_spawn: a worker process started. Never let this stop the worker."""
    try:
        dbtime.start_watch()  # this node's clock against the database's, every minute
        ensure_reap_schedule()
        ensure_checkpoint_schedule()
        for line in reap():
            logger.info("worker start (%s): %s", proc_name, line)
    except Exception:
        logger.exception("engine start-up (schedule, reap) failed in %s", proc_name)
