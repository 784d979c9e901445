"""run_blocking: a blocking call (an HTTP request, a connect, a query) within the step's timeout.

The call often carries the step's timeout itself (a socket timeout), so two clocks run out together: the loop that
watches the call, and the call's own. Which one the step reports must not depend on which thread the machine ran
first."""

from __future__ import annotations

import threading
import urllib.error

import botocore.exceptions
import pymysql
import pytest
import redis.exceptions

from failover.engine.actions import StepContext, blocking
from failover.engine.actions.blocking import run_blocking


class _Clock:
    """`time` for blocking.py in which the call's thread runs `late` seconds ahead of the watching loop's: the call
    ends past the deadline while the loop has not seen the deadline come (a loaded machine's scheduling)."""

    def __init__(self, late: float) -> None:
        self.late = late
        self.watcher = threading.get_ident()

    def monotonic(self) -> float:
        return 1000.0 + (0.0 if threading.get_ident() == self.watcher else self.late)


def _ctx() -> StepContext:
    return StepContext(execution_id=1, step_key="call", timeout=None, log=lambda line: None)


def _raising(error: BaseException):
    def call() -> None:
        raise error

    return call


def _raised_while_handling(timeout: BaseException, error: BaseException) -> BaseException:
    """`error` as a library raises it from its handler of `timeout` (PyMySQL's "Lost connection", say)."""
    try:
        try:
            raise timeout
        except BaseException:
            raise error  # noqa: B904  (the library's way: no "from", the timeout is its context)
    except BaseException as raised:
        return raised


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError("timed out"),
        urllib.error.URLError(TimeoutError("timed out")),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        botocore.exceptions.ReadTimeoutError(endpoint_url="http://127.0.0.1:1/"),
        _raised_while_handling(TimeoutError("timed out"), pymysql.err.OperationalError(2013, "Lost connection")),
    ],
    ids=["socket-timeout", "urllib-wrapped", "redis", "botocore", "pymysql-lost-connection"],
)
def test_a_calls_own_timeout_past_the_deadline_is_the_steps_timeout(monkeypatch, error):
    monkeypatch.setattr(blocking, "time", _Clock(late=0.31))
    outcome = run_blocking(_raising(error), _ctx(), 0.3)
    assert outcome.stopped == "timed out after 0.3s"


def test_errors_before_the_deadline_and_other_errors_are_the_calls_own(monkeypatch):
    monkeypatch.setattr(blocking, "time", _Clock(late=0.1))
    early = run_blocking(_raising(TimeoutError("connect timed out")), _ctx(), 0.3)
    assert (early.stopped, str(early.exception)) == ("", "connect timed out")

    monkeypatch.setattr(blocking, "time", _Clock(late=0.5))
    refused = run_blocking(_raising(ConnectionRefusedError("refused")), _ctx(), 0.3)
    assert (refused.stopped, type(refused.exception)) == ("", ConnectionRefusedError)

    lost = run_blocking(_raising(_raised_while_handling(ConnectionResetError("reset"), OSError("lost"))), _ctx(), 0.3)
    assert (lost.stopped, str(lost.exception)) == ("", "lost")

    late_answer = run_blocking(lambda: "answer", _ctx(), 0.3)
    assert (late_answer.stopped, late_answer.value) == ("", "answer")
