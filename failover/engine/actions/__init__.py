"""Action executors: what a step of each action type does when it runs.

The parameter schema of each action lives in runbooks/actions.py (checked at import);
an executor here receives the step's parameters after templating and returns an
ActionResult. Executors run in worker threads of the coordinator: they must not touch
the database (report through `ctx.log` and the result) and must honour `ctx.timeout`
and `ctx.cancelled`. An action may also have a starter (`starter`): a quick first part the
coordinator runs itself as soon as the step's start is committed (a shell step's process starts there).

Adding an action: see docs/actions.md.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from core.secrets import host_allowed


class WakingEvent(threading.Event):
    """A threading.Event that select() can wait on: `fileno()` turns readable when it is set (and stays so). A step
    waiting in select() on its process (shell.run_process) is woken by a cancel at once, instead of waking every
    WATCH_INTERVAL to look at the flag: 20 waiting steps made 400 wake-ups a second, each taking the GIL from the
    coordinator. Set only, never cleared. The pipe is closed when the event is collected: a pool thread still
    waiting on it holds it."""

    def __init__(self) -> None:
        super().__init__()
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        weakref.finalize(self, _close_pipe, self._read, self._write)

    def fileno(self) -> int:
        return self._read

    def set(self) -> None:
        super().set()  # the flag first: whoever the byte wakes sees is_set()
        with contextlib.suppress(BlockingIOError):  # (set many times: the pipe is full, readable all the same)
            os.write(self._write, b"!")

    def clear(self) -> None:
        raise TypeError("a WakingEvent is set once and never cleared")


def _close_pipe(read: int, write: int) -> None:
    os.close(read)
    os.close(write)


@dataclass
class StepContext:
    execution_id: int
    step_key: str
    timeout: float | None = None
    log: Callable[[str], None] = lambda line: None
    cancelled: threading.Event = field(default_factory=threading.Event)
    secret: Callable[[str], str] | None = None  # name -> value, for actions that take a secret by name
    # The secrets this step used (its templated parameters, and what it reads with ctx.secret), filled
    # in by the coordinator: their values (the http action does not carry a header holding one to
    # another host; never log them) and the allow-lists of those that have one (see refuse_host).
    secret_values: set[str] = field(default_factory=set)
    allowed_hosts: dict[str, list[str]] = field(default_factory=dict)
    # What the action's starter began on the coordinator's thread (start_action: a shell step's process), for the
    # executor to take over; None when the action has no starter or it did not start anything.
    started: Started | None = None

    def refuse_host(self, host: str, port: int | None) -> str:
        """Why this step may not send a request to host:port ("" if it may): each secret it used that
        has an allow-list must allow the host. Names the secret, never its value. An action that
        chooses the host from its parameters calls this before it connects."""
        for name, hosts in sorted(self.allowed_hosts.items()):
            if not host_allowed(hosts, host, port):
                where = f"{host}:{port}" if port is not None else host
                return f"secret '{name}' may not be sent to {where} (allowed hosts: {', '.join(hosts)})"
        return ""


@dataclass
class ActionResult:
    ok: bool
    output: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    # Optional measurements a step can report (RPO probes, data loss).
    measurements: dict[str, float] = field(default_factory=dict)


class Started:
    """Something a starter began for its executor to take over (a shell step's process)."""

    def abandon(self) -> None:
        """End it: its executor will never run (the coordinator stopped before a pool thread took the step)."""
        raise NotImplementedError


@dataclass
class StartFailed(Started):
    """A starter that could not start: the step fails with `error` and its executor is not called."""

    error: str

    def abandon(self) -> None:
        return None


Executor = Callable[[dict[str, Any], StepContext], ActionResult]
Starter = Callable[[dict[str, Any], StepContext], Started | None]

_EXECUTORS: dict[str, Executor] = {}
_STARTERS: dict[str, Starter] = {}


def executor(name: str) -> Callable[[Executor], Executor]:
    """Register the executor of an action type (the name must exist in runbooks.actions)."""

    def register(function: Executor) -> Executor:
        _EXECUTORS[name] = function
        return function

    return register


def starter(name: str) -> Callable[[Starter], Starter]:
    """Register the starter of an action type: the first, quick part of its executor, which the coordinator runs
    on its own thread right after the turn that recorded the step's start committed (start_action). A shell step's
    process starts there, instead of after a pool thread has picked the step up: on a busy machine that pick-up
    took ~1 ms of every hand-over from one step to the next (bench/RESULTS.md, "Engine", 2026-12-04). A starter
    must not block; it returns what it began (or StartFailed), or None to leave everything to the executor."""

    def register(function: Starter) -> Starter:
        _STARTERS[name] = function
        return function

    return register


def get_executor(name: str) -> Executor | None:
    _load_builtin_executors()
    return _EXECUTORS.get(name)


def start_action(action: str, params: dict[str, Any], ctx: StepContext) -> None:
    """The action's starter, if it has one, its result in `ctx.started`. Never raises: a starter's exception is
    a StartFailed (the step fails with it)."""
    _load_builtin_executors()
    function = _STARTERS.get(action)
    if function is None:
        return
    try:
        ctx.started = function(params, ctx)
    except Exception as exc:  # a starter bug must fail the step, not the coordinator
        ctx.started = StartFailed(f"{type(exc).__name__}: {exc}")


def abandon_unclaimed(ctx: StepContext, task: Future) -> None:
    """A done-callback on a step's pool task: if the task was cancelled before it ran (the coordinator stopped with
    the step still queued), what the starter began is ended, since no executor will watch it. The step stays
    RUNNING in the database, as every step of a stopped coordinator does: the next one re-runs it if it is
    idempotent, else marks it lost."""
    if task.cancelled() and ctx.started is not None:
        ctx.started.abandon()


def run_action(action: str, params: dict[str, Any], ctx: StepContext) -> ActionResult:
    """Run one attempt of a step (its starter's part already done if start_action ran). Never raises: an
    executor's exception is a failed result."""
    if isinstance(ctx.started, StartFailed):
        return ActionResult(False, error=ctx.started.error)
    function = get_executor(action)
    if function is None:
        return ActionResult(False, error=f"no executor for action {action!r}")
    try:
        return function(params, ctx)
    except Exception as exc:  # an executor bug must fail the step, not the coordinator
        return ActionResult(False, error=f"{type(exc).__name__}: {exc}")


_loaded = False


def _load_builtin_executors() -> None:
    global _loaded
    if not _loaded:
        from failover.engine.actions import builtin  # noqa: F401  (registers on import)

        _loaded = True
