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

import atexit
import contextlib
import gc
import hashlib
import logging
import os
import select
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from django.db import connections, transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ, Schedule
from django_q.tasks import async_task

from core import dbtime
from core.tasks import ensure_checkpoint_schedule
from failover.engine import rawsql, reaper, runner

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
        reaper.start_lease_watch()  # a lapsed lease is taken over within seconds, not at the next 30 s pass
        ensure_reap_schedule()
        ensure_checkpoint_schedule()
        for line in reap():
            logger.info("worker start (%s): %s", proc_name, line)
    except Exception:
        logger.exception("engine start-up (schedule, reap) failed in %s", proc_name)
    freeze_start_up_objects()


def freeze_start_up_objects() -> None:
    """Move every object alive now (Django, the apps, the engine: loaded once, kept for the process's life) out of
    the cyclic garbage collector's reach. Its full collections otherwise walk them all while holding the
    interpreter: a pause of every thread of the process, coordinators and their steps included, measured at 27-60
    ms in the middle of a run, 9-14 ms once they are frozen (bench/RESULTS.md, 2026-12-03 "Engine")."""
    gc.freeze()


# --- the ORM broker, woken by an enqueue ------------------------------------------------------------
#
# django-q2's ORM broker looks for tasks every Q_CLUSTER["poll"] seconds: a trigger waited half a poll
# on average for its coordinator to start (and a shorter poll costs a query, ~1 ms of CPU, each time).
# WakingORM is the same broker (the same table, locks and acknowledgements: django-q2 stays the queue)
# whose idle pusher waits for a wake-up instead of sleeping: PostgreSQL's NOTIFY (delivered on commit,
# to every node), or with SQLite (one machine by nature) a datagram to each pusher's socket (a directory
# of the temporary directory named after the database file). A wake-up is only a hint: the poll still
# runs at least every Q_CLUSTER["poll"] seconds.


class WakingORM(ORM):
    """django-q2's ORM broker; an enqueue wakes the idle pushers (Q_CLUSTER["broker_class"])."""

    _waiter: Any = None

    def __init__(self, list_key: str | None = None) -> None:
        # Not Broker.__init__: its get_connection() closes the caller's database connection when it is not in a
        # transaction (django-q2 drops a long-lived pusher's stale connections there), which cost every trigger a
        # reconnect (and with SQLite a WAL checkpoint) on its way to the queue. The pusher still does it (dequeue).
        self.list_key = list_key or Conf.CLUSTER_NAME
        self.connection = OrmQ.objects.using(Conf.ORM)
        self.cache = self.get_cache()
        self._info = None

    def enqueue(self, task: Any) -> Any:
        """Queue a task (without closing the caller's connection, see __init__) and wake the idle pushers."""
        pk = OrmQ.objects.using(Conf.ORM).create(key=self.list_key, payload=task, lock=timezone.now()).pk
        connection = connections[Conf.ORM]
        if connection.vendor == "postgresql":
            rawsql.notify_task_queue(connection, self.list_key or "")  # delivered when the insert commits
        else:
            transaction.on_commit(lambda: _wake_local(_wake_dir(connection)), using=Conf.ORM)
        return pk

    def dequeue(self) -> Any:
        if self._waiter is None:
            self._waiter = _waiter_for(connections[Conf.ORM])  # before the query: no wake-up is lost
        tasks = self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())[0 : Conf.BULK]
        if tasks:
            taken = []
            for task in tasks:
                if self.get_connection().filter(id=task.id, lock=task.lock).update(lock=self.timeout(task)):
                    taken.append((task.pk, task.payload))
            return taken
        self._waiter.wait(Conf.POLL)
        return None


class _PgWaiter:
    """LISTEN on a connection of its own; wait() returns on a NOTIFY or after the timeout."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.conn = rawsql.listen_task_queue(params)

    def wait(self, timeout: float) -> None:
        for _ in self.conn.notifies(timeout=timeout, stop_after=1):
            pass


class _LocalWaiter:
    """A datagram socket in the wake-up directory of the SQLite database; wait() returns on a datagram
    (emptying the socket) or after the timeout."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"
        self.path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        atexit.register(self.path.unlink, missing_ok=True)
        self.sock.setblocking(False)

    def wait(self, timeout: float) -> None:
        if select.select([self.sock], [], [], timeout)[0]:
            with contextlib.suppress(BlockingIOError):
                while self.sock.recv(64):
                    pass


class _Sleeper:
    def wait(self, timeout: float) -> None:
        time.sleep(timeout)


def _waiter_for(connection: Any) -> Any:
    try:
        if connection.vendor == "postgresql":
            return _PgWaiter(connection.get_connection_params())
        return _LocalWaiter(_wake_dir(connection))
    except Exception:  # no wake-ups (a path too long for a socket, a refused LISTEN): plain polling
        logger.warning("task queue: no wake-ups, polling every %s s", Conf.POLL, exc_info=True)
        return _Sleeper()


def _wake_dir(connection: Any) -> Path:
    """The wake-up sockets of the pushers of one SQLite database (a short path: sockets have a length limit)."""
    database = str(Path(connection.settings_dict["NAME"]).resolve())
    return Path(tempfile.gettempdir()) / f"drplan-q-wake-{hashlib.sha256(database.encode()).hexdigest()[:16]}"


def _wake_local(directory: Path) -> None:
    """One datagram to every pusher of this SQLite database; sockets nobody reads any more are removed."""
    try:
        paths = list(directory.glob("*.sock"))
    except OSError:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for path in paths:
            try:
                sock.sendto(b"1", str(path))
            except BlockingIOError:
                pass  # its buffer is full of wake-ups already
            except (ConnectionRefusedError, FileNotFoundError):
                path.unlink(missing_ok=True)
            except OSError:
                pass
