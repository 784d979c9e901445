"""Run a blocking call (a socket connect, an HTTP request, a Python callable) so the step
still honours `ctx.timeout` and `ctx.cancelled`: the call runs in a daemon thread and the
executor stops waiting for it on timeout or cancel (an `on_stop` hook may abort it, e.g.
close a socket or cancel a query).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from failover.engine.actions import StepContext

DEFAULT_TIMEOUT = 30.0


@dataclass
class Outcome:
    value: Any = None
    exception: BaseException | None = None
    stopped: str = ""  # "" when the call finished; else "cancelled" or "timed out after Ns"
    ended: float = 0.0  # time.monotonic() when the call returned or raised


def _timeout_types() -> tuple[type[BaseException], ...]:
    """The exceptions a client library raises when its own timeout fires: Python's, and Redis's and botocore's
    once they are loaded (a library that is not loaded raised nothing; looking costs no import)."""
    types: list[type[BaseException]] = [TimeoutError]
    if (redis_errors := sys.modules.get("redis.exceptions")) is not None:
        types.append(redis_errors.TimeoutError)
    if (botocore_errors := sys.modules.get("botocore.exceptions")) is not None:
        types += [botocore_errors.ConnectTimeoutError, botocore_errors.ReadTimeoutError]
    return tuple(types)


def _is_timeout(exc: BaseException | None) -> bool:
    """A timeout (one of _timeout_types()), or an error raised because of one (PyMySQL's "Lost connection" raised while
    handling the socket's TimeoutError, urllib's URLError whose reason is it)."""
    timeouts = _timeout_types()
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, timeouts) or isinstance(getattr(exc, "reason", None), TimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def step_timeout(ctx: StepContext, default: float = DEFAULT_TIMEOUT) -> float:
    """The step's timeout in seconds, or `default` when the step has none."""
    return float(ctx.timeout) if ctx.timeout else default


def run_blocking(
    call: Callable[[], Any],
    ctx: StepContext,
    timeout: float,
    *,
    on_stop: Callable[[], None] | None = None,
    poll: float = 0.05,
) -> Outcome:
    """Call `call()` in a thread; wait until it returns, raises, times out or the step is cancelled."""
    outcome = Outcome()
    if ctx.cancelled.is_set():  # cancelled before it started: do not start
        outcome.stopped = "cancelled"
        return outcome
    finished = threading.Event()

    def target() -> None:
        try:
            outcome.value = call()
        except BaseException as exc:  # reported to the executor, which turns it into a failed result
            outcome.exception = exc
        finally:
            outcome.ended = time.monotonic()
            finished.set()

    thread = threading.Thread(target=target, name=f"step-{ctx.step_key}", daemon=True)
    deadline = time.monotonic() + timeout
    thread.start()
    while not finished.wait(max(0.0, min(poll, deadline - time.monotonic()))):
        if ctx.cancelled.is_set():
            outcome.stopped = "cancelled"
        elif time.monotonic() >= deadline:
            outcome.stopped = f"timed out after {timeout:g}s"
        if outcome.stopped:
            if on_stop is not None:
                with contextlib.suppress(Exception):
                    on_stop()
            return outcome
    if _is_timeout(outcome.exception) and outcome.ended >= deadline:
        # The call's own timeout, most often the step's, fired once the step's time was up: on a loaded machine it
        # can end the call before this loop looks at the clock. The step timed out either way; say so alike.
        outcome.stopped = f"timed out after {timeout:g}s"
    return outcome
