"""Run a blocking call (a socket connect, an HTTP request, a Python callable) so the step
still honours `ctx.timeout` and `ctx.cancelled`: the call runs in a daemon thread and the
executor stops waiting for it on timeout or cancel (an `on_stop` hook may abort it, e.g.
close a socket or cancel a query).
"""

from __future__ import annotations

import contextlib
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


def _is_timeout(exc: BaseException | None) -> bool:
    """A timeout, also as urllib wraps one (URLError whose reason is the socket's TimeoutError)."""
    return isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)


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
