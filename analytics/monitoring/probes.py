"""What a probe is and how one runs: a step of a first-class status action, through the engine's runner.

Which actions: only those that read state (PROBE_ACTIONS): a probe runs every minute, unattended, and must
never change what it watches (`http` only with GET, HEAD or OPTIONS). Threshold checks (postgres.check_lag)
are not probes: they fail above the threshold, which would record a breach as "unknown"; the threshold
lives in the RTO target instead. Its parameters are the step's `with`,
checked against the action's own schema (runbooks.actions), literal values only (no `{{ }}` templates: there
is no execution to render them against).

How it runs: `failover.engine.actions.run_action`, the call the coordinator makes for every step, with a
StepContext whose timeout is the probe's and whose `ctx.secret` reads the secret store as the coordinator's
does (values remembered for the Redactor, allow-lists enforced by the actions). The action runs in a thread;
if it has not returned a few seconds after its timeout it is cancelled and the sample is "unknown".

What a result means (`measure`):
- the action succeeded: status ok, up, and what its output says of the replication:
  postgres standby: lag_bytes, and RPO = lag_seconds, or — with no WAL receiver (replication stopped), when
  the standby cannot know what it misses — the age of its last replayed transaction (an upper bound);
  postgres primary: the largest lag among its standbys (pg_stat_replication), unknown without a standby;
  redis replica: link down → seconds since the link went down, up → seconds since it last heard from its
  primary; redis primary: the largest lag among its replicas; http/tcp: up and latency only.
- the action failed: status unknown, every measurement null; up is False (the service did not answer as
  required), or null when it timed out (cannot be told).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import close_old_connections, connection
from django.utils import timezone

from core.exceptions import InvalidInput
from core.secrets import Redactor, read_secret
from failover.engine.actions import ActionResult, StepContext, run_action
from runbooks.actions import TEMPLATE_PATTERN, action_names, get_action

PROBE_ACTIONS = (
    "postgres.replication_status",
    "redis.replication_status",
    "http",
    "tcp",
)
READ_ONLY_HTTP_METHODS = ("GET", "HEAD", "OPTIONS")
GRACE_SECONDS = 5.0  # beyond the probe's timeout before the runner gives up on the action's thread
_TIMEOUT = re.compile(r"timed out|no answer within|timeout", re.IGNORECASE)
_TEMPLATE = re.compile(TEMPLATE_PATTERN)


def validate_probe(action: Any, params: Any, field: str = "probes") -> None:
    """InvalidInput naming `<field>.action` or `<field>.params[.path]` when the probe cannot run."""
    if not isinstance(action, str) or get_action(action) is None:
        known = ", ".join(action_names())
        raise InvalidInput(f"unknown action {action!r} (known: {known})", field=f"{field}.action")
    if action not in PROBE_ACTIONS:
        raise InvalidInput(
            f"action {action!r} cannot be a probe: probes run unattended and may only read state "
            f"(use one of {', '.join(PROBE_ACTIONS)})",
            field=f"{field}.action",
        )
    if not isinstance(params, dict):
        raise InvalidInput("must be an object (the step's `with`)", field=f"{field}.params")
    errors = sorted(get_action(action).validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        path = ".".join(str(p) for p in first.absolute_path)
        where = f"{field}.params" + (f".{path}" if path else "")
        raise InvalidInput(f"not valid for action {action!r}: {first.message}", field=where)
    for path, value in _strings(params, ""):
        if _TEMPLATE.match(value):
            raise InvalidInput(
                "probe parameters are literal values; templates are not rendered", field=f"{field}.params{path}"
            )
    if action == "http" and str(params.get("method", "GET")).upper() not in READ_ONLY_HTTP_METHODS:
        raise InvalidInput(
            f"a probe only reads: method must be one of {', '.join(READ_ONLY_HTTP_METHODS)}",
            field=f"{field}.params.method",
        )


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _strings(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in _strings(item, f"{path}.{i}")]
    return []


@dataclass(frozen=True)
class Measurement:
    """What one probe run measured (None: not measured)."""

    at: datetime
    ok: bool
    up: bool | None
    rpo_seconds: float | None = None
    lag_bytes: int | None = None
    latency_ms: float | None = None
    error: str = ""


def _context(step_key: str, timeout: float, redactor: Redactor) -> StepContext:
    ctx = StepContext(execution_id=0, step_key=step_key, timeout=timeout)

    def secret(name: str) -> str:
        try:
            value, hosts = read_secret(name)
        finally:
            connection.close()  # this thread's own connection
        redactor.add(value)
        ctx.secret_values.add(value)
        if hosts:
            ctx.allowed_hosts[name] = hosts
        return value

    ctx.secret = secret
    return ctx


def run(action: str, params: dict[str, Any], *, timeout: float, step_key: str = "probe") -> Measurement:
    """Run one probe now and say what it measured. Never raises."""
    redactor = Redactor()
    ctx = _context(step_key, float(timeout), redactor)
    box: dict[str, ActionResult] = {}

    def body() -> None:
        close_old_connections()
        box["result"] = run_action(action, params, ctx)

    started = time.monotonic()
    thread = threading.Thread(target=body, name=f"probe-{step_key}", daemon=True)
    thread.start()
    thread.join(float(timeout) + GRACE_SECONDS)
    latency_ms = round((time.monotonic() - started) * 1000, 1)
    at = timezone.now()
    if "result" not in box:
        ctx.cancelled.set()
        return Measurement(at, False, None, error=f"{action}: no answer within {timeout:g}s (timed out)")
    result = box["result"]
    if not result.ok:
        error = redactor.redact(result.error or "failed")[:500]
        return Measurement(at, False, None if _TIMEOUT.search(error) else False, error=error)
    rpo, lag = replication_of(action, result.output or {})
    return Measurement(at, True, True, rpo, lag, latency_ms)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def replication_of(action: str, output: dict[str, Any]) -> tuple[float | None, int | None]:
    """(rpo_seconds, lag_bytes) from a status action's output (the rules in the module docstring)."""
    if action.startswith("postgres."):
        if output.get("role") == "standby":
            lag = output.get("lag_bytes")
            if output.get("receiver") is None:  # not receiving: the age of what it has is the bound
                replayed = output.get("last_replayed_at")
                if replayed:
                    age = (timezone.now() - datetime.fromisoformat(replayed)).total_seconds()
                    return round(max(0.0, age), 3), lag
                return None, lag
            return _number(output.get("lag_seconds")), lag
        rows = output.get("standbys") or []
        if not rows:
            return None, None
        seconds = [s["lag_seconds"] for s in rows if _number(s.get("lag_seconds")) is not None]
        lags = [s["lag_bytes"] for s in rows if _number(s.get("lag_bytes")) is not None]
        return (max(seconds) if seconds else None), (int(max(lags)) if lags else None)
    if action == "redis.replication_status":
        if output.get("role") == "replica":
            link = output.get("primary") or {}
            if link.get("link") != "up":
                down = _number(link.get("link_down_since_seconds"))
                return down, None
            last = _number(link.get("last_io_seconds_ago"))
            return (max(0.0, last) if last is not None and last >= 0 else None), None
        replicas = output.get("replicas") or []
        if not replicas:
            return None, None
        return float(max(r.get("lag_seconds", 0) for r in replicas)), int(max(r.get("lag_bytes", 0) for r in replicas))
    return None, None
