"""What a step that waits on a server (the redis.*, mariadb.* and haproxy actions' StepSession.wait) reports when
its deadline or a cancel comes: what it waited for and what it last saw, whichever poll was under way; a server
that never answered is named by its call."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from failover.engine.actions import StepContext
from failover.engine.actions.sessions import ActionStopped, StepSession


class _Server:
    label = "fake 127.0.0.1:6379"

    def close(self) -> None:
        pass

    def describe(self, exc: BaseException) -> str:
        return str(exc)


SERVER = _Server()


def _session(timeout: float) -> StepSession:
    return StepSession(StepContext(execution_id=1, step_key="s", timeout=timeout))


def _answers_then_hangs(session: StepSession) -> Any:
    polls: list[int] = []

    def check() -> None:
        polls.append(1)
        if len(polls) == 1:
            return session.call(SERVER, "PROBE", lambda: None)  # answers: not yet
        return session.call(SERVER, "PROBE", lambda: time.sleep(3))  # under way when the wait ends

    return check


def test_a_poll_cut_short_by_the_deadline_reports_what_the_step_waited_for() -> None:
    session = _session(0.3)
    with pytest.raises(ActionStopped) as stopped:
        session.wait(SERVER, "the roles to swap", _answers_then_hangs(session), lambda: "role primary")
    assert (
        str(stopped.value) == "fake 127.0.0.1:6379: timed out after 0.3s waiting for the roles to swap (role primary)"
    )


def test_a_poll_cut_short_by_a_cancel_reports_what_the_step_waited_for() -> None:
    session = _session(10)
    threading.Timer(0.3, session.ctx.cancelled.set).start()
    with pytest.raises(ActionStopped) as stopped:
        session.wait(SERVER, "the roles to swap", _answers_then_hangs(session), lambda: "role primary")
    assert str(stopped.value) == "fake 127.0.0.1:6379: cancelled while waiting for the roles to swap (role primary)"


def test_a_server_that_never_answers_the_wait_is_named_by_its_call() -> None:
    session = _session(0.3)

    def check() -> None:
        return session.call(SERVER, "PROBE", lambda: time.sleep(3))

    with pytest.raises(ActionStopped) as stopped:
        session.wait(SERVER, "the roles to swap", check, lambda: "nothing seen")
    assert str(stopped.value) == "fake 127.0.0.1:6379: PROBE: timed out after 0.3s"
