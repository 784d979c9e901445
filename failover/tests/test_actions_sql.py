"""The sql action against a real SQLite file and, in the PostgreSQL run, the test PostgreSQL server."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from core.exceptions import InvalidInput
from failover.engine.actions import ActionResult, StepContext, run_action
from runbooks.actions import get_action

SLOW_SQLITE = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"


def _ctx(dsns: dict[str, str], timeout: float | None = 5) -> StepContext:
    def secret(name: str) -> str:
        if name not in dsns:
            raise InvalidInput(f"secret '{name}' is not defined")
        return dsns[name]

    return StepContext(execution_id=1, step_key="sql", timeout=timeout, secret=secret)


def _run(params: dict, ctx: StepContext) -> ActionResult:
    errors = list(get_action("sql").validator.iter_errors(params))
    assert errors == [], [e.message for e in errors]
    return run_action("sql", params, ctx)


@pytest.fixture
def sqlite_dsn(tmp_path: Path) -> str:
    path = tmp_path / "replica.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL, region TEXT)")
        db.executemany("INSERT INTO orders (total, region) VALUES (?, ?)", [(10.5, "eu"), (20, "eu"), (7, "us")])
    return f"sqlite:///{path}"  # an absolute path: sqlite:////tmp/…


def test_query_with_expectations(sqlite_dsn: str) -> None:
    ctx = _ctx({"replica": sqlite_dsn})
    params = {
        "dsn_secret": "replica",
        "query": "SELECT count(*) AS n FROM orders WHERE region = 'eu'",
        "expect": {"row_count": 1, "value": 2, "min_value": 1, "max_value": 2},
    }
    result = _run(params, ctx)
    assert result.ok, result.error
    assert result.output == {"rows": [{"n": 2}], "rowcount": 1, "columns": ["n"]}
    rows = _run({"dsn_secret": "replica", "query": "SELECT id, total FROM orders ORDER BY id"}, ctx)
    assert rows.output["rows"] == [{"id": 1, "total": 10.5}, {"id": 2, "total": 20.0}, {"id": 3, "total": 7.0}]
    assert rows.output["rowcount"] == 3


def test_failed_expectations_name_the_check(sqlite_dsn: str) -> None:
    ctx = _ctx({"replica": sqlite_dsn})
    params = {
        "dsn_secret": "replica",
        "query": "SELECT sum(total) FROM orders",
        "expect": {"row_count": 2, "value": 1, "min_value": 40, "max_value": 30},
    }
    result = _run(params, ctx)
    assert not result.ok
    assert result.error == (
        "sql (dsn_secret 'replica'): expect.row_count: expected 2 row(s), got 1; "
        "expect.value: expected 1, got 37.5; expect.min_value: the value 37.5 is below 40; "
        "expect.max_value: the value 37.5 is above 30"
    )
    empty = _run({"dsn_secret": "replica", "query": "SELECT id FROM orders WHERE 0", "expect": {"value": 1}}, ctx)
    assert empty.error == "sql (dsn_secret 'replica'): expect: the query returned no row to compare"
    text = _run({"dsn_secret": "replica", "query": "SELECT 'eu'", "expect": {"min_value": 1}}, ctx)
    assert text.error == "sql (dsn_secret 'replica'): expect.min_value: the value 'eu' is not a number"


def test_statement_is_committed_and_affected_rows_counted(sqlite_dsn: str) -> None:
    ctx = _ctx({"replica": sqlite_dsn})
    params = {"dsn_secret": "replica", "query": "UPDATE orders SET region = 'dr' WHERE region = 'eu'"}
    result = _run({**params, "expect": {"row_count": 2}}, ctx)
    assert result.ok, result.error
    assert result.output == {"rows": [], "rowcount": 2, "columns": []}
    with sqlite3.connect(sqlite_dsn.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT count(*) FROM orders WHERE region = 'dr'").fetchone() == (2,)


def test_measurement_columns_are_reported(sqlite_dsn: str) -> None:
    query = "SELECT 12.5 AS rpo_seconds, 4096 AS data_loss_bytes, 'x' AS data_loss_transactions"
    result = _run({"dsn_secret": "replica", "query": query}, _ctx({"replica": sqlite_dsn}))
    assert result.measurements == {"rpo_seconds": 12.5, "data_loss_bytes": 4096.0}


def test_errors_never_show_the_dsn(sqlite_dsn: str, tmp_path: Path) -> None:
    ctx = _ctx({"replica": sqlite_dsn, "gone": f"sqlite:///{tmp_path}/missing.sqlite3"})
    missing_secret = _run({"dsn_secret": "nope", "query": "SELECT 1"}, ctx)
    assert missing_secret.error == "sql (dsn_secret 'nope'): secret 'nope' is not defined"
    bad_sql = _run({"dsn_secret": "replica", "query": "SELEC 1"}, ctx)
    assert bad_sql.error == "sql (dsn_secret 'replica'): sqlite error: OperationalError: near \"SELEC\": syntax error"
    gone = _run({"dsn_secret": "gone", "query": "SELECT 1"}, ctx)
    assert gone.error.startswith("sql (dsn_secret 'gone'): sqlite error: FileNotFoundError: sqlite database ")
    assert not (tmp_path / "missing.sqlite3").exists()  # never created
    for result in (missing_secret, bad_sql, gone):
        assert sqlite_dsn not in result.error and "sqlite:///" not in result.error
    no_store = run_action("sql", {"dsn_secret": "replica", "query": "SELECT 1"}, StepContext(1, "sql"))
    assert no_store.error == "sql (dsn_secret 'replica'): no secret store available to read the DSN"


def test_timeout_and_cancel_interrupt_a_sqlite_query(sqlite_dsn: str) -> None:
    started = time.monotonic()
    result = _run({"dsn_secret": "replica", "query": SLOW_SQLITE}, _ctx({"replica": sqlite_dsn}, timeout=0.3))
    assert time.monotonic() - started < 2
    assert result.error == "sql (dsn_secret 'replica'): sqlite error: timed out (interrupted)"

    ctx = _ctx({"replica": sqlite_dsn}, timeout=30)
    threading.Timer(0.2, ctx.cancelled.set).start()
    started = time.monotonic()
    result = _run({"dsn_secret": "replica", "query": SLOW_SQLITE}, ctx)
    assert time.monotonic() - started < 2
    assert result.error in (
        "sql (dsn_secret 'replica'): cancelled",
        "sql (dsn_secret 'replica'): sqlite error: cancelled",
    )


def _postgres_dsn() -> str:
    from psycopg.conninfo import make_conninfo

    settings = connection.settings_dict
    parts = {
        "dbname": settings["NAME"],
        "user": settings.get("USER"),
        "password": settings.get("PASSWORD"),
        "host": settings.get("HOST"),
        "port": settings.get("PORT"),
    }
    return make_conninfo(**{k: str(v) for k, v in parts.items() if v})


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_query_timeout_and_cancel() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL test run (DATABASE_URL=postgres://…)")
    dsn = _postgres_dsn()
    ctx = _ctx({"pg": dsn})
    query = "SELECT 42 AS answer, 2.5::numeric AS ratio, current_setting('statement_timeout') AS limit_ms"
    result = _run({"dsn_secret": "pg", "query": query, "expect": {"row_count": 1, "value": 42}}, ctx)
    assert result.ok, result.error
    assert result.output["rows"] == [{"answer": 42, "ratio": 2.5, "limit_ms": "5s"}]

    started = time.monotonic()
    slow = _run({"dsn_secret": "pg", "query": "SELECT pg_sleep(10)"}, _ctx({"pg": dsn}, timeout=0.5))
    assert time.monotonic() - started < 3
    assert slow.error.startswith("sql (dsn_secret 'pg'): postgresql error: QueryCanceled: canceling statement due to")
    assert dsn not in slow.error

    ctx = _ctx({"pg": dsn}, timeout=30)
    threading.Timer(0.3, ctx.cancelled.set).start()
    started = time.monotonic()
    cancelled = _run({"dsn_secret": "pg", "query": "SELECT pg_sleep(10)"}, ctx)
    assert time.monotonic() - started < 3
    assert cancelled.error == "sql (dsn_secret 'pg'): cancelled"

    bad = _run({"dsn_secret": "pg", "query": "SELECT * FROM no_such_table"}, _ctx({"pg": dsn}))
    assert bad.error.startswith("sql (dsn_secret 'pg'): postgresql error: UndefinedTable: relation \"no_such_table\"")
