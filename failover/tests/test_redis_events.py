"""With REDIS_URL set, stored execution events reach live subscribers through the Redis
channel layer, in order and with their sequence numbers (run by `make test` against a real
Redis through scripts/with_redis.py)."""

from __future__ import annotations

import asyncio
import copy
import os
import secrets

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from failover.engine.events import emit, group_name, wait_until_published
from failover.models import ExecutionEvent, FailoverExecution
from failover.tests.redis_support import start_node


class Viewer:
    """A live viewer's channel in an execution's group, with its own event loop kept between calls: the pub/sub
    channel layer subscribes per process and per loop, and a cancelled receive gives the channel up, so one task
    receives for the viewer's whole life and the test reads what it collected."""

    def __init__(self, execution_id: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.layer = get_channel_layer()
        self.messages: list[dict] = []
        self.read = 0
        self.channel = self.loop.run_until_complete(self._join(group_name(execution_id)))
        self._collector = self.loop.create_task(self._collect())

    async def _join(self, group: str) -> str:
        channel = await self.layer.new_channel()
        await self.layer.group_add(group, channel)
        return channel

    async def _collect(self) -> None:
        while True:
            self.messages.append(await self.layer.receive(self.channel))

    def listen(self, seconds: float) -> list[dict]:
        """Run the viewer's loop for `seconds` (it reads, reconnects, subscribes again); the new messages."""
        self.loop.run_until_complete(asyncio.sleep(seconds))
        new, self.read = self.messages[self.read :], len(self.messages)
        return new

    def receive(self, count: int, timeout: float = 5.0) -> list[dict]:
        """The next `count` messages, waiting at most `timeout` seconds for them."""

        async def arrived() -> None:
            while len(self.messages) < self.read + count:
                await asyncio.sleep(0.01)

        try:
            self.loop.run_until_complete(asyncio.wait_for(arrived(), timeout))
        except TimeoutError:
            raise AssertionError(f"{count} messages expected, {len(self.messages) - self.read} arrived") from None
        new, self.read = self.messages[self.read : self.read + count], self.read + count
        return new

    def close(self) -> None:
        self._collector.cancel()
        self.loop.run_until_complete(asyncio.gather(self._collector, return_exceptions=True))
        self.loop.run_until_complete(self.layer.flush())
        self.loop.close()


@pytest.fixture
def watched_execution():
    """A new execution and a live viewer of it."""
    execution = FailoverExecution.objects.create(execution_type="runbook", triggered_at=timezone.now())
    viewer = Viewer(execution.pk)
    yield execution, viewer
    viewer.close()


pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis server (REDIS_URL)"),
]


@pytest.mark.django_db
def test_emitted_events_are_published_after_commit_in_order(django_capture_on_commit_callbacks, watched_execution):
    execution, viewer = watched_execution

    with django_capture_on_commit_callbacks(execute=True):
        emit(execution.pk, ExecutionEvent.Kind.LOG, "first line")
        emit(execution.pk, ExecutionEvent.Kind.LOG, "second line", {"n": 2})

    received = viewer.receive(2)  # committed one by one: a message each
    assert all(m["type"] == "execution.events" for m in received)
    events = [event for m in received for event in m["events"]]
    assert [e["seq"] for e in events] == [1, 2]
    assert [e["message"] for e in events] == ["first line", "second line"]
    assert events[1]["data"] == {"n": 2}
    assert ExecutionEvent.objects.filter(execution=execution).count() == 2


@pytest.mark.django_db
def test_a_turns_events_are_one_message_in_order(django_capture_on_commit_callbacks, watched_execution):
    from django.db import transaction

    from failover.engine.events import batched

    execution, viewer = watched_execution

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic(), batched():
        for n in range(1, 41):
            emit(execution.pk, ExecutionEvent.Kind.LOG, f"line {n}")

    [message] = viewer.receive(1)
    assert message["type"] == "execution.events"
    assert [e["seq"] for e in message["events"]] == list(range(1, 41))
    assert [e["message"] for e in message["events"]] == [f"line {n}" for n in range(1, 41)]


