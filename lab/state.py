"""The lab's files under var/lab/ (or $DRPLAN_LAB_DIR): state.json, route.json, acked.log.

state.json  what `lab up` started: mode, the lab user, every node with its port, data dir and
            first pid, the app's pid and admin API port, the DR-test clone's port, the sshd
            (--ssh), the monitor.
route.json  where the orders application writes: {"postgres": {node, host, port, dbname,
            user, epoch}, "redis": {node, host, port, epoch}}. The app's admin API rewrites it
            atomically when a runbook repoints it (the DNS / load-balancer stand-in); `epoch`
            grows at every switch.
acked.log   one line per order the application saw committed: "<id> <epoch> <unix time>".
app-token   the app's admin API token (0600), also the DRPlan secret orders_app_token.

Writers of state.json and route.json take an exclusive flock on .lock (the lab command, the
monitor and the app run in different processes).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
DBNAME = "lab"
DBUSER = "postgres"


def lab_dir() -> Path:
    """$DRPLAN_LAB_DIR, else settings.VAR_DIR / "lab" (else ./var/lab without Django)."""
    if os.environ.get("DRPLAN_LAB_DIR"):
        return Path(os.environ["DRPLAN_LAB_DIR"])
    try:
        from django.conf import settings

        return Path(settings.VAR_DIR) / "lab"
    except Exception:
        return Path(__file__).resolve().parents[1] / "var" / "lab"


def state_path(root: Path | None = None) -> Path:
    return (root or lab_dir()) / "state.json"


def route_path(root: Path | None = None) -> Path:
    return (root or lab_dir()) / "route.json"


def acked_path(root: Path | None = None) -> Path:
    return (root or lab_dir()) / "acked.log"


def app_status_path(root: Path | None = None) -> Path:
    return (root or lab_dir()) / "app-status.json"


def write_json_atomic(path: Path, data: Any) -> None:
    """Readers see the old or the new content, never half (rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(handle.name, 0o644)
    os.replace(handle.name, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def load_state(root: Path | None = None) -> dict[str, Any] | None:
    return read_json(state_path(root))


_LOCKS: dict[str, threading.RLock] = {}
_DEPTH: dict[str, int] = {}
_GUARD = threading.Lock()


@contextlib.contextmanager
def locked(root: Path | None = None) -> Iterator[None]:
    """An exclusive lock over the lab's state: an flock between processes, re-entrant in a thread."""
    root = root or lab_dir()
    root.mkdir(parents=True, exist_ok=True)
    key = str(root.resolve())
    with _GUARD:
        rlock = _LOCKS.setdefault(key, threading.RLock())
    with rlock:
        _DEPTH[key] = _DEPTH.get(key, 0) + 1
        try:
            if _DEPTH[key] > 1:
                yield
                return
            with open(root / ".lock", "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            _DEPTH[key] -= 1


def update_state(change: Callable[[dict[str, Any]], Any], root: Path | None = None) -> Any:
    """Apply `change` to state.json under the lock; returns what `change` returned."""
    with locked(root):
        state = load_state(root)
        if state is None:
            raise RuntimeError(f"the lab is not up (no {state_path(root)}); run `python manage.py lab up`")
        result = change(state)
        write_json_atomic(state_path(root), state)
        return result


def require_state(root: Path | None = None) -> dict[str, Any]:
    state = load_state(root)
    if state is None:
        raise RuntimeError(f"the lab is not up (no {state_path(root)}); run `python manage.py lab up`")
    return state


def read_route(root: Path | None = None) -> dict[str, Any]:
    return read_json(route_path(root)) or {}


def switch_route(service: str, target: dict[str, Any], root: Path | None = None) -> dict[str, Any]:
    """Point `service` (postgres/redis) at `target` (node, host, port…); epoch + 1. Returns {previous, current}."""
    with locked(root):
        route = read_route(root)
        previous = route.get(service)
        epoch = int((previous or {}).get("epoch", 0)) + 1
        current = {**target, "epoch": epoch, "switched_at": time.time()}
        route[service] = current
        write_json_atomic(route_path(root), route)
    return {"previous": previous, "current": current}


def read_acked(root: Path | None = None) -> list[tuple[int, int, float]]:
    """(order id, postgres epoch, unix time) of every acknowledged order, in ack order."""
    rows = []
    try:
        text = acked_path(root).read_text()
    except FileNotFoundError:
        return rows
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            with contextlib.suppress(ValueError):
                rows.append((int(parts[0]), int(parts[1]), float(parts[2])))
    return rows


def parse_lsn(lsn: str | None) -> int | None:
    """'16/B374D848' -> byte position."""
    if not lsn:
        return None
    high, _, low = str(lsn).partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"
