"""The engine's hand-written SQL: the one place it may live (every other query goes through the ORM).

Statements the ORM would build per call on the coordinator's hot path, or cannot express, with table and
column names taken from the models and every value a parameter:
- `update_step_if_status`: a step's conditional status transition (two per step), and `update_steps_if_status`
  for several at once (on PostgreSQL in one pipeline: the steps that finished, or start, in one turn);
- `advance_event_seq`: an execution's event sequence moved on by N, the new last value returned;
- `insert_events`: a batch of events numbered and inserted: on PostgreSQL in ONE statement (the sequence's
  `UPDATE … RETURNING` and an `INSERT … SELECT` from the events as one JSON array, in a CTE); on SQLite the
  sequence's UPDATE and one multi-row `INSERT … RETURNING` (the ORM's bulk_create cost the coordinator ~0.25 ms of
  CPU per event, a third of a turn's);
- `fetch_one`: a read run every turn (the fencing token's lease check, compiled by the ORM), prepared on PostgreSQL;
- `deferred_step_moves`: PostgreSQL, around one coordinator turn: the step moves of `update_steps_if_status` wait
  and go with the turn's events (`insert_events`) and the fencing check in ONE pipeline; a move that finds its row
  elsewhere than expected raises StepMovesConflicted after it, and the turn runs again with each move checked;
- `notify_task_queue` / `listen_task_queue`: PostgreSQL's NOTIFY/LISTEN that wake idle task-queue workers.

Why the PostgreSQL path differs (bench/RESULTS.md, "Engine", 2026-12-02 17:45): there every statement is a trip
to another process, and Django's client-side binding makes the server parse and plan each one again; a turn's
statements (BEGIN, two step updates, the sequence, the events' insert, COMMIT) cost 2-3x SQLite's. So on
PostgreSQL the hot statements run on the raw psycopg connection of the same Django connection (same
transaction), server-side bound and prepared once per connection (`prepare=True`); a turn's events take one
statement instead of two, and the steps a turn starts (or records as succeeded) one round trip for all. Errors are
wrapped as Django's (`wrap_database_errors`), so the coordinator's outage handling sees the same exceptions as
from the ORM. SQLite (in process, no trip, no parse cost worth a special case) keeps the portable statements,
except for the events: the ORM's bulk_create builds a model's worth of field preparation and SQL per call, where
the rows need seven plain values each.
Prepared statements live in the server session: behind a transaction-mode pooler that cannot keep them
(PgBouncer < 1.21), set `"prepare_threshold": None` in the database's OPTIONS and they are sent unprepared.
`HAND_WRITTEN = False` sends every database the portable statements (the tests compare the two paths).
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from django.db import connection, connections, router
from django.utils import timezone

from failover.models import ExecutionEvent, FailoverExecution, StepRun

TASK_QUEUE_CHANNEL = "drplan_q"
T = TypeVar("T")


# The hand-written statements below (PostgreSQL's prepared ones, SQLite's events insert); False sends every database
# the portable statements and the ORM's bulk_create (the tests compare both paths on the same database).
HAND_WRITTEN = True


def _is_postgres(db: Any) -> bool:
    return HAND_WRITTEN and db.vendor == "postgresql"


def _prepare_flag(db: Any) -> bool:
    options = db.settings_dict.get("OPTIONS") or {}
    return not ("prepare_threshold" in options and options["prepare_threshold"] is None)


@contextlib.contextmanager
def _preparing(db: Any, prepare: bool) -> Iterator[Any]:
    """The raw psycopg connection of `db`, able to prepare explicitly while the block runs."""
    raw = db.connection
    # Django turns psycopg's automatic preparing off (prepare_threshold None) for the sake of poolers, which
    # also refuses an explicit prepare=True: lift it for this statement only (this thread's connection).
    threshold = raw.prepare_threshold
    if prepare and threshold is None:
        raw.prepare_threshold = _NEVER_AUTOMATICALLY
    try:
        yield raw
    finally:
        raw.prepare_threshold = threshold


def _pg_execute(db: Any, sql: str, params: list[Any], checks: list[Callable[[], None]] | None = None) -> Any:
    """PostgreSQL: run `sql` on the raw psycopg connection of `db` (its current transaction), server-side
    bound and prepared unless the OPTIONS turn prepared statements off; returns the psycopg cursor.
    Errors come out as Django's (OperationalError, IntegrityError, …), as from a Django cursor.
    `checks`: the statement goes into the caller's open pipeline, and an execute wrapper that must read a result
    before the transaction may commit (the fencing check) appends to it what reads it, once the caller synced."""
    db.ensure_connection()
    db.validate_no_broken_transaction()
    prepare = _prepare_flag(db)
    import psycopg

    with _preparing(db, prepare) as raw:

        def execute(sql: str, params: list[Any], many: bool, context: dict[str, Any]) -> Any:
            # A plain psycopg cursor (server-side binding): Django's default is its client-side binding one.
            cursor = psycopg.Cursor(raw)
            cursor.execute(sql, params, prepare=prepare)
            return cursor

        # Through the connection's execute wrappers, as a Django cursor's statements go: the coordinator's fencing
        # token (lease.fenced_writes) must see these writes too. RAW_POSTGRES tells it the statement is one of
        # these, which it may send in one pipeline with its own check (fetch_one_then).
        for wrapper in reversed(db.execute_wrappers):
            execute = functools.partial(wrapper, execute)
        context = {"connection": db, "cursor": None, RAW_POSTGRES: True}
        if checks is not None:
            context[LATE_CHECKS] = checks
        with db.wrap_database_errors:
            return execute(sql, params, False, context)


def fetch_one(db: Any, sql: str, params: list[Any]) -> tuple | None:
    """The first row of a read the coordinator runs every turn (the fencing token's lease check, its SQL compiled
    by the ORM): on PostgreSQL prepared like the writes here, elsewhere through a Django cursor."""
    if _is_postgres(db):
        return _pg_execute(db, sql, params).fetchone()
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


RAW_POSTGRES = "drplan_raw_postgres"  # in an execute wrapper's context: a statement of _pg_execute
# ... sent into an open pipeline: a list where the wrapper leaves what reads its own statement's result after the sync
LATE_CHECKS = "drplan_late_checks"


def fetch_one_then(db: Any, sql: str, params: list[Any], then: Callable[[], T]) -> tuple[tuple | None, T]:
    """PostgreSQL, inside an execute wrapper of a statement of this module (context[RAW_POSTGRES]): the read
    `sql` (prepared) and then that statement (`then()`), sent in one pipeline. The server runs them in this
    order in the current transaction; one round trip serves both, and the transaction's BEGIN, instead of three.
    Returns the read's first row and `then()`'s result, both complete (the pipeline synced)."""
    with db.connection.pipeline():
        cursor, result = send_then(db, sql, params, then)
    return cursor.fetchone(), result


def send_then(db: Any, sql: str, params: list[Any], then: Callable[[], T]) -> tuple[Any, T]:
    """PostgreSQL, inside the caller's open pipeline (context[LATE_CHECKS]): the read `sql` (prepared) and then
    `then()`, both only queued; returns the read's cursor, to fetch from once the caller's pipeline synced."""
    import psycopg

    prepare = _prepare_flag(db)
    with _preparing(db, prepare) as raw:
        cursor = psycopg.Cursor(raw)
        cursor.execute(sql, params, prepare=prepare)
        return cursor, then()


_NEVER_AUTOMATICALLY = 2**31  # a threshold no statement reaches: only prepare=True prepares


_STEP_UPDATES: dict[tuple[tuple[str, ...], int], str] = {}  # (columns, number of sources) -> statement


def _step_update_sql(db: Any, columns: tuple[str, ...], sources: int) -> str:
    key = (columns, sources)
    sql = _STEP_UPDATES.get(key)
    if sql is None:
        quote = db.ops.quote_name
        assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
        # IN with one parameter per status, not ANY(array): psycopg dumps a list in Python, element by element
        # (~50 µs a statement); a statement text per number of sources, a handful, each prepared once.
        condition = f"{quote('status')} IN ({', '.join(['%s'] * sources)})"
        sql = (
            f"UPDATE {quote(StepRun._meta.db_table)} SET {assignments} "  # noqa: S608 (model names; values are parameters)
            f"WHERE {quote('id')} = %s AND {condition}"
        )
        _STEP_UPDATES[key] = sql
    return sql


def _step_update(db: Any, step_id: int, sources: set[str], fields: dict[str, Any]) -> tuple[str, list[Any]] | None:
    """The statement and parameters of `update_step_if_status`, values prepared by their model fields as the ORM
    does; None when a value is an expression or a model instance (the ORM's way then)."""
    columns, values = [], []
    for name, value in fields.items():
        if hasattr(value, "resolve_expression") or hasattr(value, "prepare_database_save"):
            return None
        field = StepRun._meta.get_field(name)
        columns.append(field.column)
        values.append(field.get_db_prep_save(value, db))
    statuses = sorted(sources)
    return _step_update_sql(db, tuple(columns), len(statuses)), [*values, step_id, *statuses]


def update_step_if_status(step_id: int, sources: set[str], fields: dict[str, Any]) -> int:
    """`StepRun.objects.filter(pk=step_id, status__in=sources).update(**fields)` as one prepared statement.
    Returns the rows changed (0 or 1)."""
    if not sources:
        return 0
    db = connections[router.db_for_write(StepRun)]
    return _update_step(db, step_id, sources, fields, _step_update(db, step_id, sources, fields))


def _update_step(
    db: Any, step_id: int, sources: set[str], fields: dict[str, Any], statement: tuple[str, list[Any]] | None
) -> int:
    """`update_step_if_status` with its statement already built (None: through the ORM)."""
    if statement is None:
        return StepRun.objects.filter(pk=step_id, status__in=sources).update(**fields)
    if _is_postgres(db):
        return _pg_execute(db, *statement).rowcount
    with db.cursor() as cursor:
        cursor.execute(*statement)
        return cursor.rowcount


class StepMovesConflicted(Exception):
    """A deferred step move found its row elsewhere than in the statuses it was to move from (written by someone
    else since the coordinator read it): the turn is rolled back and run again with each move checked as made."""


_deferred = threading.local()  # .moves: the deferred step moves of this thread's turn, (step id, sql, params)


@contextlib.contextmanager
def deferred_step_moves(enabled: bool = True) -> Iterator[bool]:
    """Around one coordinator turn, inside its transaction (PostgreSQL; elsewhere nothing changes): the step moves
    of `update_steps_if_status` are assumed to move their rows, and wait. They are sent with the turn's events
    (`insert_events`, at the end of its events.batched() block) and the fencing check, in one pipeline: one round
    trip where each of them took one. Once it synced: the fencing check is read (LeaseLost), then every move must
    have changed its row, else StepMovesConflicted, which rolls the whole turn back (the caller runs it again with
    `enabled=False`). Yields whether moves are deferred."""
    db = connections[router.db_for_write(StepRun)]
    if not enabled or not _is_postgres(db) or getattr(_deferred, "moves", None) is not None:
        yield False
        return
    _deferred.moves = []
    try:
        yield True
        if _deferred.moves:  # a turn with moves has their events: normally already sent with them
            _send_deferred(db)
    finally:
        _deferred.moves = None


def _send_deferred(db: Any, last: tuple[str, list[Any]] | None = None) -> Any:
    """The deferred moves, then the statement `last` (sql, params) if any, in one pipeline; the fencing check and
    the moves checked. Returns `last`'s cursor."""
    moves, _deferred.moves = _deferred.moves, []
    checks: list[Callable[[], None]] = []
    db.ensure_connection()
    with db.wrap_database_errors, db.connection.pipeline():
        cursors = [_pg_execute(db, sql, params, checks) for _, sql, params in moves]
        result = _pg_execute(db, *last, checks) if last else None
    for check in checks:  # the fencing check first: a lost lease is LeaseLost, not a conflict
        check()
    unmoved = [step_id for (step_id, _, _), cursor in zip(moves, cursors, strict=True) if cursor.rowcount != 1]
    if unmoved:
        raise StepMovesConflicted(f"steps {unmoved} were not where the coordinator expected them")
    return result


def update_steps_if_status(rows: list[tuple[int, dict[str, Any]]], sources: set[str]) -> set[int]:
    """Several `update_step_if_status`: the ids of the steps that moved. PostgreSQL: the prepared single-row
    statements sent in one pipeline (one round trip for all, each by primary key whatever the table's
    statistics say), or, inside `deferred_step_moves`, all ids at once and the statements later; elsewhere one
    after the other."""
    if not sources:
        return set()
    db = connections[router.db_for_write(StepRun)]
    statements = [_step_update(db, step_id, sources, fields) for step_id, fields in rows]
    deferred = getattr(_deferred, "moves", None)
    if deferred is not None and None not in statements:
        deferred += [(step_id, *statement) for (step_id, _), statement in zip(rows, statements, strict=True)]
        return {step_id for step_id, _ in rows}
    if len(rows) < 2 or None in statements or not _is_postgres(db):
        pairs = zip(rows, statements, strict=True)
        return {step_id for (step_id, fields), sql in pairs if _update_step(db, step_id, sources, fields, sql)}
    db.ensure_connection()
    with db.wrap_database_errors, db.connection.pipeline():
        cursors = [_pg_execute(db, sql, params) for sql, params in statements]
    return {step_id for (step_id, _), cursor in zip(rows, cursors, strict=True) if cursor.rowcount}


def advance_event_seq(execution_id: int, count: int) -> int | None:
    """Move the execution's event sequence on by `count`; the new last value, None if there is no such execution.
    The UPDATE holds the row's write lock until commit, so concurrent emitters never share a number."""
    table = connection.ops.quote_name(FailoverExecution._meta.db_table)
    sql = f'UPDATE {table} SET "event_seq" = "event_seq" + %s WHERE "id" = %s RETURNING "event_seq"'  # noqa: S608
    if _is_postgres(connection):
        row = _pg_execute(connection, sql, [count, execution_id]).fetchone()
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, [count, execution_id])
            row = cursor.fetchone()
    return None if row is None else row[0]


