"""Helpers for the engine's tests: executions built from plain step dicts (no runbook import),
and the environment that lets a worker subprocess use the test database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection
from django.utils import timezone

from failover.models import ExecutionEvent, FailoverExecution, StepRun

ROOT = Path(settings.BASE_DIR)


def make_execution(steps: list[dict[str, Any]], **fields: Any) -> FailoverExecution:
    """A PENDING runbook execution with one StepRun per dict ({"key", "action", "with", "needs", ...})."""
    values = {"execution_type": "runbook", "status": "pending", "triggered_at": timezone.now(), **fields}
    execution = FailoverExecution.objects.create(**values)
    for spec in steps:
        spec = dict(spec)
        key = spec.pop("key")
        StepRun.objects.create(
            execution=execution,
            step_key=key,
            title=spec.pop("title", key),
            action=spec.pop("action", "noop"),
            params=spec.pop("with", {}),
            **spec,
        )
    return execution


def shell(*argv: str, **extra: Any) -> dict[str, Any]:
    return {"action": "shell", "with": {"argv": list(argv)}, **extra}


def steps_of(execution: FailoverExecution) -> dict[str, StepRun]:
    return {s.step_key: s for s in StepRun.objects.filter(execution=execution)}


def messages(execution: FailoverExecution, kind: str | None = None) -> list[str]:
    events = ExecutionEvent.objects.filter(execution=execution).order_by("seq")
    if kind:
        events = events.filter(kind=kind)
    return list(events.values_list("message", flat=True))


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a worker process that uses this test run's database."""
    env = {**os.environ, "DRPLAN_LOG_LEVEL": "WARNING", **extra}
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


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A process in its own group (so stopping it stops its children), output to `log`."""
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, *argv], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 5.0) -> None:
    """Stop a process started by `start` and its whole group; SIGKILL after the grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def in_thread(function: Callable[..., Any], *args: Any) -> threading.Thread:
    """Run `function` in a started daemon thread that closes its own database connection at the end
    (an open one would keep PostgreSQL from dropping the test database)."""

    def run() -> None:
        try:
            function(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def what_a_run_left(execution: FailoverExecution) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    """What a run left: step rows, events (without times and ids), the execution's event sequence."""
    steps = list(
        StepRun.objects.filter(execution=execution)
        .order_by("step_key")
        .values_list("step_key", "status", "attempts", "error", "output", "rendered", "worker")
    )
    keys = {s.pk: s.step_key for s in StepRun.objects.filter(execution=execution)}
    events = []
    for event in ExecutionEvent.objects.filter(execution=execution).order_by("seq"):
        data = {k: v for k, v in event.data.items() if k not in ("started_at", "finished_at", "duration_seconds")}
        if event.kind == "summary":
            data = {"status": data["status"], "steps": data["steps"]}
        message = event.message if event.kind != "status" or "started by" not in event.message else "started"
        events.append((event.seq, event.kind, keys.get(event.step_run_id), message, data))
    seq = FailoverExecution.objects.values_list("event_seq", flat=True).get(pk=execution.pk)
    return steps, events, seq
