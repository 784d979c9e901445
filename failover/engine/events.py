"""Execution events: persisted first, with a gapless per-execution sequence number,
then published to the execution's Channels group after commit.

Every state change and every output line of an execution goes through `emit()`.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import transaction

from failover.engine import rawsql
from failover.models import ExecutionEvent, FailoverExecution

logger = logging.getLogger(__name__)

Redact = Callable[[Any], Any]


def group_name(execution_id: int) -> str:
    return f"execution-{execution_id}"


def emit(
    execution_id: int,
    kind: str,
    message: str = "",
    data: dict[str, Any] | None = None,
    *,
    step_run_id: int | None = None,
    redact: Redact | None = None,
) -> ExecutionEvent:
    """Append one event. `redact` (core.secrets.Redactor.redact) masks secret values
    in the message and data before anything is stored. Inside `batched()` the event is stored
    (and its `seq` set) when the batch ends, in the same transaction."""
    if redact is not None:
        message = redact(message)
        data = redact(data) if data else data
    event = ExecutionEvent(
        execution_id=execution_id, step_run_id=step_run_id, kind=kind, message=message, data=data or {}
    )
    store([event])
    return event


_batch = threading.local()


@contextmanager
def batched() -> Iterator[None]:
    """Inside a transaction: the events emitted in this block (emit(), LOG lines) are stored at its end,
    in the order they were emitted, with one sequence update and one insert. Nested blocks join the
    outer one. Nothing is stored if the block raises (the transaction rolls back anyway)."""
    if getattr(_batch, "events", None) is not None:
        yield
        return
    _batch.events = []
    try:
        yield
        events, _batch.events = _batch.events, None
        store(events)
    finally:
        _batch.events = None


def store(events: list[ExecutionEvent]) -> None:
    """Give the events of one execution consecutive sequence numbers and insert them in one
    transaction (or add them to the current batch); publish and notify after commit."""
    if not events:
        return
    pending = getattr(_batch, "events", None)
    if pending is not None:
        pending.extend(events)
        return
    with transaction.atomic(savepoint=False):
        by_execution: dict[int, list[ExecutionEvent]] = {}
        for event in events:
            by_execution.setdefault(event.execution_id, []).append(event)
        if rawsql.events_by_hand():  # PostgreSQL, SQLite: numbered and inserted by the engine's own statements
            for execution_id, group in by_execution.items():
                if not rawsql.insert_events(execution_id, group):
                    raise FailoverExecution.DoesNotExist(f"execution {execution_id} does not exist")
        else:
            for execution_id, group in by_execution.items():
                # The UPDATE takes the execution row's write lock until commit, so concurrent
                # emitters get consecutive numbers and never the same one.
                last = _take_seqs(execution_id, len(group))
                for offset, event in enumerate(group):
                    event.seq = last - len(group) + 1 + offset
            ExecutionEvent.objects.bulk_create(events)
        transaction.on_commit(lambda: _committed(events))


def _take_seqs(execution_id: int, count: int) -> int:
    """Advance the execution's event sequence by `count` (one UPDATE … RETURNING); the new last value."""
    last = rawsql.advance_event_seq(execution_id, count)
    if last is None:
        raise FailoverExecution.DoesNotExist(f"execution {execution_id} does not exist")
    return last


def _committed(events: list[ExecutionEvent]) -> None:
    publish(events)
    for event in events:
        if event.kind != ExecutionEvent.Kind.LOG:
            notify(event)


def notify(event: ExecutionEvent) -> None:
    """Hand a committed event to the installed `notify_event` hook (hooks.EngineHooks), if any. Whatever
    goes wrong there is logged and never reaches the run: a notification must not stop a failover."""
    from failover.engine.hooks import installed_or_none

    current = installed_or_none()
    if current is None or current.notify_event is None:
        return
    try:
        current.notify_event(event)
    except Exception:
        logger.exception("notify_event failed for event %s#%s (%s)", event.execution_id, event.seq, event.kind)


def event_payload(event: ExecutionEvent) -> dict[str, Any]:
    return {
        "execution": event.execution_id,
        "seq": event.seq,
        "kind": event.kind,
        "step_run": event.step_run_id,
        "message": event.message,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }


def publish(events: list[ExecutionEvent]) -> None:
    """Send stored events (one turn's) to live subscribers. Best effort: the database rows are the truth,
    and a subscriber that missed a message backfills by sequence number.

    One message per execution carries its events in order (`execution.events`): a wave of 20 steps ending and 20
    starting is one group send (a Redis PUBLISH, ~0.1 ms of the coordinator's process's CPU), not 40. Sending
    happens on a background thread with its own event loop, so a coordinator never waits for the channel layer
    between two steps; events keep their order.
    """
    if not settings.REDIS_URL or not events:
        return  # no cross-process channel layer configured; subscribers read the table
    by_execution: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        by_execution.setdefault(event.execution_id, []).append(event_payload(event))
    for execution_id, payloads in by_execution.items():
        _publisher().put((group_name(execution_id), {"type": "execution.events", "events": payloads}))


_queue: queue.SimpleQueue | None = None
_queue_lock = threading.Lock()


def _publisher() -> queue.SimpleQueue:
    global _queue
    with _queue_lock:
        if _queue is None:
            _queue = queue.SimpleQueue()
            threading.Thread(target=_publish_forever, args=(_queue,), name="event-publisher", daemon=True).start()
        return _queue


def _publish_forever(messages: queue.SimpleQueue) -> None:
    """The publisher thread: one event loop of its own, reused for every send (channels_redis
    keeps its connections per loop). A daemon thread blocked in get() never delays exit. The layer is looked
    up for each send (a dictionary lookup), so a changed CHANNEL_LAYERS setting applies to the next one."""
    from channels.layers import get_channel_layer

    loop = asyncio.new_event_loop()
    while True:
        group, message = messages.get()
        try:
            loop.run_until_complete(get_channel_layer().group_send(group, message))
        except Exception:  # publishing must never break the run
            logger.warning("could not publish event to %s", group, exc_info=True)


def wait_until_published(timeout: float = 5.0) -> bool:
    """Block until every queued event was handed to the channel layer (tests, shutdown)."""
    deadline = time.monotonic() + timeout
    while _queue is not None and not _queue.empty() and time.monotonic() < deadline:
        time.sleep(0.01)
    return _queue is None or _queue.empty()