def events_by_hand() -> bool:
    """Does `insert_events` serve this database (PostgreSQL, SQLite)? Elsewhere: advance_event_seq + bulk_create."""
    return HAND_WRITTEN and connections[router.db_for_write(ExecutionEvent)].vendor in ("postgresql", "sqlite")


_INSERT_EVENTS: dict[str, str] = {}
_EVENT_SQL: dict[str, tuple[str, str]] = {}  # database alias -> (head, tail) of an events insert
_EVENT_COLUMNS = ("execution", "seq", "step_run", "kind", "message", "data", "created_at")
_EVENT_DATA = ExecutionEvent._meta.get_field("data")
_EVENT_CREATED_AT = ExecutionEvent._meta.get_field("created_at")
_EVENT_DATA_ENCODER = _EVENT_DATA.encoder  # as the field itself would store `data`


def _event_sql(db: Any) -> tuple[str, str]:
    """`INSERT INTO <events> (<the _EVENT_COLUMNS>)` and `RETURNING <id>, <seq>`, quoted for `db` once: the head and
    the tail of both databases' inserts (the rows they give back go to _numbered)."""
    parts = _EVENT_SQL.get(db.alias)
    if parts is None:
        quote = db.ops.quote_name
        columns = ", ".join(quote(ExecutionEvent._meta.get_field(name).column) for name in _EVENT_COLUMNS)
        head = f"INSERT INTO {quote(ExecutionEvent._meta.db_table)} ({columns})"
        pk, seq = ExecutionEvent._meta.pk.column, ExecutionEvent._meta.get_field("seq").column
        parts = _EVENT_SQL[db.alias] = (head, f"RETURNING {quote(pk)}, {quote(seq)}")
    return parts


