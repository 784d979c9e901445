"""The engine's hand-written SQL: the one place it may live (every other query goes through the ORM).

Three statements the ORM would build per call on the coordinator's hot path, or cannot express, written once
for both supported databases (SQLite ≥ 3.35 and PostgreSQL: both have UPDATE … RETURNING), with table and
column names taken from the models and every value a parameter:
- `update_step_if_status`: a step's conditional status transition (two per step);
- `advance_event_seq`: an execution's event sequence moved on by N, the new last value returned;
- `notify_task_queue` / `listen_task_queue`: PostgreSQL's NOTIFY/LISTEN that wake idle task-queue workers.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, connections, router

from failover.models import FailoverExecution, StepRun

TASK_QUEUE_CHANNEL = "drplan_q"


def update_step_if_status(step_id: int, sources: set[str], fields: dict[str, Any]) -> int:
    """`StepRun.objects.filter(pk=step_id, status__in=sources).update(**fields)` as one prepared statement;
    values are prepared by their model fields as the ORM does; an expression or a model instance takes the
    ORM's way. Returns the rows changed (0 or 1)."""
    if not sources:
        return 0
    db = connections[router.db_for_write(StepRun)]
    quote = db.ops.quote_name
    assignments, values = [], []
    for name, value in fields.items():
        if hasattr(value, "resolve_expression") or hasattr(value, "prepare_database_save"):
            return StepRun.objects.filter(pk=step_id, status__in=sources).update(**fields)
        field = StepRun._meta.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        values.append(field.get_db_prep_save(value, db))
    statuses = sorted(sources)
    sql = (
        f"UPDATE {quote(StepRun._meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608 (model names; values are parameters)
        f"WHERE {quote('id')} = %s AND {quote('status')} IN ({', '.join(['%s'] * len(statuses))})"
    )
    with db.cursor() as cursor:
        cursor.execute(sql, [*values, step_id, *statuses])
        return cursor.rowcount


def advance_event_seq(execution_id: int, count: int) -> int | None:
    """Move the execution's event sequence on by `count`; the new last value, None if there is no such execution.
    The UPDATE holds the row's write lock until commit, so concurrent emitters never share a number."""
    table = connection.ops.quote_name(FailoverExecution._meta.db_table)
    sql = f'UPDATE {table} SET "event_seq" = "event_seq" + %s WHERE "id" = %s RETURNING "event_seq"'  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [count, execution_id])
        row = cursor.fetchone()
    return None if row is None else row[0]


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
