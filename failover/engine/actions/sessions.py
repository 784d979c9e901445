"""A step's session with the servers it talks to (the redis.* and mariadb.* actions).

What those actions share: the step's deadline (its timeout, 30 s when it has none), reading a server's secret
with an error that names the parameter and the secret but never the value, the secret's allowed hosts, one
blocking call at a time run so that the deadline and a cancel stop it (`blocking.run_blocking`), polling until
a condition holds, closing everything at the end, and turning a failure into the step's failed result. Each
action module brings its own server class (a `Target`: its label, `close()`, `describe(exc)` without secrets).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from failover.engine.actions import ActionResult, StepContext
from failover.engine.actions.blocking import run_blocking, step_timeout


class ActionFailed(Exception):
    """The step fails with this message (a refused secret, a failed call)."""


class ActionStopped(ActionFailed):
    """The step's timeout passed or it was cancelled: nothing more may run."""


class Target(Protocol):
    label: str  # e.g. "redis 10.0.0.5:6379 (url_secret 'cache-dr')": what errors and logs name

    def close(self) -> None: ...

    def describe(self, exc: BaseException) -> str: ...


class StepSession:
    """The servers one step opened, and its deadline."""

    poll_interval = 0.05

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        self.timeout = step_timeout(ctx)
        self.deadline = time.monotonic() + self.timeout
        self.targets: list[Target] = []

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def read_secret(self, param: str, name: str) -> str:
        """The value of the secret `name` given as parameter `param`, stripped."""
        if self.ctx.secret is None:
            raise ActionFailed(f"{param} '{name}': no secret store available")
        try:
            return self.ctx.secret(name).strip()
        except Exception as exc:  # e.g. InvalidInput "secret 'X' is not defined"
            raise ActionFailed(f"{param} '{name}': {getattr(exc, 'message', None) or type(exc).__name__}") from None

    def admit(self, target: Any, host: str, port: int) -> Any:
        """Check the host against the secret's allowed hosts, then keep the target (closed at the end)."""
        refused = self.ctx.refuse_host(host, port)
        if refused:
            raise ActionFailed(f"{target.label}: {refused}")
        self.targets.append(target)
        return target

    def call(
        self,
        target: Target,
        what: str,
        function: Callable[[], Any],
        *,
        on_stop: Callable[[], None] | None = None,
        after_failure: Callable[[], None] | None = None,
    ) -> Any:
        """`function()` within the deadline; ActionStopped on the deadline or a cancel (`on_stop` may abort the
        call under way), ActionFailed naming the target and `what` if it raises (`after_failure` then runs)."""
        remaining = self.remaining()
        if remaining <= 0:
            raise ActionStopped(f"{target.label}: {what}: timed out after {self.timeout:g}s")
        outcome = run_blocking(function, self.ctx, remaining, on_stop=on_stop)
        if outcome.stopped:
            if after_failure is not None:
                after_failure()
            stopped = "cancelled" if outcome.stopped == "cancelled" else f"timed out after {self.timeout:g}s"
            raise ActionStopped(f"{target.label}: {what}: {stopped}")
        if outcome.exception is not None:
            if after_failure is not None:
                after_failure()
            raise ActionFailed(f"{target.label}: {what}: {target.describe(outcome.exception)}")
        return outcome.value

    def wait(self, target: Target, what: str, check: Callable[[], Any], last: Callable[[], str]) -> Any:
        """Poll `check()` until it returns something truthy; ActionStopped naming `what` and `last()` at the
        deadline or on a cancel. A check whose call the deadline or a cancel cuts short, once an earlier check
        answered, is reported the same way: what the step waited for is the news, not which poll was under way (a
        poll that starts with little time left is cut short whenever the machine is slow). A wait whose first
        check never answers keeps its call's own message: that server did not answer."""
        answered = False
        while True:
            try:
                found = check()
            except ActionStopped:
                if not answered:
                    raise
                raise self._stopped_waiting(target, what, last) from None
            if found:
                return found
            answered = True
            if self.remaining() <= self.poll_interval or self.ctx.cancelled.wait(self.poll_interval):
                raise self._stopped_waiting(target, what, last)

    def _stopped_waiting(self, target: Target, what: str, last: Callable[[], str]) -> ActionStopped:
        if self.ctx.cancelled.is_set():
            return ActionStopped(f"{target.label}: cancelled while waiting for {what} ({last()})")
        return ActionStopped(f"{target.label}: timed out after {self.timeout:g}s waiting for {what} ({last()})")

    def close(self) -> None:
        for target in self.targets:
            target.close()


S = TypeVar("S", bound=StepSession)


def run_session(session: S, body: Callable[[S], ActionResult]) -> ActionResult:
    """Run `body(session)`; a failure is the step's failed result; every target is closed at the end."""
    try:
        return body(session)
    except ActionFailed as failure:
        return ActionResult(False, error=str(failure))
    finally:
        session.close()
