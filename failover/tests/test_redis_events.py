"""With REDIS_URL set, stored execution events reach live subscribers through the Redis
channel layer, in order and with their sequence numbers (run by `make test` against a real
Redis through scripts/with_redis.py)."""

from __future__ import annotations

import os

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from failover.engine.events import emit, group_name
from failover.models import ExecutionEvent, FailoverExecution


async def _receive(layer, channel: str, count: int) -> list[dict]:
    # One event loop for every receive: channels_redis buffers per loop.
    return [await layer.receive(channel) for _ in range(count)]


def _watched_execution() -> tuple[FailoverExecution, object, str]:
    """A new execution, the channel layer and a channel in the execution's group (a live viewer's)."""
    execution = FailoverExecution.objects.create(execution_type="runbook", triggered_at=timezone.now())
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group_name(execution.pk), channel)
    return execution, layer, channel


pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis server (REDIS_URL)"),
]


@pytest.mark.django_db
def test_emitted_events_are_published_after_commit_in_order(django_capture_on_commit_callbacks):
    execution, layer, channel = _watched_execution()

    with django_capture_on_commit_callbacks(execute=True):
        emit(execution.pk, ExecutionEvent.Kind.LOG, "first line")
        emit(execution.pk, ExecutionEvent.Kind.LOG, "second line", {"n": 2})

    received = async_to_sync(_receive)(layer, channel, 2)  # committed one by one: a message each
    assert all(m["type"] == "execution.events" for m in received)
    events = [event for m in received for event in m["events"]]
    assert [e["seq"] for e in events] == [1, 2]
    assert [e["message"] for e in events] == ["first line", "second line"]
    assert events[1]["data"] == {"n": 2}
    assert ExecutionEvent.objects.filter(execution=execution).count() == 2


@pytest.mark.django_db
def test_a_turns_events_are_one_message_in_order(django_capture_on_commit_callbacks):
    from django.db import transaction

    from failover.engine.events import batched

    execution, layer, channel = _watched_execution()

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic(), batched():
        for n in range(1, 41):
            emit(execution.pk, ExecutionEvent.Kind.LOG, f"line {n}")

    [message] = async_to_sync(_receive)(layer, channel, 1)
    assert message["type"] == "execution.events"
    assert [e["seq"] for e in message["events"]] == list(range(1, 41))
    assert [e["message"] for e in message["events"]] == [f"line {n}" for n in range(1, 41)]


@pytest.mark.django_db
def test_nothing_is_published_for_a_rolled_back_event(django_capture_on_commit_callbacks):
    from django.db import transaction

    execution, _layer, _channel = _watched_execution()

    class Abort(Exception):
        pass

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                emit(execution.pk, ExecutionEvent.Kind.LOG, "never stored")
                raise Abort
        except Abort:
            pass
    assert callbacks == []
    assert not ExecutionEvent.objects.filter(execution=execution).exists()
