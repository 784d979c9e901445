"""What `lab up` hands to the apps above it, through a seam filled at start-up (drplan/wiring.py installs
analytics.monitoring.services.ensure_lab_monitors): the lab may not import analytics.

`monitor_specs(state)` describes, as data, what the lab wants watched: its PostgreSQL pair's replication
(`postgres.replication_status` on the standby's DSN secret), its Redis pair's (`redis.replication_status` on
the replica) and the orders app's health (`http` GET /status). `after_up(state)` passes them to the installed
hook and returns what it reports; without one it says so and nothing fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab.cluster import app_url

PLAN_ID = "lab"
PROBE_INTERVAL_SECONDS = 60

MonitorsHook = Callable[[list[dict[str, Any]]], list[str]]
_monitors: MonitorsHook | None = None


def install(hook: MonitorsHook | None) -> None:
    global _monitors
    _monitors = hook


def monitor_specs(state: dict[str, Any]) -> list[dict[str, Any]]:
    def probe(key: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"key": key, "action": action, "params": params, "interval_seconds": PROBE_INTERVAL_SECONDS}

    return [
        {
            "slug": "lab-postgres-replication",
            "application": "lab-postgres",
            "plan": PLAN_ID,
            "description": "DR lab: the standby's replication from the primary (lag bytes, RPO seconds).",
            "probes": [probe("standby", "postgres.replication_status", {"dsn_secret": "pg_standby"})],
        },
        {
            "slug": "lab-redis-replication",
            "application": "lab-redis",
            "plan": PLAN_ID,
            "description": "DR lab: the Redis replica's link to its primary.",
            "probes": [probe("replica", "redis.replication_status", {"url_secret": "redis_replica"})],
        },
        {
            "slug": "lab-orders-app-health",
            "application": "lab-orders-app",
            "plan": PLAN_ID,
            "description": "DR lab: the orders app answers GET /status.",
            "probes": [probe("status", "http", {"url": f"{app_url(state)}/status", "expected_status": 200})],
        },
    ]


def after_up(state: dict[str, Any]) -> list[str]:
    if _monitors is None:
        return ["no monitoring installed: the lab's monitors were not created"]
    return _monitors(monitor_specs(state))
