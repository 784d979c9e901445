"""The sql action: run one query with a DSN taken from the secret store; check the result.

    action: sql
    with:
      dsn_secret: orders_replica_dsn     # postgresql://… / key=value conninfo, or sqlite:///relative/or////absolute
      query: "SELECT count(*) FROM orders WHERE created_at > now() - interval '5 minutes'"
      expect: {row_count: 1, min_value: 1}

`expect` (all optional): row_count — number of rows returned (affected, for a statement
that returns none); value — the first column of the first row equals it; min_value /
max_value — that value is a number within the bounds. The statement is committed when it
succeeds. PostgreSQL runs with statement_timeout = the step's timeout, and a cancelled
step cancels the query; SQLite is interrupted the same way.

A first-row column named rpo_seconds, data_loss_bytes or data_loss_transactions is also
reported as a measurement (the execution's RPO / data loss). The DSN is never logged nor
put in an output or an error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from failover.engine.actions import ActionResult, StepContext, executor
from failover.engine.actions.blocking import run_blocking, step_timeout

MAX_ROWS = 100  # kept in the output; all rows are counted
MEASUREMENT_COLUMNS = ("rpo_seconds", "data_loss_bytes", "data_loss_transactions")
SQLITE_PREFIX = "sqlite:///"


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def _collect(cursor: Any) -> dict[str, Any]:
    if cursor.description is None:
        return {"columns": [], "rows": [], "rowcount": max(cursor.rowcount, 0), "returns_rows": False}
    columns = [d[0] for d in cursor.description]
    rows, count = [], 0
    for row in cursor:
        count += 1
        if count <= MAX_ROWS:
            rows.append({name: _json_value(v) for name, v in zip(columns, row, strict=False)})
    return {"columns": columns, "rows": rows, "rowcount": count, "returns_rows": True}


def _run_sqlite(path: str, query: str, deadline: float, ctx: StepContext) -> dict[str, Any]:
    if not path:
        raise ValueError("the sqlite DSN names no file (sqlite:///relative/path or sqlite:////absolute/path)")
    if not Path(path).exists():
        raise FileNotFoundError(f"sqlite database {path} does not exist")
    uri = f"{Path(path).resolve().as_uri()}?mode=rw"  # rw: a missing file is an error, not a new database
    connection = sqlite3.connect(uri, uri=True, timeout=max(0.1, deadline - time.monotonic()))
    # Called every 1000 VM instructions: a non-zero return interrupts the statement.
    connection.set_progress_handler(lambda: int(ctx.cancelled.is_set() or time.monotonic() > deadline), 1000)
    try:
        cursor = connection.execute(query)
        result = _collect(cursor)
        connection.commit()
        return result
    finally:
        connection.close()


def _run_postgres(dsn: str, query: str, timeout: float, holder: dict[str, Any]) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(dsn, connect_timeout=max(1, int(timeout))) as connection:
        holder["connection"] = connection
        connection.execute("SELECT set_config('statement_timeout', %s, false)", [f"{max(1, int(timeout * 1000))}ms"])
        with connection.cursor() as cursor:
            cursor.execute(query)
            return _collect(cursor)  # the with-block commits


def _first_value(result: dict[str, Any]) -> Any:
    if not result["rows"]:
        return None
    return next(iter(result["rows"][0].values()), None)


def _check(expect: dict[str, Any], result: dict[str, Any]) -> list[str]:
    failures = []
    if "row_count" in expect and result["rowcount"] != expect["row_count"]:
        failures.append(f"expect.row_count: expected {expect['row_count']} row(s), got {result['rowcount']}")
    wants_value = any(k in expect for k in ("value", "min_value", "max_value"))
    if not wants_value:
        return failures
    if not result["rows"]:
        return [*failures, "expect: the query returned no row to compare"]
    value = _first_value(result)
    if "value" in expect and value != expect["value"]:
        failures.append(f"expect.value: expected {expect['value']!r}, got {value!r}")
    for key, bad, word in (("min_value", lambda v, b: v < b, "below"), ("max_value", lambda v, b: v > b, "above")):
        if key not in expect:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            failures.append(f"expect.{key}: the value {value!r} is not a number")
        elif bad(value, expect[key]):
            failures.append(f"expect.{key}: the value {value} is {word} {expect[key]}")
    return failures


def _measurements(result: dict[str, Any]) -> dict[str, float]:
    if not result["rows"]:
        return {}
    first = result["rows"][0]
    return {
        name: float(first[name])
        for name in MEASUREMENT_COLUMNS
        if isinstance(first.get(name), (int, float)) and not isinstance(first.get(name), bool)
    }


@executor("sql")
def run_sql(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    secret_name = str(params.get("dsn_secret") or "")
    query = str(params.get("query") or "")
    target = f"sql (dsn_secret '{secret_name}')"
    if not query.strip():
        return ActionResult(False, error=f"{target}: the query is empty")
    if ctx.secret is None:
        return ActionResult(False, error=f"{target}: no secret store available to read the DSN")
    try:
        dsn = ctx.secret(secret_name)
    except Exception as exc:  # e.g. InvalidInput "secret 'X' is not defined"
        return ActionResult(False, error=f"{target}: {getattr(exc, 'message', None) or type(exc).__name__}")
    timeout = step_timeout(ctx)
    deadline = time.monotonic() + timeout
    holder: dict[str, Any] = {}
    if dsn.startswith(SQLITE_PREFIX):
        path = dsn[len(SQLITE_PREFIX) :]
        engine = "sqlite"
        outcome = run_blocking(lambda: _run_sqlite(path, query, deadline, ctx), ctx, timeout + 1.0)
    else:
        engine = "postgresql"

        def stop() -> None:
            connection = holder.get("connection")
            if connection is not None:
                connection.cancel_safe(timeout=2.0)

        outcome = run_blocking(lambda: _run_postgres(dsn, query, timeout, holder), ctx, timeout + 1.0, on_stop=stop)
    if outcome.stopped:
        return ActionResult(False, error=f"{target}: {outcome.stopped}")
    if outcome.exception is not None:
        return ActionResult(False, error=f"{target}: {engine} error: {_error_text(outcome.exception, dsn, ctx)}")
    result = outcome.value
    ctx.log(f"{target}: {result['rowcount']} row(s)")
    output = {"rows": result["rows"], "rowcount": result["rowcount"], "columns": result["columns"]}
    if result["rowcount"] > MAX_ROWS:
        output["rows_truncated"] = True
    failures = _check(params.get("expect") or {}, result)
    if failures:
        return ActionResult(False, output=output, error=f"{target}: " + "; ".join(failures))
    return ActionResult(True, output=output, measurements=_measurements(result))


def _error_text(exc: BaseException, dsn: str, ctx: StepContext) -> str:
    if isinstance(exc, sqlite3.OperationalError) and str(exc) == "interrupted":
        return "cancelled" if ctx.cancelled.is_set() else "timed out (interrupted)"
    text = (str(exc).strip().splitlines() or [""])[0]
    with contextlib.suppress(Exception):
        text = text.replace(dsn, "***")  # never echo the DSN, even if a driver does
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
