"""The tcp action against a real listener on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from failover.engine.actions import StepContext, run_action
from runbooks.actions import get_action


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(params: dict, lines: list[str] | None = None) -> object:
    errors = list(get_action("tcp").validator.iter_errors(params))
    assert errors == [], [e.message for e in errors]
    ctx = StepContext(execution_id=1, step_key="tcp", timeout=5, log=(lines if lines is not None else []).append)
    return run_action("tcp", params, ctx)


def test_reachable_port(listening_port: int) -> None:
    lines: list[str] = []
    result = _run({"host": "127.0.0.1", "port": listening_port}, lines)
    assert result.ok, result.error
    assert {k: result.output[k] for k in ("host", "port", "reachable")} == {
        "host": "127.0.0.1",
        "port": listening_port,
        "reachable": True,
    }
    assert lines[0].startswith(f"tcp 127.0.0.1:{listening_port}: reachable in ")
    # A templated port arrives as a string; expect: reachable is the default.
    assert _run({"host": "127.0.0.1", "port": "{{ params.port }}"}).error.startswith("tcp 127.0.0.1: port")
    ctx = StepContext(execution_id=1, step_key="tcp")
    assert run_action("tcp", {"host": "127.0.0.1", "port": str(listening_port), "expect": "reachable"}, ctx).ok


def test_closed_port(closed_port: int) -> None:
    result = _run({"host": "127.0.0.1", "port": closed_port, "connect_timeout": 2})
    assert not result.ok
    assert result.error.startswith(f"tcp 127.0.0.1:{closed_port}: not reachable (ConnectionRefusedError")
    assert result.output["reachable"] is False
    assert _run({"host": "127.0.0.1", "port": closed_port, "expect": "unreachable"}).ok


def test_expect_unreachable_fails_when_the_port_answers(listening_port: int) -> None:
    result = _run({"host": "127.0.0.1", "port": listening_port, "expect": "unreachable"})
    assert not result.ok
    assert result.error == f"tcp 127.0.0.1:{listening_port}: reachable, but expected unreachable"


def test_cancelled_step_does_not_connect(listening_port: int) -> None:
    ctx = StepContext(execution_id=1, step_key="tcp", timeout=5)
    ctx.cancelled.set()
    result = run_action("tcp", {"host": "127.0.0.1", "port": listening_port}, ctx)
    assert (result.ok, result.error) == (False, f"tcp 127.0.0.1:{listening_port}: cancelled")


def test_a_host_outside_a_secrets_allow_list_is_refused(listening_port: int) -> None:
    ctx = StepContext(execution_id=1, step_key="tcp", timeout=5)
    ctx.allowed_hosts["db_password"] = ["db.example.internal:5432"]
    result = run_action("tcp", {"host": "127.0.0.1", "port": listening_port}, ctx)
    assert (result.ok, result.output) == (False, {})
    assert result.error == (
        f"tcp 127.0.0.1:{listening_port}: secret 'db_password' may not be sent to 127.0.0.1:{listening_port} "
        "(allowed hosts: db.example.internal:5432)"
    )
    ctx.allowed_hosts["db_password"].append("127.0.0.1")
    assert run_action("tcp", {"host": "127.0.0.1", "port": listening_port}, ctx).ok
