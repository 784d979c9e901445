"""Monitoring of the lab: the routed PostgreSQL primary is probed every second, and the Lab
plan's failover mode decides what a lasting failure triggers (failover.monitoring).

`python manage.py lab up` starts this as a process of the lab (`lab monitor` runs it in the
foreground); `lab down` stops it with the rest.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from failover.monitoring import PlanMonitor, Probe
from lab import cluster, probes
from lab.state import lab_dir, load_state

PLAN_ID = "lab"


def primary_probe(root: Path | None = None) -> Probe:
    """Healthy when the PostgreSQL node the route points at answers as a primary."""

    def probe() -> tuple[bool, str]:
        state = load_state(root or lab_dir())
        if state is None:
            return True, "lab not up"  # nothing to watch
        name, node = cluster.route_node(state, "postgres", root)
        seen = probes.postgres_node(node["port"])
        if seen.get("reachable") and seen.get("role") == "primary":
            return True, f"{name} primary on port {node['port']}"
        why = seen.get("error") or f"role {seen.get('role')}"
        return False, f"PostgreSQL primary {name} (127.0.0.1:{node['port']}) not serving: {why}"

    return probe


def run(plan_id: str = PLAN_ID, root: Path | None = None, interval: float = 1.0) -> None:
    """Watch until SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    PlanMonitor(plan_id, primary_probe(root), interval=interval).run(stop)


def process_env() -> dict[str, str]:
    """This process's environment, pointing the monitor at the database we are using now
    (under tests that is the test database, not the one in the settings)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        env["DRPLAN_SQLITE_PATH"] = str(db["NAME"])
        env.pop("DATABASE_URL", None)
    else:
        host = quote(str(db.get("HOST") or ""), safe="")
        port = f":{db['PORT']}" if db.get("PORT") else ""
        auth = quote(str(db.get("USER") or ""), safe="")
        if db.get("PASSWORD"):
            auth += ":" + quote(str(db["PASSWORD"]), safe="")
        env["DATABASE_URL"] = f"postgres://{auth}@{host}{port}/{db['NAME']}"
    return env


def start(root: Path | None = None, plan_id: str = PLAN_ID) -> int:
    """Start `manage.py lab monitor` as a process of the lab; its pid goes into the lab state."""
    from core.localservers import procs
    from lab.state import update_state

    root = root or lab_dir()
    argv = [sys.executable, "manage.py", "lab", "monitor", "--plan", plan_id]
    env = {**process_env(), "DRPLAN_LAB_DIR": str(root)}
    pid = procs.spawn(argv, None, log=root / "monitor.log", cwd=Path(settings.BASE_DIR), env=env)

    def record(state: dict[str, Any]) -> None:
        state["monitor"] = {"pid": pid, "plan": plan_id}

    update_state(record, root)
    return pid
