"""The haproxy actions against Debian's HAProxy on 127.0.0.1 (its runtime API on a unix socket and on TCP) in
front of two real HTTP backends; a silent TCP listener for the timeout and the cancel."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from failover.engine.actions import run_action
from failover.tests.aws_support import Ctx
from failover.tests.engine_support import wait_for
from failover.tests.haproxy_support import BACKEND, HOST, Client, HAProxy, start_haproxy
from runbooks.actions import get_action

pytestmark = pytest.mark.realsystem


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HAProxy]:
    started = start_haproxy(tmp_path_factory.mktemp("haproxy"))
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def _reset(proxy: HAProxy) -> Iterator[None]:
    yield
    for line in (
        f"set server {BACKEND}/site-a state ready",
        f"set server {BACKEND}/site-b state ready",
        f"set weight {BACKEND}/site-a 100",
        f"set weight {BACKEND}/site-b 0",
    ):
        proxy.command(line)


def valid(action: str, params: dict) -> dict:
    spec = get_action(action)
    assert spec is not None
    assert [e.message for e in spec.validator.iter_errors(params)] == []
    return params


def test_schemas_refuse_bad_parameters() -> None:
    def errors(action: str, params: dict) -> list[str]:
        return [e.message for e in get_action(action).validator.iter_errors(params)]

    base = {"runtime_api": "/run/haproxy.sock", "backend": "app"}
    assert errors("haproxy.set_weight", {**base, "weights": [{"server": "a", "weight": 257}]})
    assert errors("haproxy.set_weight", {**base, "weights": []})
    assert errors("haproxy.set_weight", {**base, "weights": [{"server": "a b", "weight": 1}]})
    assert (
        errors("haproxy.set_weight", {**base, "weights": [{"server": "{{ params.s }}", "weight": "{{ params.w }}"}]})
        == []
    )
    assert errors("haproxy.set_state", {**base, "server": "a", "state": "down"})
    assert errors("haproxy.set_state", {**base, "server": "a;shutdown", "state": "drain"})
    assert errors("haproxy.server_status", {"backend": "app"})  # no runtime API
    both = {**base, "runtime_api_secret": "lb"}
    assert errors("haproxy.server_status", both)  # both
    assert errors("haproxy.server_status", {**base, "expect_weight": 3})  # needs server
    assert errors("haproxy.server_status", {**base, "extra": 1})


def test_server_status_reads_the_backend_and_checks_expectations(proxy: HAProxy) -> None:
    ctx = Ctx({})
    result = run_action(
        "haproxy.server_status", valid("haproxy.server_status", {"runtime_api": proxy.socket, "backend": BACKEND}), ctx
    )
    assert result.ok, result.error
    servers = {s["server"]: s for s in result.output["servers"]}
    assert (servers["site-a"]["status"], servers["site-a"]["weight"]) == ("UP", 100)
    assert (servers["site-b"]["status"], servers["site-b"]["weight"]) == ("UP", 0)
    params = {"runtime_api": proxy.socket, "backend": BACKEND, "server": "site-b", "expect_status": ["UP"]}
    params["expect_weight"] = 100
    result = run_action("haproxy.server_status", valid("haproxy.server_status", params), ctx)
    assert not result.ok
    assert result.error == f"haproxy {proxy.socket}: {BACKEND}/site-b: weight 0 (expected 100)"
    result = run_action("haproxy.server_status", {"runtime_api": proxy.socket, "backend": "nope"}, ctx)
    assert result.error == f"haproxy {proxy.socket}: no backend named 'nope'"
    result = run_action("haproxy.server_status", {"runtime_api": proxy.socket, "backend": BACKEND, "server": "x"}, ctx)
    assert result.error == f"haproxy {proxy.socket}: backend '{BACKEND}' has no server x (servers: site-a, site-b)"


def test_set_weight_shifts_traffic_over_tcp_from_a_secret(proxy: HAProxy) -> None:
    ctx = Ctx({"lb-api": proxy.api_address})
    client = Client(proxy).start()
    try:
        params = {
            "runtime_api_secret": "lb-api",
            "backend": BACKEND,
            "weights": [{"server": "site-a", "weight": 0}, {"server": "site-b", "weight": 100}],
        }
        result = run_action("haproxy.set_weight", valid("haproxy.set_weight", params), ctx)
        assert result.ok, result.error
        assert result.output["previous"] == {"site-a": 100, "site-b": 0}
        assert result.output["weights"] == {"site-a": 0, "site-b": 100}
        assert result.output["changed"] is True
        # raised first: site-b gets its weight before site-a loses its own
        assert ctx.lines[:2] == [
            f"haproxy {proxy.api_address} (runtime_api_secret 'lb-api'): {BACKEND}/site-b weight 0 -> 100",
            f"haproxy {proxy.api_address} (runtime_api_secret 'lb-api'): {BACKEND}/site-a weight 100 -> 0",
        ]
        seen = sum(client.sites.values())
        wait_for(lambda: sum(client.sites.values()) >= seen + 20, timeout=30)
    finally:
        client.stop()
    assert client.failures == 0, client.reasons
    assert client.last[-10:] == ["site-b"] * 10
    assert proxy.weights() == {"site-a": 0, "site-b": 100}
    again = run_action("haproxy.set_weight", params, ctx)
    assert again.ok and again.output["changed"] is False


def test_set_weight_changes_nothing_when_a_server_is_unknown(proxy: HAProxy) -> None:
    ctx = Ctx({})
    params = {
        "runtime_api": proxy.socket,
        "backend": BACKEND,
        "weights": [{"server": "site-b", "weight": 50}, {"server": "site-c", "weight": 50}],
    }
    result = run_action("haproxy.set_weight", params, ctx)
    assert result.error == f"haproxy {proxy.socket}: backend '{BACKEND}' has no server site-c (servers: site-a, site-b)"
    assert proxy.weights() == {"site-a": 100, "site-b": 0}
    result = run_action(
        "haproxy.set_weight", {**params, "weights": [{"server": "site-b; shutdown sessions", "weight": 1}]}, ctx
    )
    assert "is not an HAProxy name" in result.error
    result = run_action("haproxy.set_weight", {**params, "weights": [{"server": "site-b", "weight": "300"}]}, ctx)
    assert result.error == f"haproxy {proxy.socket}: weight '300' of server 'site-b' is not within 0-256"
    twice = [{"server": "site-b", "weight": 1}, {"server": "site-b", "weight": 2}]
    result = run_action("haproxy.set_weight", {**params, "weights": twice}, ctx)
    assert result.error == f"haproxy {proxy.socket}: server 'site-b' is named twice in weights"


def test_set_state_drains_and_readies_a_server(proxy: HAProxy) -> None:
    ctx = Ctx({})
    params = {"runtime_api": proxy.socket, "backend": BACKEND, "server": "site-a", "state": "drain"}
    result = run_action("haproxy.set_state", valid("haproxy.set_state", {**params, "wait_drained": True}), ctx)
    assert result.ok, result.error
    assert (result.output["previous_status"], result.output["status"]) == ("UP", "DRAIN")
    assert result.output["current_sessions"] == 0
    result = run_action("haproxy.set_state", {**params, "state": "maint"}, ctx)
    assert result.ok and result.output["status"] == "MAINT"
    result = run_action("haproxy.set_state", {**params, "state": "ready"}, ctx)
    assert result.ok and result.output["status"] == "UP"


def test_allowed_hosts_and_a_missing_secret(proxy: HAProxy) -> None:
    ctx = Ctx({"lb-api": proxy.api_address})
    ctx.allowed_hosts = {"lb-api": ["lb.example.com"]}
    result = run_action("haproxy.server_status", {"runtime_api_secret": "lb-api", "backend": BACKEND}, ctx)
    assert result.error == (
        f"haproxy {proxy.api_address} (runtime_api_secret 'lb-api'): secret 'lb-api' may not be sent to "
        f"{proxy.api_address} (allowed hosts: lb.example.com)"
    )
    result = run_action("haproxy.server_status", {"runtime_api_secret": "nope", "backend": BACKEND}, Ctx({}))
    assert result.error == "runtime_api_secret 'nope': secret 'nope' is not defined"
    result = run_action("haproxy.server_status", {"runtime_api": "no-port", "backend": BACKEND}, Ctx({}))
    assert result.error == "runtime API 'no-port' is neither a socket path nor host:port"


def test_a_silent_runtime_api_times_out_and_a_cancel_ends_the_step(silent: int) -> None:
    params = {"runtime_api": f"{HOST}:{silent}", "backend": BACKEND}
    result = run_action("haproxy.server_status", params, Ctx({}, timeout=1))
    assert result.error == f"haproxy {HOST}:{silent}: show stat: timed out after 1s"
    ctx = Ctx({}, timeout=60)
    threading.Timer(0.5, ctx.cancelled.set).start()
    result = run_action("haproxy.set_weight", {**params, "weights": [{"server": "a", "weight": 1}]}, ctx)
    assert result.error == f"haproxy {HOST}:{silent}: show stat: cancelled"


def test_the_unix_socket_path_must_exist(tmp_path: Path) -> None:
    path = str(tmp_path / "none.sock")
    result = run_action("haproxy.server_status", {"runtime_api": path, "backend": BACKEND}, Ctx({}))
    assert result.error.startswith(f"haproxy {path}: show stat: ")
