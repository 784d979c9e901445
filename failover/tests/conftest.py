from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings


@pytest.fixture(autouse=True)
def _release_live_feed_connection():
    """The live feed polls on a thread that keeps its database connection; a test's event loop can end
    before the feed lets it go, and an open session keeps PostgreSQL from dropping the test database."""
    yield
    from failover.live import feed

    feed._POLLER.submit(feed._close_connection).result()


@pytest.fixture(scope="session")
def pg_pair() -> Iterator:
    """A real PostgreSQL 16 primary + streaming standby (failover/tests/pg_pair.py), shared by the session;
    each test calls reset() first. Only in the SQLite pass: the PostgreSQL pass would start it again."""
    if os.environ.get("DATABASE_URL"):
        pytest.skip("the PostgreSQL pair runs once, in the SQLite pass")
    pytest.importorskip("pgserver")
    from failover.tests.pg_pair import PgPair

    pair = PgPair(Path(settings.VAR_DIR) / f"pg-pair-{os.getpid()}")
    try:
        pair.up()
        yield pair
    finally:
        pair.close()
