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
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F

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
    in the message and data before anything is stored."""
    if redact is not None:
        message = redact(message)
        data = redact(data) if data else data
    with transaction.atomic():
        # The UPDATE takes the execution row's write lock until commit, so concurrent
        # emitters get consecutive numbers and never the same one.
        FailoverExecution.objects.filter(pk=execution_id).update(event_seq=F("event_seq") + 1)
        seq = FailoverExecution.objects.filter(pk=execution_id).values_list("event_seq", flat=True).get()
        event = ExecutionEvent.objects.create(
            execution_id=execution_id, seq=seq, step_run_id=step_run_id, kind=kind, message=message, data=data or {}
        )
        transaction.on_commit(lambda: publish(event))
        if kind != ExecutionEvent.Kind.LOG:
            transaction.on_commit(lambda: notify(event))
    return event


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


def publish(event: ExecutionEvent) -> None:
    """Send a stored event to live subscribers. Best effort: the database row is the truth,
    and a subscriber that missed a message backfills by sequence number.

    Sending happens on a background thread with its own event loop, so a coordinator never
    waits for the channel layer between two steps; events keep their order.
    """
    if not settings.REDIS_URL:
        return  # no cross-process channel layer configured; subscribers read the table
    _publisher().put((group_name(event.execution_id), {"type": "execution.event", "event": event_payload(event)}))


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
    keeps its connections per loop). A daemon thread blocked in get() never delays exit."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    loop = asyncio.new_event_loop()
    while True:
        group, message = messages.get()
        try:
            loop.run_until_complete(layer.group_send(group, message))
        except Exception:  # publishing must never break the run
            logger.warning("could not publish event to %s", group, exc_info=True)


def wait_until_published(timeout: float = 5.0) -> bool:
    """Block until every queued event was handed to the channel layer (tests, shutdown)."""
    deadline = time.monotonic() + timeout
    while _queue is not None and not _queue.empty() and time.monotonic() < deadline:
        time.sleep(0.01)
    return _queue is None or _queue.empty()