def _insert_events_sql(db: Any) -> str:
    sql = _INSERT_EVENTS.get(db.alias)
    if sql is None:
        quote = db.ops.quote_name
        seq_col = quote(FailoverExecution._meta.get_field("event_seq").column)
        head, returning = _event_sql(db)
        sql = (
            f"WITH taken AS (UPDATE {quote(FailoverExecution._meta.db_table)} SET {seq_col} = {seq_col} + %s "  # noqa: S608 (model names; values are parameters)
            f"WHERE {quote('id')} = %s RETURNING {seq_col} AS last) "
            f"{head} "
            "SELECT %s, taken.last - %s + e.n, e.step_run, e.kind, e.message, e.data, %s FROM taken, "
            # The events as one JSON array: one parameter to dump instead of four arrays dumped element by element.
            "ROWS FROM (jsonb_to_recordset(%s::jsonb) AS (step_run bigint, kind text, message text, data jsonb)) "
            "WITH ORDINALITY AS e(step_run, kind, message, data, n) "
            f"{returning}"
        )
        _INSERT_EVENTS[db.alias] = sql
    return sql


def insert_events(execution_id: int, events: list[ExecutionEvent]) -> bool:
    """Give `events` (all of one execution) the next consecutive sequence numbers and insert them: in ONE statement
    on PostgreSQL, in two on SQLite; sets each event's seq, pk and created_at as bulk_create would. False (nothing
    written) if there is no such execution. The sequence's UPDATE holds the execution row's write lock until
    commit, so concurrent emitters never share a number."""
    db = connections[router.db_for_write(ExecutionEvent)]
    created = timezone.now()
    if db.vendor == "sqlite":
        return _insert_events_sqlite(db, execution_id, events, created)
    count = len(events)
    rows = [{"step_run": e.step_run_id, "kind": str(e.kind), "message": e.message, "data": e.data} for e in events]
    params = [count, execution_id, execution_id, count, created, json.dumps(rows, cls=_EVENT_DATA_ENCODER)]
    sql = _insert_events_sql(db)
    if getattr(_deferred, "moves", None):  # the turn's step moves and the fencing check go in the same round trip
        rows = _send_deferred(db, (sql, params)).fetchall()
    else:
        rows = _pg_execute(db, sql, params).fetchall()
    if not rows:
        return False
    _numbered(db, events, rows, created)
    return True


