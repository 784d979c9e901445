"""The reaper: no execution stays stuck because a worker died.

`reap()` runs at worker start, every 30 s (a django-q2 schedule, see failover/tasks.py), and whenever a worker
process's lease watch (`watch_leases`, every ENGINE_LEASE_WATCH_SECONDS) sees a lapsed lease:
- an execution that needs a coordinator (RUNNING / VALIDATING / ROLLING_BACK) whose lease
  expired or is empty → re-enqueued;
- the same when its lease is still live but its coordinator was a process of this host that no
  longer exists (its identity is host:pid:random): a dead process writes nothing more, so there
  is no need to wait for the lease to run out. This is what lets a worker restarted after a crash
  take over at once (issue: lost coordinator taken over within 5 s on one machine); a coordinator
  on another host is still taken over when its lease expires;
- a PENDING execution nobody picked up for PENDING_GRACE_SECONDS → re-enqueued;
- approval requests past their deadline → expired (the hook EngineHooks.expire_approvals).
Re-enqueueing goes through the hook EngineHooks.enqueue (failover/engine/hooks.py).
"Expired" and "older than" are judged by the database server's clock (the ORM's `Now()` in the
conditional updates, see lease.py), never by this node's: a node whose clock runs ahead does not
take over live leases.
A re-enqueued execution is reserved (empty coordinator, lease in the future) so the next reap
does not enqueue it again while the task waits for a free worker; a coordinator takes a
reserved execution at once.

`recover_orphaned_steps()` runs in the new coordinator right after it took the lease: a step
left RUNNING by the dead coordinator is retried if it is idempotent; otherwise it is LOST (it
may or may not have done its work) and the execution is PAUSED until an operator decides.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import DateTimeField, ExpressionWrapper, Q
from django.db.models.functions import Now
from django.utils import timezone

from failover.choices import ExecutionStatus as ES
from failover.choices import StepStatus as SS
from failover.engine.hooks import EngineHooks, installed
from failover.engine.states import transition_execution, transition_step
from failover.models import FailoverExecution, StepRun

logger = logging.getLogger(__name__)

NEEDS_COORDINATOR = Q(status__in=[ES.RUNNING, ES.VALIDATING, ES.ROLLING_BACK])
PENDING_GRACE_SECONDS = 30  # a PENDING execution older than this without a coordinator was never picked up
REQUEUE_RESERVATION_SECONDS = 60


def reap(now: datetime | None = None, *, hooks: EngineHooks | None = None) -> list[str]:
    """Resolve stale work; returns one line per thing done. `hooks` default to the installed ones.
    `now` (tests) stands for the database server's clock, which is used without it."""
    hooks = hooks or installed()
    done: list[str] = []
    done.extend(_expire_approvals(hooks.expire_approvals))
    lapsed = _lapsed(now)
    stale = NEEDS_COORDINATOR | Q(status=ES.PENDING, triggered_at__lt=_db_time(now, -PENDING_GRACE_SECONDS))
    candidates = list(FailoverExecution.objects.filter(stale & lapsed).values_list("pk", "status", "coordinator"))
    held = FailoverExecution.objects.filter(NEEDS_COORDINATOR).exclude(Q(coordinator="") | lapsed)
    for pk, status, coordinator in held.values_list("pk", "status", "coordinator"):
        if coordinator_is_dead_local_process(coordinator):
            candidates.append((pk, status, coordinator))
    for pk, status, coordinator in candidates:
        still_stale = lapsed | Q(coordinator=coordinator) if coordinator else lapsed
        reserved = FailoverExecution.objects.filter(Q(pk=pk, status=status) & still_stale).update(
            coordinator="", lease_expires_at=_db_time(now, REQUEUE_RESERVATION_SECONDS)
        )
        if not reserved:
            continue  # a coordinator took it meanwhile
        hooks.enqueue(pk)
        if coordinator and coordinator_is_dead_local_process(coordinator):
            done.append(f"execution {pk} ({status}): coordinator {coordinator} is gone; re-enqueued")
        elif coordinator:
            done.append(f"execution {pk} ({status}): lease of {coordinator} expired; re-enqueued")
        else:
            done.append(f"execution {pk} ({status}): no coordinator; re-enqueued")
    for line in done:
        logger.info("reaper: %s", line)
    return done


