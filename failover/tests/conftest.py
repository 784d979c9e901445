from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _release_live_feed_connection():
    """The live feed polls on a thread that keeps its database connection; a test's event loop can end
    before the feed lets it go, and an open session keeps PostgreSQL from dropping the test database."""
    yield
    from failover.live import feed

    feed._POLLER.submit(feed._close_connection).result()
