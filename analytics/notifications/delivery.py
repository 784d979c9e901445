"""The outbox: deliver one Delivery (claim it, one attempt, record it, schedule the retry).

A delivery is claimed by a conditional update (PENDING and due → SENDING), so the task queued at creation
and the minute sweep never both send it. A failed attempt is retried after NOTIFY_BACKOFF_SECONDS,
doubling each time (at most an hour), until the channel's max_attempts; then the delivery is FAILED.
A claim older than the channel's timeout plus a minute (the worker died mid-send) goes back to PENDING.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
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
