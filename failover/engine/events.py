"""Execution events: persisted first, with a gapless per-execution sequence number,
then published to the execution's Channels group after commit.

Every state change and every output line of an execution goes through `emit()`.
"""

from __future__ import annotations

import logging
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
    return event


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
    and a subscriber that missed a message backfills by sequence number."""
    if not settings.REDIS_URL:
        return  # no cross-process channel layer configured; subscribers read the table
    try:
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(
                group_name(event.execution_id), {"type": "execution.event", "event": event_payload(event)}
            )
    except Exception:
        logger.warning("could not publish event %s#%s", event.execution_id, event.seq, exc_info=True)
