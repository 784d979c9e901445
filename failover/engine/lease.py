"""The coordinator's lease on an execution row: taken with a conditional update, renewed every
lease/3 seconds (with a heartbeat on the steps it runs), released, or handed to a fresh task.

Whoever holds a live lease is the only writer of the execution; a coordinator whose renewal finds
the lease gone raises LeaseLost and stops without writing anything more. A hand-off enqueues through
the hook the coordinator was given (EngineHooks.enqueue)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from failover.choices import ExecutionStatus as ES
from failover.choices import StepStatus as SS
from failover.engine import reaper
from failover.models import FailoverExecution, StepRun

COORDINATED = (ES.PENDING, ES.RUNNING, ES.VALIDATING, ES.ROLLING_BACK)


class LeaseLost(Exception):
    """Another coordinator took the execution over: stop without writing anything more."""


def lease_seconds() -> float:
    return float(getattr(settings, "ENGINE_LEASE_SECONDS", 15))


def worker_identity() -> str:
    """host:pid:random — the pid lets an operator (or a test) find the process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def take_lease(execution_id: int, worker_id: str, *, now: datetime | None = None) -> bool:
    """Conditional update: take the execution if it needs a coordinator and nobody holds a live lease
    (an empty coordinator with a future lease is the reaper's reservation for a re-enqueued task)."""
    now = now or timezone.now()
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(coordinator="")
    return bool(
        FailoverExecution.objects.filter(Q(pk=execution_id, status__in=COORDINATED) & free).update(
            coordinator=worker_id, lease_expires_at=now + timezone.timedelta(seconds=lease_seconds())
        )
    )


def renew_lease(execution_id: int, worker_id: str, *, heartbeat_steps: bool) -> None:
    """Extend the lease (and, with heartbeat_steps, the heartbeat of this worker's RUNNING steps).
    Raises LeaseLost when the lease is no longer ours."""
    now = timezone.now()
    renewed = FailoverExecution.objects.filter(pk=execution_id, coordinator=worker_id).update(
        lease_expires_at=now + timezone.timedelta(seconds=lease_seconds())
    )
    if not renewed:
        raise LeaseLost
    if heartbeat_steps:
        StepRun.objects.filter(execution_id=execution_id, status=SS.RUNNING, worker=worker_id).update(heartbeat_at=now)


def release_lease(execution_id: int, worker_id: str) -> None:
    FailoverExecution.objects.filter(pk=execution_id, coordinator=worker_id).update(
        coordinator="", lease_expires_at=None
    )


def hand_off(execution_id: int, worker_id: str, enqueue: Callable[[int], None]) -> None:
    """Give the execution to a fresh task: release the lease into a short reservation (so the reaper
    does not enqueue it twice) and enqueue it."""
    now = timezone.now()
    FailoverExecution.objects.filter(pk=execution_id, coordinator=worker_id).update(
        coordinator="", lease_expires_at=now + timezone.timedelta(seconds=reaper.REQUEUE_RESERVATION_SECONDS)
    )
    enqueue(execution_id)