_SQLITE_EVENTS_PER_STATEMENT = 500  # 7 parameters a row: far below SQLite's 32,766 variables a statement


def _insert_events_sqlite(db: Any, execution_id: int, events: list[ExecutionEvent], created: Any) -> bool:
    """SQLite: the sequence moved on (advance_event_seq), then the rows in multi-row INSERTs, their values prepared
    by the model's fields as bulk_create prepares them (`data` as JSON by the field's encoder, the time once)."""
    last = advance_event_seq(execution_id, len(events))
    if last is None:
        return False
    when = _EVENT_CREATED_AT.get_db_prep_save(created, db)
    head, returning = _event_sql(db)
    first = last - len(events) + 1
    rows: list[tuple[int, int]] = []
    for start in range(0, len(events), _SQLITE_EVENTS_PER_STATEMENT):
        chunk = events[start : start + _SQLITE_EVENTS_PER_STATEMENT]
        values: list[Any] = []
        for offset, event in enumerate(chunk, start=first + start):
            data = _EVENT_DATA.get_db_prep_save(event.data, db)
            values += [execution_id, offset, event.step_run_id, str(event.kind), event.message, data, when]
        placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
        with db.cursor() as cursor:
            cursor.execute(f"{head} VALUES {placeholders} {returning}", values)
            rows += cursor.fetchall()
    _numbered(db, events, rows, created)
    return True


def _numbered(db: Any, events: list[ExecutionEvent], rows: list[tuple[int, int]], created: Any) -> None:
    """Each event's seq, pk and created_at from the inserted rows (id, seq), in whatever order they came back."""
    first = min(seq for _, seq in rows)
    ids = {seq: pk for pk, seq in rows}
    for offset, event in enumerate(events):
        event.seq = first + offset
        event.pk = ids[event.seq]
        event.created_at = created
        event._state.adding = False
        event._state.db = db.alias


def notify_task_queue(db: Any, payload: str) -> None:
    """PostgreSQL: wake the workers listening for the task queue (delivered when the transaction commits)."""
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [TASK_QUEUE_CHANNEL, payload])


def listen_task_queue(params: dict[str, Any]) -> Any:
    """PostgreSQL: a connection of its own that LISTENs for the task queue's wake-ups (psycopg's notifies())."""
    import psycopg

    listener = psycopg.connect(**params, autocommit=True)
    listener.execute(f"LISTEN {TASK_QUEUE_CHANNEL}")
    return listener
