"""The coordinator riding out a short database outage (issue 15), and fencing itself after a long one.

Each of the coordinator's write turns (the loop's transaction, the poll, the terminal transition) runs
through `guarded`. When the database fails inside it (the server restarted, the connection dropped,
a deadlock), the transaction rolled back, so the coordinator's memory goes back to what it was
before the turn (`snapshot` / `restore`; the step rows are read again), and it waits for the
database with backoff (lease.ride_out), renewing its lease, until its fence deadline. If the database
returns in time, the same turn runs again with the same step results: a step that finished during
the outage is recorded then, not lost, and nothing is marked failed. If it does not, lease.Fenced:
the coordinator stops as when its lease is lost (no more writes, its steps' processes stopped)
before the lease can expire, and the reaper of some node takes the execution over after expiry.

A database call can also hang rather than fail (a network partition: no error, no answer). The
`Watchdog` thread stops the coordinator's steps at the fence deadline all the same, and the coordinator,
once its thread returns, finds the fence tripped and stops (Fenced) before its next turn.

A commit that failed is different: it may or may not have been applied, and running the turn again
could record events twice or leave a dispatched step never started. The coordinator fences itself
at once (the turn sets `committing` just before its commit) and the next coordinator starts from
what the database holds."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from failover.engine.dispatch import Attempt
from failover.engine.lease import DB_ERRORS, Fenced, renew_lease, reset_connection, ride_out
from failover.engine.rawsql import StepMovesConflicted
from failover.models import StepRun

if TYPE_CHECKING:
    from failover.engine.runner import Coordinator

logger = logging.getLogger(__name__)

T = TypeVar("T")
WATCH_SECONDS = 0.1  # how often the watchdog looks at the fence


@dataclass
class Snapshot:
    """What a turn may change in the coordinator's memory (the steps' rows are read again instead)."""

    running: dict[int, Attempt]
    ready: list[tuple[int, int, int]]
    unmet: dict[int, int]
    waiting: set[int]
    failure: str
    outputs: dict[str, dict[str, Any]]
    measured: dict[str, float]


def snapshot(c: Coordinator) -> Snapshot:
    return Snapshot(
        running={pk: copy.copy(attempt) for pk, attempt in c.running.items()},
        ready=list(c.ready),
        unmet=dict(c.unmet),
        waiting=set(c.waiting),
        failure=c.failure,
        outputs=dict(c.outputs),
        measured=dict(c.measured),
    )


def restore(c: Coordinator, saved: Snapshot) -> None:
    c.running, c.ready, c.unmet, c.waiting = saved.running, saved.ready, saved.unmet, saved.waiting
    c.failure, c.outputs, c.measured = saved.failure, saved.outputs, saved.measured


def refresh_steps(c: Coordinator) -> None:
    """The step rows as the database holds them, into the coordinator's step objects."""
    for row in StepRun.objects.filter(execution_id=c.execution_id):
        step = c.steps.get(row.pk)
        if step is not None:
            step.__dict__.update({name: value for name, value in row.__dict__.items() if name != "_state"})


def guarded(c: Coordinator, what: str, work: Callable[..., T], *args: Any) -> T:
    """`work(*args)`; after a database error in it, restore, wait for the database within the fence and run it
    again. Raises Fenced when the fence deadline passes first, or when the error came from a commit."""
    while True:
        if c.fence.tripped:
            raise Fenced(f"{what}: the fence deadline passed while a database call hung; the steps were stopped")
        saved = snapshot(c)
        c.committing = False
        try:
            result = work(*args)
        except StepMovesConflicted as conflict:  # (before the commit) someone else wrote a step row: check each move
            logger.warning("execution %s: %s; %s again, each step move checked", c.execution_id, conflict, what)
            restore(c, saved)
            refresh_steps(c)
            c.defer_moves = False
            continue
        except DB_ERRORS as error:
            if c.committing:
                raise Fenced(f"{what}: the database failed during a commit ({error}); outcome unknown") from error
            restore(c, saved)
            reset_connection()

            def back() -> None:
                renew_lease(c.execution_id, c.worker, heartbeat_steps=bool(c.running), fence=c.fence)
                refresh_steps(c)

            ride_out(c.fence, back, what=f"execution {c.execution_id}: {what}")
            continue
        if c.fence.tripped:  # the turn hung past the deadline, then went through: act on nothing it decided
            raise Fenced(f"{what}: the fence deadline passed while this turn's database calls hung; steps stopped")
        return result


class Watchdog:
    """A thread that stops the coordinator's steps (its cancel event) when its fence deadline passes, even while
    the coordinator's own thread is stuck in a database call; it marks the fence tripped so the coordinator
    stops too when it gets control back (guarded). `stop()` when the coordinator ends."""

    def __init__(self, c: Coordinator) -> None:
        self.c = c
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, name=f"fence-{c.execution_id}", daemon=True)

    def start(self) -> Watchdog:
        # Whatever stops the steps (this deadline, a lost lease, an operator's cancel), their processes must be
        # gone before the lease could expire: a step that ignores SIGTERM gets SIGKILL in time (shell.py).
        self.c.cancel_event.kill_by = self.c.fence.kill_by  # type: ignore[attr-defined]
        self.thread.start()
        return self

    def stop(self) -> None:
        self.done.set()

    def _watch(self) -> None:
        while not self.done.wait(WATCH_SECONDS):
            if self.c.fence.passed():
                self.c.fence.trip()
                self.c.cancel_event.set()
                logger.error(
                    "execution %s: %s reached its fence deadline without renewing its lease; its steps are stopped",
                    self.c.execution_id,
                    self.c.worker,
                )
                return
