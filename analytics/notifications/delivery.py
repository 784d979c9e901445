"""The outbox: deliver one Delivery (claim it, one attempt, record it, schedule the retry).

A delivery is claimed by a conditional update (PENDING and due → SENDING), so the task queued at creation
and the minute sweep never both send it. A failed attempt is retried after NOTIFY_BACKOFF_SECONDS,
doubling each time (at most an hour), until the channel's max_attempts; then the delivery is FAILED.
A claim older than the channel's timeout plus a minute (the worker died mid-send) goes back to PENDING.

The first attempt is also made at once from the process that created the message (`send_soon`, on commit,
on a small pool of threads) when NOTIFY_SEND_FROM_PROCESS is on: a coordinator holds its django-q worker
for the whole run, so with every worker coordinating, a queued delivery would wait for a run to end. The
claim makes the two paths safe: whichever claims first sends, the other finds it no longer pending.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from analytics.notifications import channels
from analytics.notifications.choices import DeliveryStatus
from analytics.notifications.models import Delivery, DeliveryAttempt

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600
STALE_CLAIM_SECONDS = 60


def backoff_seconds(attempts: int) -> int:
    """Delay before the next attempt after `attempts` failed ones: base, 2 x base, 4 x base ... at most 1 h."""
    return min(MAX_BACKOFF_SECONDS, settings.NOTIFY_BACKOFF_SECONDS * 2 ** max(0, attempts - 1))


def deliver(delivery_id: int, now: datetime | None = None) -> str:
    """One attempt of the delivery if it is pending and due; returns what happened (for the task log)."""
    now = now or timezone.now()
    claimed = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now).update(
        status=DeliveryStatus.SENDING, claimed_at=timezone.now()
    )
    if not claimed:
        return f"delivery #{delivery_id}: not pending or not due"
    delivery = Delivery.objects.select_related("channel", "notification").get(pk=delivery_id)
    number = delivery.attempts + 1
    started = timezone.now()
    outcome = channels.send(delivery, number)
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=started,
            duration_ms=outcome.duration_ms,
            success=outcome.success,
            status_code=outcome.status_code,
            error=outcome.error,
        )
        fields: dict = {"attempts": number, "claimed_at": None, "last_error": outcome.error}
        if outcome.success:
            fields.update(status=DeliveryStatus.DELIVERED, delivered_at=timezone.now(), next_attempt_at=None)
        elif number >= delivery.max_attempts:
            fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
        else:
            retry_at = max(now, started) + timedelta(seconds=backoff_seconds(number))
            fields.update(status=DeliveryStatus.PENDING, next_attempt_at=retry_at)
        Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING).update(**fields)
    if outcome.success:
        return f"delivery #{delivery_id} to {delivery.channel.name}: delivered ({outcome.status_code})"
    logger.warning(
        "notification delivery #%s to channel %s, attempt %s of %s failed: %s",
        delivery_id,
        delivery.channel.name,
        number,
        delivery.max_attempts,
        outcome.error,
    )
    return f"delivery #{delivery_id} to {delivery.channel.name}: attempt {number} failed: {outcome.error}"


_senders = ThreadPoolExecutor(max_workers=2, thread_name_prefix="drplan-notify")


def send_soon(delivery_ids: Iterable[int]) -> None:
    """First attempts on this process's sender threads (call on commit); the queued tasks stay as the fallback."""
    if not settings.NOTIFY_SEND_FROM_PROCESS:
        return
    for delivery_id in delivery_ids:
        _senders.submit(_send_in_thread, int(delivery_id))


def _send_in_thread(delivery_id: int) -> None:
    close_old_connections()
    try:
        deliver(delivery_id)
    except Exception:  # the queued task or the minute sweep will try again
        logger.exception("notification delivery #%s: the in-process attempt failed", delivery_id)
    finally:
        connection.close()


def release_stale_claims(now: datetime | None = None) -> int:
    """SENDING deliveries whose worker must have died (claimed longer ago than their channel's timeout plus
    a minute) go back to PENDING, due at once. Returns how many."""
    now = now or timezone.now()
    released = 0
    for delivery in Delivery.objects.filter(status=DeliveryStatus.SENDING).select_related("channel"):
        limit = timedelta(seconds=delivery.channel.timeout_seconds * 2 + STALE_CLAIM_SECONDS)
        if delivery.claimed_at and delivery.claimed_at < now - limit:
            released += Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(
                status=DeliveryStatus.PENDING, claimed_at=None, next_attempt_at=now
            )
    return released