def _lapsed(now: datetime | None = None) -> Q:
    """No lease, or one that ended before `now` (by default the database server's clock)."""
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now or Now())


def lapsed_leases_exist() -> bool:
    """Whether an execution that needs a coordinator has none whose lease is live (one indexed query)."""
    return FailoverExecution.objects.filter(NEEDS_COORDINATOR & _lapsed()).exists()


def watch_leases(interval: float, stop: threading.Event) -> None:
    """Every `interval` seconds until `stop` is set: reap as soon as a lease has lapsed. The schedule's pass every
    30 s would leave an execution whose node was lost without a coordinator for up to 30 s after its lease ended;
    every worker process of every node watches, and the reaper's conditional reservation lets one of them win."""
    try:
        while not stop.wait(interval):
            try:
                if lapsed_leases_exist():
                    reap()
            except Exception as exc:  # the database may be away: look again at the next tick
                logger.warning("lease watch: could not look for lapsed leases: %s: %s", type(exc).__name__, exc)
                connection.close()  # this thread's own connection; the next tick opens a new one
    finally:
        connection.close()


_lease_watch_started = threading.Event()


def start_lease_watch(interval: float | None = None) -> bool:
    """Watch leases on a daemon thread, once per process; not at all when the interval is 0. Whether it started."""
    interval = settings.ENGINE_LEASE_WATCH_SECONDS if interval is None else interval
    if _lease_watch_started.is_set() or interval <= 0:
        return False
    _lease_watch_started.set()
    args = (interval, threading.Event())
    threading.Thread(target=watch_leases, args=args, name="lease-watch", daemon=True).start()
    return True


def _db_time(now: datetime | None, seconds: float) -> datetime | ExpressionWrapper:
    """`now` + seconds, or the database server's time + seconds (evaluated by the server)."""
    if now is not None:
        return now + timedelta(seconds=seconds)
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


def coordinator_is_dead_local_process(coordinator: str) -> bool:
    """Whether `coordinator` (host:pid:random, see lease.worker_identity) names a process of this
    host that no longer exists. Anything else (another host, a malformed identity, a live process,
    a process we may not signal) is not known dead: its lease is left to run out."""
    host, _, rest = coordinator.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    return _is_zombie(int(pid_text))


def _is_zombie(pid: int) -> bool:
    """A killed process whose parent died too stays a zombie until init reaps it (in a container,
    PID 1 may never do so): it runs nothing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _expire_approvals(expire: Callable[[], int]) -> list[str]:
    try:
        expired = expire()
    except Exception:
        logger.exception("reaper: expire_approval_requests failed")
        return ["expire_approval_requests failed (see the log)"]
    return [f"expired {expired} approval request(s)"] if expired else []


def recover_orphaned_steps(execution_id: int, worker_id: str) -> list[str]:
    """Resolve steps left RUNNING by a dead coordinator. Returns the step_keys now LOST
    (the execution is then PAUSED); idempotent steps go back to PENDING to run again."""
    lost: list[str] = []
    orphans = StepRun.objects.filter(execution_id=execution_id, status=SS.RUNNING).exclude(worker=worker_id)
    for step in orphans.order_by("id"):
        dead = step.worker or "an unknown worker"
        if step.idempotent:
            transition_step(
                step,
                SS.PENDING,
                only_from={SS.RUNNING},
                message=f"{step.step_key}: retrying after worker loss ({dead})",
                worker="",
                heartbeat_at=None,
            )
        elif transition_step(
            step,
            SS.LOST,
            only_from={SS.RUNNING},
            message=f"{step.step_key} lost: {dead} died while it ran",
            error=(
                f"the worker {dead} died while this step was running; it may or may not have done its work. "
                "It is not idempotent, so it was not re-run: verify, then mark it done or retry it."
            ),
            finished_at=timezone.now(),
        ):
            lost.append(step.step_key)
    if lost:
        names = ", ".join(f"'{key}'" for key in lost)
        transition_execution(
            execution_id,
            ES.PAUSED,
            only_from={ES.RUNNING},
            message=f"paused: step {names} lost with its worker",
            error=(
                f"step {names} was running when its worker died and is not idempotent; not re-run. "
                "Verify whether it completed, then mark it done or retry it, and resume."
            ),
            coordinator="",
            lease_expires_at=None,
        )
    return lost