@pytest.mark.django_db
def test_nothing_is_published_for_a_rolled_back_event(django_capture_on_commit_callbacks, watched_execution):
    from django.db import transaction

    execution, _viewer = watched_execution

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


@pytest.mark.django_db
def test_viewers_hear_published_events_again_once_a_restarted_redis_is_back(
    tmp_path, settings, django_capture_on_commit_callbacks
):
    """Redis lost and started again (empty, as after a crash without persistence): the web node's subscription
    comes back by itself and events are heard live again, without the viewer rejoining. The list-based layer kept
    group memberships in Redis, so they were gone with it and only the table poll still delivered."""
    password = "pw-" + secrets.token_hex(8)
    node = start_node(tmp_path, "channels", password)
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["address"] = node.url
    settings.REDIS_URL, settings.CHANNEL_LAYERS = node.url, layers
    execution = FailoverExecution.objects.create(execution_type="runbook", triggered_at=timezone.now())
    viewer = Viewer(execution.pk)
    try:

        def emit_committed(message: str) -> None:
            with django_capture_on_commit_callbacks(execute=True):
                emit(execution.pk, ExecutionEvent.Kind.LOG, message)
            wait_until_published()

        emit_committed("before the loss")
        assert [e["seq"] for m in viewer.receive(1) for e in m["events"]] == [1]

        node.proc.kill()
        node.proc.wait()
        emit_committed("while Redis is down")  # stored; its publication fails and is logged
        viewer.listen(0.5)
        node = start_node(tmp_path, "channels", password, port=node.port)

        heard: list[dict] = []
        for n in range(50):  # what was sent before the viewer's connection subscribed again is not kept
            emit_committed(f"after the return {n}")
            heard += [e for m in viewer.listen(0.2) for e in m["events"]]
            if heard:
                break
        assert heard, "no event published after Redis came back reached the viewer"
        assert heard[0]["message"].startswith("after the return")
        assert [e["seq"] for e in heard] == sorted({e["seq"] for e in heard})
        assert ExecutionEvent.objects.filter(execution=execution).count() == 3 + n  # every event stored
    finally:
        try:
            viewer.close()
        finally:
            node.stop()


@pytest.mark.django_db(transaction=True)
def test_a_web_process_whose_viewers_all_left_hears_the_next_viewers_events_live(settings):
    """The feed gives up its channel when its last viewer leaves (the pub/sub layer unsubscribes a channel whose
    receive is cancelled); the next viewer of that process gets a new one and hears events through Redis."""
    from failover.live.feed import Feed

    settings.LIVE_POLL_SECONDS = 60  # only the channel layer delivers within this test
    execution = FailoverExecution.objects.create(execution_type="runbook", triggered_at=timezone.now())

    async def scenario() -> list[int]:
        feed = Feed(60, get_channel_layer())
        heard: asyncio.Queue = asyncio.Queue()
        try:
            await feed.subscribe(execution.pk, heard.put_nowait)
            await asyncio.sleep(0.1)  # the feed's listener is waiting for a message
            await feed.unsubscribe(execution.pk, heard.put_nowait)
            await asyncio.sleep(0.1)  # the listener's cancellation runs
            await feed.subscribe(execution.pk, heard.put_nowait)
            await sync_to_async(emit_and_publish)(execution.pk, "for the second viewer")
            payload = await asyncio.wait_for(heard.get(), 5)
            return [payload["seq"]]
        finally:
            await feed.stop()

    assert asyncio.run(scenario()) == [1]


def emit_and_publish(execution_id: int, message: str) -> None:
    emit(execution_id, ExecutionEvent.Kind.LOG, message)  # autocommit: published at once
    assert wait_until_published()
