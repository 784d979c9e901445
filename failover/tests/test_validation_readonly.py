"""The data-integrity validation check runs a person's SQL: it must only read, one statement, and stop at the
check's timeout. Against a real SQLite file and, in the PostgreSQL run, the test PostgreSQL server."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from failover.choices import CheckStatus
from failover.engine.validation import CheckOutcome, run_check
from plans.models import ValidationCheck

SLOW_SQLITE = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"


def check(query: str, dsn: str, timeout: float = 5) -> CheckOutcome:
    integrity = ValidationCheck(name="rows", check_type="data_integrity", target="db", query=query)
    return run_check(integrity, {"db": dsn}.__getitem__, timeout)


# --- SQLite --------------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    path = tmp_path / "orders.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
        db.executemany("INSERT INTO orders (total) VALUES (?)", [(10,), (20,), (30,)])
    return path


def rows_of(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id, total FROM orders ORDER BY id").fetchall()


def test_sqlite_read_query_is_measured(sqlite_db: Path) -> None:
    outcome = check("WITH t AS (SELECT sum(total) AS s FROM orders) SELECT s FROM t", f"sqlite://{sqlite_db}")
    assert (outcome.status, outcome.measured) == (CheckStatus.PASSED, 60.0)


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM orders",
        "UPDATE orders SET total = 0",
        "INSERT INTO orders (total) VALUES (1) RETURNING id",
        "PRAGMA query_only = OFF",
        "SELECT 1; DELETE FROM orders",
        "PRAGMA query_only = OFF; DELETE FROM orders",
        "DROP TABLE orders",
    ],
)
def test_sqlite_writes_are_refused_and_change_nothing(sqlite_db: Path, query: str) -> None:
    before = rows_of(sqlite_db)
    outcome = check(query, f"sqlite://{sqlite_db}")
    assert outcome.status == CheckStatus.ERROR, outcome
    assert rows_of(sqlite_db) == before


@pytest.mark.parametrize("statement", ["ATTACH '{path}' AS other", "VACUUM INTO '{path}'"])
def test_sqlite_may_not_attach_or_write_another_file(sqlite_db: Path, tmp_path: Path, statement: str) -> None:
    other = tmp_path / "other.sqlite3"
    outcome = check(statement.format(path=other), f"sqlite://{sqlite_db}")
    assert outcome.status == CheckStatus.ERROR
    assert not other.exists()


def test_sqlite_dsn_cannot_reopen_the_file_writable(sqlite_db: Path) -> None:
    """The path is a path: a ?mode=rw smuggled into the DSN does not become a URI parameter."""
    outcome = check("SELECT count(*) FROM orders", f"sqlite://{sqlite_db}?mode=rw&")
    assert outcome.status == CheckStatus.ERROR
    assert not Path(f"{sqlite_db}?mode=rw&").exists()


def test_sqlite_slow_query_stops_at_the_timeout(sqlite_db: Path) -> None:
    started = time.monotonic()
    outcome = check(SLOW_SQLITE, f"sqlite://{sqlite_db}", timeout=0.3)
    assert time.monotonic() - started < 2
    assert outcome == CheckOutcome(CheckStatus.ERROR, message="the query ran longer than the check's timeout (0.3s)")


# --- PostgreSQL ----------------------------------------------------------------------------------------


def _postgres_url() -> str:
    """The test database as a postgresql:// URL (the form a data-integrity check's secret holds)."""
    settings = connection.settings_dict
    user = quote(settings.get("USER") or "", safe="")
    password = f":{quote(settings['PASSWORD'], safe='')}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or ""
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    if host.startswith("/"):  # a Unix socket directory (scripts/with_postgres.py)
        return f"postgresql://{user}{password}@{port}/{settings['NAME']}?host={quote(host, safe='')}"
    return f"postgresql://{user}{password}@{host}{port}/{settings['NAME']}"


@pytest.fixture
def pg_table() -> Iterator[str]:
    """A table with 3 rows, made and dropped on a connection of its own (autocommit)."""
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL test run (DATABASE_URL=postgres://…)")
    import psycopg

    dsn = _postgres_url()
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS integrity_probe")
        db.execute("CREATE TABLE integrity_probe (id serial PRIMARY KEY, total numeric)")
        db.execute("INSERT INTO integrity_probe (total) VALUES (10), (20), (30)")
    try:
        yield dsn
    finally:
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute("DROP TABLE IF EXISTS integrity_probe")


def pg_rows(dsn: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        return db.execute("SELECT id, total FROM integrity_probe ORDER BY id").fetchall()


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_read_query_is_measured(pg_table: str) -> None:
    outcome = check("SELECT sum(total) FROM integrity_probe WHERE total > 5", pg_table)
    assert (outcome.status, outcome.measured) == (CheckStatus.PASSED, 60.0)
    # what the session looks like from the inside: a read-only transaction, bounded by the check's timeout
    read_only = check("SELECT (current_setting('transaction_read_only') = 'on')::int", pg_table)
    assert read_only.measured == 1
    timeout = check("SELECT extract(epoch FROM current_setting('statement_timeout')::interval)", pg_table)
    assert timeout.measured == 5


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "INSERT INTO integrity_probe (total) VALUES (1)",
        "SET default_transaction_read_only = off; INSERT INTO integrity_probe (total) VALUES (1)",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; DELETE FROM integrity_probe",
        "COMMIT; BEGIN READ WRITE; DELETE FROM integrity_probe; COMMIT",
        "BEGIN READ WRITE; UPDATE integrity_probe SET total = 0; COMMIT",
        "SELECT 1; DELETE FROM integrity_probe",
        "WITH gone AS (DELETE FROM integrity_probe RETURNING id) SELECT count(*) FROM gone",
        "SELECT set_config('default_transaction_read_only', 'off', false), count(*) FROM integrity_probe",
        "DO $$ BEGIN SET TRANSACTION READ WRITE; DELETE FROM integrity_probe; END $$",
        "TRUNCATE integrity_probe",
    ],
)
def test_postgresql_writes_are_refused_and_change_nothing(pg_table: str, query: str) -> None:
    before = pg_rows(pg_table)
    outcome = check(query, pg_table)
    assert outcome.status == CheckStatus.ERROR, outcome
    assert pg_rows(pg_table) == before


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_slow_query_is_cut_off_by_the_timeout(pg_table: str) -> None:
    started = time.monotonic()
    outcome = check("SELECT pg_sleep(10)", pg_table, timeout=0.5)
    assert time.monotonic() - started < 3
    assert outcome.status == CheckStatus.ERROR
    assert "canceling statement due to statement timeout" in outcome.message
