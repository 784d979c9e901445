"""Action executors: what a step of each action type does when it runs.

The parameter schema of each action lives in runbooks/actions.py (checked at import);
an executor here receives the step's parameters after templating and returns an
ActionResult. Executors run in worker threads of the coordinator: they must not touch
the database (report through `ctx.log` and the result) and must honour `ctx.timeout`
and `ctx.cancelled`.

Adding an action: see docs/actions.md.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable
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


Executor = Callable[[dict[str, Any], StepContext], ActionResult]

_EXECUTORS: dict[str, Executor] = {}


def executor(name: str) -> Callable[[Executor], Executor]:
    """Register the executor of an action type (the name must exist in runbooks.actions)."""

    def register(function: Executor) -> Executor:
        _EXECUTORS[name] = function
        return function

    return register


def get_executor(name: str) -> Executor | None:
    _load_builtin_executors()
    return _EXECUTORS.get(name)


def run_action(action: str, params: dict[str, Any], ctx: StepContext) -> ActionResult:
    """Run one attempt of a step. Never raises: an executor's exception is a failed result."""
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
