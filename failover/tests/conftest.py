from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from failover.engine import rawsql
from failover.tests.aws_support import Ctx, MotoServer, Relay, credentials


@pytest.fixture(autouse=True)
def _release_live_feed_connection():
    """The live feed polls on a thread that keeps its database connection; a test's event loop can end
    before the feed lets it go, and an open session keeps PostgreSQL from dropping the test database."""
    yield
    from failover.live import feed

    feed._POLLER.submit(feed._close_connection).result()


# The aws actions' tests (test_actions_aws*.py): one moto server per module, a relay in front of it per test,
# and a step context whose `aws-dr` secret points at the relay.
@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def relay(moto: MotoServer) -> Iterator[Relay]:
    moto.reset()
    relay = Relay(moto.url)
    yield relay
    relay.close()


@pytest.fixture
def ctx(relay: Relay) -> Ctx:
    return Ctx({"aws-dr": credentials(relay.url)})


@pytest.fixture
def silent() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 that accepts and never answers (no greeting, no reply): its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.fixture
def portable() -> Iterator[None]:
    """Every database sent the portable statements and the ORM's bulk_create."""
    rawsql.HAND_WRITTEN = False
    try:
        yield
    finally:
        rawsql.HAND_WRITTEN = True
