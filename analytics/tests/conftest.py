"""Fixtures of the analytics tests: the real PostgreSQL primary + standby pair of the postgres actions' tests
(failover/tests/pg_pair.py), for the monitoring probes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings


@pytest.fixture(scope="session")
def pg_pair() -> Iterator:
    """A real PostgreSQL 16 primary + streaming standby, shared by the session; each test calls reset() first.
    Only in the SQLite pass, as failover's own."""
    if os.environ.get("DATABASE_URL"):
        pytest.skip("the PostgreSQL pair runs once, in the SQLite pass")
    pytest.importorskip("pgserver")
    from failover.tests.pg_pair import PgPair

    pair = PgPair(Path(settings.VAR_DIR) / f"pg-pair-analytics-{os.getpid()}")
    try:
        pair.up()
        yield pair
    finally:
        pair.close()
