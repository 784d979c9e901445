"""A small process supervisor for `make run`: start children, restart a crashed one with backoff while
the others keep serving, and leave no process behind when stopping.

Each child runs in its own session (process group), so a child and everything it started (daphne;
django-q2's sentinel, monitor, pusher and workers; gunicorn's workers) can be signalled as one group.
When a child's main process dies (a crash, a kill -9), the rest of its group is killed at once (a
qcluster parent killed with -9 otherwise leaves its sentinel and workers running as orphans) and the
child is started again after a backoff: 1 s, then doubling up to 30 s while it keeps failing within a
minute of its start. A child that exits with an error within STARTUP_SECONDS of its very first
start (not killed by a signal) did not start at all (a port in use, a missing model file):
restarting would not help, so an essential child stops everything with its exit code, and
another is left down with a line saying so.
Stopping (Ctrl-C, SIGTERM) sends SIGTERM to every group, waits, then SIGKILLs what is left.

Used by scripts/serve.py (web server and workers) and scripts/ml_serve.py (the ML service).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0  # a child that ran this long before dying starts over at the first backoff
STOP_GRACE_SECONDS = 10.0
STARTUP_SECONDS = 5.0


@dataclass
class Child:
    """One supervised command. `restart=False`: its end ends the supervisor (a wrapped command).
    `essential`: failing its first start stops everything (else it is left down)."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    restart: bool = True
    essential: bool = True
    starts: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)
    started_at: float = 0.0
    quick_failures: int = 0
    start_at: float = 0.0  # monotonic time of the next (re)start


def kill_group(pid: int, sig: int) -> None:
    """Signal a child's whole process group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def backoff_seconds(quick_failures: int) -> float:
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** max(0, quick_failures - 1))


def run(children: list[Child], *, prefix: str, log: Callable[[str], None] | None = None) -> int:
    """Supervise until SIGINT/SIGTERM or until a child with restart=False ends; returns the exit code."""
    say = log or (lambda line: print(f"[{prefix}] {line}", flush=True))
    stopping = False
    exit_code = 0

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            now = time.monotonic()
            for child in children:
                if child.proc is None:
                    if child.start_at != float("inf") and now >= child.start_at:
                        _start(child, say)
                    continue
                code = child.proc.poll()
                if code is None:
                    continue
                kill_group(child.proc.pid, signal.SIGKILL)  # what it started dies with it: no orphans
                if not child.restart:
                    say(f"{child.name} exited with {code}; stopping the rest")
                    exit_code = code
                    stopping = True
                    break
                uptime = now - child.started_at
                if child.starts == 1 and uptime < STARTUP_SECONDS and code > 0:
                    if child.essential:
                        say(f"{child.name} failed to start (exit {code}); stopping the rest")
                        exit_code, stopping = code or 1, True
                        break
                    say(f"{child.name} failed to start (exit {code}); leaving it down")
                    child.proc, child.start_at = None, float("inf")
                    continue
                child.quick_failures = 1 if uptime >= STABLE_AFTER_SECONDS else child.quick_failures + 1
                delay = backoff_seconds(child.quick_failures)
                pid = child.proc.pid
                say(f"{child.name} (pid {pid}) exited with {code} after {uptime:.1f} s; restarting in {delay:.0f} s")
                child.proc, child.start_at = None, now + delay
            time.sleep(0.2)
    finally:
        _stop_all(children)
    return exit_code


def _start(child: Child, say: Callable[[str], None]) -> None:
    child.proc = subprocess.Popen(child.argv, cwd=ROOT, env=child.env, start_new_session=True)
    child.started_at = time.monotonic()
    child.starts += 1
    say(f"started {child.name} (pid {child.proc.pid})")


def _stop_all(children: list[Child]) -> None:
    running = [child.proc for child in children if child.proc is not None]
    for proc in running:
        kill_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        kill_group(proc.pid, signal.SIGKILL)  # the leader's leftovers too, even when it exited in time
