"""The database server's clock and how far each node's wall clock is from it (issue 15).

Leases are judged by the database's clock alone (failover/engine/lease.py), so a skewed node cannot take
over a live lease; but a node's own timestamps (a step's start and finish, the RTO measured from them)
are only as good as its clock. Each worker node measures its offset every DRPLAN_CLOCK_CHECK_SECONDS (60)
(`start_watch`, from the worker start-up hook), and each web node on its first request (a proxy's health check
reaches it within a second of its start) and then at most that often (`ClockCheck`, around the ASGI
application: a clock reading per request, the measurement on a short-lived daemon thread, nothing that can hold
up a request or the node's shutdown). A measurement goes through the ORM alone: it writes its NodeClock row with
the server's `Now()` between two readings of its own clock and reads the row back; the offset is the
middle of those readings minus the server's time, known to half the round trip. A node whose offset
exceeds the lease margin (lease_margin_seconds) is logged as a warning and reported by
`GET /api/v1/dr/health/clocks` and `scripts/cluster.py status`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection
from django.db.models.functions import Now
from django.utils import timezone

from core.models import NodeClock

logger = logging.getLogger(__name__)

_watch_started = threading.Event()


def lease_margin_seconds() -> float:
    """How long before its lease can expire a coordinator that cannot renew stops, and the skew beyond which
    a node is reported. DRPLAN_ENGINE_LEASE_MARGIN_SECONDS; by default a fifth of the lease, at most half."""
    lease = float(getattr(settings, "ENGINE_LEASE_SECONDS", 15))
    configured = getattr(settings, "ENGINE_LEASE_MARGIN_SECONDS", None)
    margin = float(configured) if configured else lease / 5
    return min(margin, lease / 2)


def measure(node: str | None = None) -> NodeClock:
    """Measure this node's offset from the database server's clock and store it; warn when it is skewed."""
    name = node or settings.NODE_NAME
    before = timezone.now()
    if not NodeClock.objects.filter(node=name).update(checked_at=Now()):
        try:
            NodeClock.objects.create(node=name, checked_at=Now())
        except IntegrityError:  # another process of this node created it meanwhile
            NodeClock.objects.filter(node=name).update(checked_at=Now())
    after = timezone.now()
    database_time = NodeClock.objects.filter(node=name).values_list("checked_at", flat=True).get()
    middle = before + (after - before) / 2
    offset = (middle - database_time).total_seconds()
    uncertainty = (after - before).total_seconds() / 2
    NodeClock.objects.filter(node=name).update(offset_seconds=offset, uncertainty_seconds=uncertainty)
    margin = lease_margin_seconds()
    if abs(offset) - uncertainty > margin:
        logger.warning(
            "clock skew: node %s is %+.3f s (± %.3f) from the database server's clock, beyond the lease margin "
            "of %.1f s: its timestamps are off (leases are not affected: they use the database's clock)",
            name,
            offset,
            uncertainty,
            margin,
        )
    return NodeClock(node=name, checked_at=database_time, offset_seconds=offset, uncertainty_seconds=uncertainty)


def is_skewed(clock: NodeClock, margin: float) -> bool:
    return abs(clock.offset_seconds) - clock.uncertainty_seconds > margin


def report() -> dict[str, Any]:
    """Every node's last measurement, and which are skewed beyond the lease margin."""
    margin = lease_margin_seconds()
    nodes = [
        {
            "node": clock.node,
            "offset_seconds": round(clock.offset_seconds, 6),
            "uncertainty_seconds": round(clock.uncertainty_seconds, 6),
            "checked_at": clock.checked_at,
            "skewed": is_skewed(clock, margin),
        }
        for clock in NodeClock.objects.all()
    ]
    skewed = [node["node"] for node in nodes if node["skewed"]]
    return {"status": "skewed" if skewed else "ok", "lease_margin_seconds": margin, "skewed": skewed, "nodes": nodes}


def start_watch(interval: float | None = None) -> bool:
    """Measure now and every `interval` (CLOCK_CHECK_SECONDS) seconds on a daemon thread, once per process;
    not at all when the interval is 0. Returns whether it started one."""
    interval = settings.CLOCK_CHECK_SECONDS if interval is None else interval
    if _watch_started.is_set() or interval <= 0:
        return False
    _watch_started.set()
    threading.Thread(target=_watch, args=(interval,), name="clock-watch", daemon=True).start()
    return True


_check_lock = threading.Lock()
_next_check = 0.0  # monotonic time before which a web node's check is not due


def check_if_due(interval: float | None = None) -> bool:
    """Start one measurement on a short-lived daemon thread unless one started less than `interval`
    (CLOCK_CHECK_SECONDS) seconds ago; never with 0. Returns whether it started one. Costs a clock reading."""
    global _next_check
    interval = settings.CLOCK_CHECK_SECONDS if interval is None else interval
    now = time.monotonic()
    if interval <= 0 or now < _next_check:
        return False
    with _check_lock:
        if now < _next_check:
            return False
        _next_check = now + interval
    threading.Thread(target=_measure_once, name="clock-check", daemon=True).start()
    return True


def _measure_once() -> None:
    try:
        measure()
    except Exception:  # the database may be away: the next due check measures again
        logger.warning("clock check failed", exc_info=True)
    finally:
        connection.close()  # this thread's own connection


ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class ClockCheck:
    """ASGI middleware of a web node: each HTTP request or websocket connection looks whether this node's clock
    check is due (`check_if_due`), so web nodes report their offset as worker nodes do."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            check_if_due()
        await self.app(scope, receive, send)


def _watch(interval: float) -> None:
    stop = threading.Event()
    while True:
        try:
            measure()
        except Exception:  # the database may be away: measure again next time
            logger.warning("clock check failed", exc_info=True)
        finally:
            connection.close()  # this thread's own connection
        stop.wait(interval)
