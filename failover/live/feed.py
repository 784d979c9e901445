"""Live events for the websockets of one web-server process: one `Feed` per process (per event loop),
started by the first subscriber, stopped when the last one leaves, fanning events out in process.

Without Redis: workers and the web server are separate processes, and the embedded default channel
layer (InMemoryChannelLayer) does not cross processes. So the feed polls: every `interval` seconds
ONE query (whatever the number of viewers) reads the new events of all executions watched here.

With REDIS_URL: the worker publishes every event to the group `execution-<id>`; the feed joins those
groups with ONE channel for the process (so Redis carries one message per event per process, not one
per viewer) and still polls, at a slow interval, as a safety net for a lost publication (publishing is
best effort). The feed delivers each seq once; subscribers drop what they already have anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from django.db import connection

from failover.engine.events import group_name
from failover.live import selectors

logger = logging.getLogger(__name__)

Subscriber = Callable[[dict[str, Any]], None]
BATCH = 500


# The polls run on one thread of their own that keeps its database connection between ticks
# (database_sync_to_async would close and reopen it every 50 ms).
_POLLER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-feed-poll")


async def _release_poller_connection() -> None:
    """Nobody watches any more: let the poller thread's database connection go."""
    await asyncio.get_running_loop().run_in_executor(_POLLER, _close_connection)


def _close_connection() -> None:
    connection.close()  # looked up here, on the poller thread: connections are per thread


def _poll(marks: dict[int, int]) -> list[dict[str, Any]]:
    try:
        return selectors.new_events(marks, BATCH)
    except Exception:
        connection.close()  # a broken connection is reopened on the next tick
        raise


class Feed:
    """New events of the watched executions, read by one polling task and fanned out in process."""

    def __init__(self, interval: float, layer: BaseChannelLayer | None = None) -> None:
        self.interval = interval
        self.layer = layer
        self.subscribers: dict[int, set[Subscriber]] = {}
        self.marks: dict[int, int] = {}  # execution id -> last seq this feed delivered
        self._task: asyncio.Task | None = None
        self._listener: asyncio.Task | None = None
        self._channel: str | None = None
        self._joined: set[int] = set()  # executions whose group this feed's channel is in
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    async def subscribe(self, execution_id: int, subscriber: Subscriber) -> None:
        """Deliver the execution's events after its current last seq to `subscriber` (a non-blocking
        callable, e.g. asyncio.Queue.put_nowait). The caller backfills from the table after subscribing."""
        loop = asyncio.get_running_loop()
        async with self._membership(execution_id):
            if self.layer is not None and execution_id not in self._joined:
                if self._channel is None:
                    self._channel = await self.layer.new_channel()
                await self.layer.group_add(group_name(execution_id), self._channel)
                self._joined.add(execution_id)
            if execution_id not in self.marks:  # read after joining the group: nothing falls between
                seq = await database_sync_to_async(selectors.last_seq)(execution_id)
                self.marks.setdefault(execution_id, seq or 0)
            self.subscribers.setdefault(execution_id, set()).add(subscriber)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name="live-event-feed")
        if self.layer is not None and (self._listener is None or self._listener.done()):
            self._listener = loop.create_task(self._listen(), name="live-event-listener")

    async def unsubscribe(self, execution_id: int, subscriber: Subscriber) -> None:
        subscribers = self.subscribers.get(execution_id)
        if subscribers is None:
            return
        subscribers.discard(subscriber)
        if subscribers:
            return
        async with self._membership(execution_id):
            if self.subscribers.get(execution_id):
                return  # a viewer arrived while this one was waiting its turn: the execution stays watched
            self.subscribers.pop(execution_id, None)
            self.marks.pop(execution_id, None)
            if execution_id in self._joined:
                self._joined.discard(execution_id)
                if self.layer is not None and self._channel is not None:
                    await self.layer.group_discard(group_name(execution_id), self._channel)
        # The poller ends by itself when it sees nobody is left. The listener stays, waiting on the process's
        # channel (which costs nothing) until the feed stops: the pub/sub layer gives up a channel whose receive
        # is cancelled, and a viewer arriving meanwhile would have joined its groups with the channel given up.

    def _membership(self, execution_id: int) -> asyncio.Lock:
        """The lock that orders one execution's joins and leaves of its group. Without it, a viewer arriving
        while the last one leaves could be added to the group before the leave's discard reaches the channel
        layer, and the discard would then take the process out of the group with a viewer in it. Kept while
        some coroutine holds or awaits it (a weak mapping), so watching many executions leaves nothing behind."""
        lock = self._locks.get(execution_id)
        if lock is None:
            lock = self._locks[execution_id] = asyncio.Lock()
        return lock

    def _dispatch(self, payload: dict[str, Any]) -> None:
        execution_id, seq = payload["execution"], payload["seq"]
        if execution_id not in self.subscribers or seq <= self.marks.get(execution_id, seq):
            return  # unwatched meanwhile, already delivered, or re-watched from a later mark
        self.marks[execution_id] = seq
        for subscriber in list(self.subscribers[execution_id]):
            subscriber(payload)

    async def tick(self) -> int:
        """One query for every watched execution; returns how many events it read."""
        marks = {execution_id: self.marks[execution_id] for execution_id in self.subscribers}
        if not marks:
            return 0
        payloads = await asyncio.get_running_loop().run_in_executor(_POLLER, _poll, marks)
        for payload in payloads:
            self._dispatch(payload)
        return len(payloads)

    async def _listen(self) -> None:
        """Events published to the groups this process watches (one channel for all its viewers)."""
        while True:
            try:
                message = await self.layer.receive(self._channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("live event feed: channel layer receive failed", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            if message.get("type") == "execution.events":  # a turn's events, in order (engine/events.publish)
                for payload in message["events"]:
                    self._dispatch(payload)
            elif message.get("type") == "execution.event":  # one event (what nodes of earlier versions send)
                self._dispatch(message["event"])

    async def _run(self) -> None:
        full = False  # the last tick read a whole batch: read on without waiting
        while True:
            while self.subscribers:
                try:
                    if not full:
                        await asyncio.sleep(self.interval)
                    full = await self.tick() >= BATCH
                except asyncio.CancelledError:
                    raise
                except Exception:  # a database hiccup must not end the stream of every viewer
                    logger.warning("live event feed: poll failed", exc_info=True)
                    await asyncio.sleep(max(self.interval, 1.0))
            await _release_poller_connection()
            # A viewer who subscribed while the connection was being released found this task still running and
            # started no other (a reconnect, just after the last viewer left): poll on for them.
            if not self.subscribers:
                return

    async def stop(self) -> None:
        current = asyncio.current_task()
        for task in (self._task, self._listener):
            if task is not None and task is not current and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._listener = self._channel = None
        self._joined.clear()
        await _release_poller_connection()


_feeds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Feed] = weakref.WeakKeyDictionary()


def poll_interval() -> float:
    return float(settings.LIVE_POLL_SECONDS)


def get_feed() -> Feed:
    """This process's feed (one per event loop; daphne runs one loop)."""
    loop = asyncio.get_running_loop()
    feed = _feeds.get(loop)
    if feed is None:
        feed = _feeds[loop] = Feed(poll_interval(), get_channel_layer())
    return feed
