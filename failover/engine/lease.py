"""The coordinator's lease on an execution row: taken with a conditional update, renewed every
lease/3 seconds (with a heartbeat on the steps it runs), released, or handed to a fresh task.

Whoever holds a live lease is the only writer of the execution; a coordinator whose renewal finds
the lease gone raises LeaseLost and stops without writing anything more. A hand-off enqueues through
the hook the coordinator was given (EngineHooks.enqueue).

Expiry is decided by the database server's clock alone: the conditional updates compare and set
`lease_expires_at` against `Now()` (the ORM's, evaluated by the server when the statement starts), so
nodes whose clocks disagree still agree on whose lease is live.

Fencing (issue 15): a coordinator that cannot renew (the database is restarting, the network is
down) retries with backoff (`ride_out`) but only until its Fence deadline: `lease - margin` after the
moment it *sent* its last successful renewal, by its own monotonic clock. The server set that lease to
expire `lease` seconds after it received the statement, which is later, so the coordinator stops
(Fenced: no more writes, its steps' processes stopped) at least `margin` seconds before any other
node can take the execution over, whatever the two nodes' wall clocks say.

Late writes (issue 15): a write the coordinator sent before it fenced itself may still reach the server after
its lease expired and another coordinator took over. So every transaction its thread runs while it coordinates
(`fenced_writes`, a FencingToken on the thread's connection) that writes the execution's state (the execution,
step, event and validation tables) is conditional on the lease: before its first such write, the execution row
is locked (SELECT ... FOR UPDATE) and must still name this coordinator with `lease_expires_at > Now()` by the
server's clock; otherwise LeaseLost is raised there and the whole transaction rolls back. The row lock is held
until the commit, so a takeover (take_lease, the reaper's reservation) waits for the turn to end, and a turn
never commits after one. Not checked: the lease's own statements (renew, release, hand off: conditional on the
coordinator already), single statements outside a transaction (a step's heartbeat), and what the coordinator
sets off once it gave the execution up (`unfenced`: the outcome hook, a hand-off's enqueueing; the
notifications sent after a commit write tables of their own)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import DateTimeField, Expression, ExpressionWrapper, Q
from django.db.models.functions import Now

from core.dbtime import lease_margin_seconds
from failover.choices import ExecutionStatus as ES
from failover.choices import StepStatus as SS
from failover.engine import rawsql, reaper
from failover.engine.actions import WakingEvent
from failover.models import ExecutionEvent, FailoverExecution, StepRun, ValidationResult

logger = logging.getLogger(__name__)

COORDINATED = (ES.PENDING, ES.RUNNING, ES.VALIDATING, ES.ROLLING_BACK)
# What a lost database connection raises (Django wraps the driver's errors in these).
DB_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
RETRY_FIRST_SECONDS = 0.1  # ride_out: first wait after a database error, doubling up to the cap
RETRY_CAP_SECONDS = 1.0

T = TypeVar("T")


class LeaseLost(Exception):
    """Another coordinator took the execution over (or the lease expired by the database's clock): stop
    without writing anything more."""


class Fenced(Exception):
    """The database stayed out of reach until this coordinator's fence deadline: it must stop coordinating
    (no more writes, its steps stopped) before its lease can expire."""


def lease_seconds() -> float:
    return float(getattr(settings, "ENGINE_LEASE_SECONDS", 15))


def _in(seconds: float, now: datetime | None) -> datetime | Expression:
    """`now` + seconds; without `now`, the database server's time + seconds (evaluated by the server)."""
    if now is not None:
        return now + timedelta(seconds=seconds)
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


class Fence:
    """A coordinator's own deadline, on its own monotonic clock (no wall clock is compared with another).

    `renewed(sent)` after each successful take or renewal, with the clock's value read just before the
    statement was sent; `due()` says a renewal is due (lease/3 after the last one); `passed()` that the
    deadline (`lease - margin` after the last one) has passed: the coordinator must stop."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        lease: float | None = None,
        margin: float | None = None,
    ) -> None:
        self.clock = clock
        self.lease = lease_seconds() if lease is None else lease
        self.margin = lease_margin_seconds() if margin is None else margin
        self.sent = clock()
        self.tripped = False  # set by the coordinator's watchdog at the deadline (outage.Watchdog): final
        # Set when the coordinator stops being one (its fence tripped, or it fenced or lost its lease while a
        # rollback action ran): what a rollback action watches, as the operator's cancel must not stop it.
        self.stopped = WakingEvent()
        self.stopped.kill_by = self.kill_by  # type: ignore[attr-defined]  (shell.py: gone by then)

    def renewed(self, sent: float) -> None:
        self.sent = max(self.sent, sent)

    def due(self) -> bool:
        return self.clock() - self.sent >= self.lease / 3

    def deadline(self) -> float:
        return self.sent + self.lease - self.margin

    def remaining(self) -> float:
        return self.deadline() - self.clock()

    def passed(self) -> bool:
        return self.remaining() <= 0

    def kill_by(self) -> float:
        """When a step's process must be gone, on this clock: half the margin before the lease could expire (the
        server set the expiry `lease` after it received the renewal this coordinator sent at `sent`)."""
        return self.sent + self.lease - self.margin / 2

    def trip(self) -> None:
        """The deadline passed without a renewal: final."""
        self.tripped = True
        self.stopped.set()


def reset_connection() -> None:
    """Drop this thread's database connection after an error: the next query opens a new one."""
    with contextlib.suppress(*DB_ERRORS):
        connection.close()


