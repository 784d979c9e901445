"""The ORM broker woken by an enqueue (failover.tasks.WakingORM): an idle pusher takes a new task as soon as
it is queued, not at its next poll. Runs on the database of the pass: a datagram to the pusher's socket
with SQLite, PostgreSQL's NOTIFY in the PostgreSQL pass."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from django.db import connections
from django_q.conf import Conf

from failover.tasks import WakingORM

POLL_SECONDS = 120.0  # far longer than the test waits: only a wake-up returns the pusher in time


@pytest.fixture(autouse=True)
def _orm_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker on the default database, also in a pass where REDIS_URL makes Redis the configured broker."""
    monkeypatch.setattr(Conf, "ORM", "default")


def _idle_pusher(broker: WakingORM, found: list[Any]) -> threading.Thread:
    """A pusher's loop in a thread: dequeue until something comes (its first dequeue finds nothing and waits)."""

    def run() -> None:
        try:
            while not found:
                found.extend(broker.dequeue() or [])
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_an_enqueue_wakes_an_idle_pusher_long_before_its_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Conf, "POLL", POLL_SECONDS)
    key = f"wake-{uuid.uuid4().hex[:8]}"
    found: list[Any] = []
    pusher = _idle_pusher(WakingORM(list_key=key), found)
    WakingORM(list_key=key).enqueue("the task")
    pusher.join(timeout=20)
    assert not pusher.is_alive(), "the pusher was not woken: it still waits for its poll"
    assert [payload for _, payload in found] == ["the task"]


@pytest.mark.django_db(transaction=True)
def test_a_task_of_another_queue_is_not_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wake-up only makes the pusher look: it takes tasks of its own queue only, and waits on."""
    monkeypatch.setattr(Conf, "POLL", 0.2)
    found: list[Any] = []
    broker = WakingORM(list_key=f"mine-{uuid.uuid4().hex[:8]}")
    WakingORM(list_key=f"other-{uuid.uuid4().hex[:8]}").enqueue("not mine")
    assert broker.dequeue() is None
    assert broker.dequeue() is None
    broker.enqueue("mine")
    found.extend(broker.dequeue() or [])
    assert [payload for _, payload in found] == ["mine"]