def ride_out(
    fence: Fence,
    attempt: Callable[[], T],
    *,
    what: str = "database",
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`attempt()`, retried with backoff (0.1 s doubling up to 1 s, a new connection each time) while it
    raises a database error, never past the fence deadline: then Fenced. Other errors propagate."""
    delay = RETRY_FIRST_SECONDS
    failures = 0
    while True:
        if fence.passed():
            raise Fenced(f"{what}: no database before the fence deadline ({failures} failed attempts)")
        try:
            result = attempt()
        except DB_ERRORS as error:
            failures += 1
            if failures == 1:
                logger.warning("%s: database error (%s); retrying until the fence deadline", what, error)
            reset_connection()
            pause = min(delay, fence.remaining())
            if pause <= 0:
                raise Fenced(f"{what}: no database before the fence deadline ({failures} failed attempts)") from error
            sleep(pause)
            delay = min(delay * 2, RETRY_CAP_SECONDS)
            continue
        if failures:
            logger.warning("%s: database back after %d failed attempts", what, failures)
        return result


def worker_identity() -> str:
    """host:pid:random — the pid lets an operator (or a test) find the process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def take_lease(execution_id: int, worker_id: str, *, now: datetime | None = None, fence: Fence | None = None) -> bool:
    """Conditional update: take the execution if it needs a coordinator and nobody holds a live lease
    (an empty coordinator with a future lease is the reaper's reservation for a re-enqueued task).
    `now` defaults to the database server's clock; a `fence` is told when the statement was sent."""
    sent = fence.clock() if fence else 0.0
    expired = Q(lease_expires_at__lt=now or Now())
    free = Q(lease_expires_at__isnull=True) | expired | Q(coordinator="")
    taken = bool(
        FailoverExecution.objects.filter(Q(pk=execution_id, status__in=COORDINATED) & free).update(
            coordinator=worker_id, lease_expires_at=_in(lease_seconds(), now)
        )
    )
    if taken and fence:
        fence.renewed(sent)
    return taken


def renew_lease(execution_id: int, worker_id: str, *, heartbeat_steps: bool, fence: Fence | None = None) -> None:
    """Extend the lease to the database's now + lease (and, with heartbeat_steps, the heartbeat of this
    worker's RUNNING steps). Raises LeaseLost when the lease is no longer ours. A `fence` is told when
    the statement was sent, once it succeeded."""
    sent = fence.clock() if fence else 0.0
    with unfenced():
        renewed = FailoverExecution.objects.filter(pk=execution_id, coordinator=worker_id).update(
            lease_expires_at=_in(lease_seconds(), None)
        )
    if not renewed:
        raise LeaseLost
    if fence:
        fence.renewed(sent)
    if heartbeat_steps:
        StepRun.objects.filter(execution_id=execution_id, status=SS.RUNNING, worker=worker_id).update(
            heartbeat_at=Now()
        )


_lease_statement = threading.local()


@contextlib.contextmanager
def unfenced() -> Iterator[None]:
    """Writes of this thread that FencingToken lets through unchecked: the lease's own statements (conditional on
    the coordinator already), and what the coordinator does once it has given the execution up in a committed
    transaction (the outcome hook after the terminal one, the enqueueing of a hand-off)."""
    previous = getattr(_lease_statement, "active", False)
    _lease_statement.active = True
    try:
        yield
    finally:
        _lease_statement.active = previous


WRITES = ("INSERT", "UPDATE", "DELETE")
FENCED_MODELS = (FailoverExecution, StepRun, ExecutionEvent, ValidationResult)  # an execution's state


def _writes(sql: str) -> bool:
    """INSERT, UPDATE or DELETE, or a WITH query that does one (rawsql.insert_events on PostgreSQL)."""
    head = sql.lstrip()[:6].upper()
    return head in WRITES or (head.startswith("WITH") and any(f"({word} " in sql.upper() for word in WRITES))


class FencingToken:
    """A `connection.execute_wrapper` for the coordinator's thread: a transaction that writes the execution's state
    first locks the execution row and checks the lease is still this coordinator's by the database's clock
    (once per transaction, before its first such write). A failed check raises LeaseLost inside the transaction,
    which rolls back."""

    def __init__(self, execution_id: int, worker_id: str) -> None:
        self.execution_id = execution_id
        self.worker = worker_id
        self.checking = False
        self.refused = 0
        self.tables: tuple[str, ...] = ()
        self.statement: tuple[str, Any] | None = None

        def checked() -> None:  # the marker in the transaction's on-commit list (gone when it ends)
            return None

        self.marker = checked

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        db = context["connection"]
        if (
            db.in_atomic_block
            and not self.checking
            and not getattr(_lease_statement, "active", False)
            and _writes(sql)
            and self._fenced_table(db, sql)
            and not any(entry[1] is self.marker for entry in db.run_on_commit)
        ):
            if context.get(rawsql.RAW_POSTGRES):  # the check and this write in one round trip, in this order
                late = context.get(rawsql.LATE_CHECKS)
                return self.check(db, then=lambda: execute(sql, params, many, context), late=late)
            self.check(db)
        return execute(sql, params, many, context)

    def _fenced_table(self, db: Any, sql: str) -> bool:
        if not self.tables:
            self.tables = tuple(db.ops.quote_name(model._meta.db_table) for model in FENCED_MODELS)
        head = sql[:200]
        return any(table in head for table in self.tables)

    def check(
        self, db: Any, then: Callable[[], Any] | None = None, late: list[Callable[[], None]] | None = None
    ) -> Any:
        """Lock the execution row; LeaseLost unless it is still ours and unexpired by the database's clock.
        With `then` (a write of rawsql's on PostgreSQL): the write follows the check in the same pipeline, inside
        the transaction, so it commits only if the check passed; returns its result. With `late` too, that pipeline
        is the caller's, still open (rawsql.deferred_step_moves): the check's reading is appended to `late`, and the
        caller runs it once the pipeline synced, before the transaction can commit."""
        self.checking = True
        try:
            if self.statement is None:  # built by the ORM for this database once, not once per turn
                held = (
                    FailoverExecution.objects.using(db.alias)
                    .select_for_update()
                    .filter(pk=self.execution_id, coordinator=self.worker, lease_expires_at__gt=Now())
                    .values_list("pk", flat=True)
                )
                self.statement = held.query.get_compiler(using=db.alias).as_sql()
            sql, params = self.statement
            if late is not None and then is not None:
                cursor, result = rawsql.send_then(db, sql, list(params), then)
                late.append(lambda: self._held(cursor.fetchone()))
                transaction.on_commit(self.marker, using=db.alias)  # (the transaction cannot commit before `late` ran)
                return result
            if then is None:
                row, result = rawsql.fetch_one(db, sql, list(params)), None  # once per turn: prepared on PostgreSQL
            else:
                row, result = rawsql.fetch_one_then(db, sql, list(params), then)
            self._held(row)
            transaction.on_commit(self.marker, using=db.alias)
            return result
        finally:
            self.checking = False

    def _held(self, row: tuple | None) -> None:
        if row is None:
            self.refused += 1
            raise LeaseLost(
                f"execution {self.execution_id}: write refused: the lease of {self.worker} is gone or expired "
                "by the database's clock"
            )


@contextlib.contextmanager
def fenced_writes(execution_id: int, worker_id: str) -> Iterator[FencingToken]:
    """While the block runs, every transaction of this thread that writes the execution's state is conditional on
    holding the lease (FencingToken)."""
    token = FencingToken(execution_id, worker_id)
    with connection.execute_wrapper(token):
        yield token


def release_lease(execution_id: int, worker_id: str) -> None:
    with unfenced():
        FailoverExecution.objects.filter(pk=execution_id, coordinator=worker_id).update(
            coordinator="", lease_expires_at=None
        )


def hand_off(execution_id: int, worker_id: str, enqueue: Callable[[int], None]) -> None:
    """Give the execution to a fresh task: release the lease into a short reservation (so the reaper
    does not enqueue it twice) and enqueue it."""
    with unfenced():
        FailoverExecution.objects.filter(pk=execution_id, coordinator=worker_id).update(
            coordinator="", lease_expires_at=_in(reaper.REQUEUE_RESERVATION_SECONDS, None)
        )
        enqueue(execution_id)
