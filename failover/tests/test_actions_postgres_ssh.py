"""postgres.rewind, postgres.rebuild_standby and postgres.data_loss with `run_on: {ssh: ...}`: the programs run
on the node that holds the data, reached over SSH (a real OpenSSH server, failover/tests/sshd_support.py), as
the login user, who owns the data (a PostgreSQL pair of its own, failover/tests/pg_pair.py). Bad input fails
before anything runs, naming the parameter or the secret."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from failover.tests.pg_pair import PgPair, run_step, step_ctx, wait_until
from failover.tests.sshd_support import SSHServer, start_sshd, stop_sshd

pytestmark = [
    pytest.mark.realsystem,
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="runs once, in the SQLite pass"),
]


@pytest.fixture(scope="module")
def sshd() -> Iterator[SSHServer]:
    server = start_sshd()
    try:
        yield server
    finally:
        stop_sshd(server)


@pytest.fixture(scope="module")
def ssh_pair(sshd: SSHServer) -> Iterator[PgPair]:
    """A pair whose data the SSH login user owns (sshd not run by root logs in only its own user)."""
    pytest.importorskip("pgserver")
    pair = PgPair(Path(settings.VAR_DIR) / f"pg-ssh-pair-{os.getpid()}", user=sshd.username)
    try:
        pair.up()
        yield pair
    finally:
        pair.close()


def secrets_for(sshd: SSHServer, pair: PgPair, old, new) -> dict[str, str]:
    return {**sshd.secrets(), "old": old.dsn, "new": new.dsn}


def over_ssh(sshd: SSHServer, pair: PgPair, node, **extra) -> dict:
    return {
        "data_dir": str(node.data),
        "source_dsn_secret": "new",
        "pg_bin_dir": pair.bin_dir,
        "run_on": {"ssh": sshd.connection()},
    } | extra


def fail_over(pair: PgPair, sshd: SSHServer, *, lose: int = 0):
    """Fence the primary, promote the standby; with `lose`, that many commits reach the old primary only."""
    old, new = pair.reset()
    ctx = step_ctx(secrets_for(sshd, pair, old, new))
    if lose:
        pair.caught_up(old, new)
        new.query("ALTER SYSTEM SET primary_conninfo = ''")
        new.query("SELECT pg_reload_conf()")
        wait_until(lambda: not new.query("SELECT 1 FROM pg_stat_wal_receiver"), what="WAL receiver stopped")
        pair.write(old, lose)
    fenced = run_step("postgres.fence", {"dsn_secret": "old"}, ctx)
    assert fenced.ok, fenced.error
    assert run_step("postgres.promote", {"dsn_secret": "new"}, ctx).output["promoted"] is True
    pair.write(new, 3)
    return old, new, fenced.output["end_lsn"]


def test_rewind_and_data_loss_run_on_the_node_over_ssh(sshd: SSHServer, ssh_pair: PgPair) -> None:
    old, new, end_lsn = fail_over(ssh_pair, sshd, lose=5)
    lines: list[str] = []
    ctx = step_ctx(secrets_for(sshd, ssh_pair, old, new), timeout=60, log=lines)
    loss = run_step(
        "postgres.data_loss",
        {
            "dsn_secret": "new",
            "old_primary_end_lsn": end_lsn,
            "wal_dir": str(old.data / "pg_wal"),
            "pg_bin_dir": ssh_pair.bin_dir,
            "run_on": {"ssh": sshd.connection()},
        },
        ctx,
    )
    assert loss.ok, (loss.error, lines)
    assert "wal_error" not in loss.output, loss.output["wal_error"]
    assert loss.output["data_loss_transactions"] == 5 and loss.output["data_loss_bytes"] > 0
    assert loss.output["wal_records"] >= 5

    params = over_ssh(sshd, ssh_pair, old, start=True, port=old.port)
    result = run_step("postgres.rewind", params, ctx)
    ssh_pair.track(old)
    assert result.ok, (result.error, lines[-20:])
    assert (result.output["method"], result.output["was_running"], result.output["started"]) == (
        "pg_rewind",
        True,
        True,
    )
    wait_until(lambda: ssh_pair.streaming(new, old), what="the rewound node streams from the new primary")
    ssh_pair.caught_up(new, old)
    assert old.value("SELECT count(*) FROM t") == new.value("SELECT count(*) FROM t")


def test_rebuild_standby_over_ssh_keeps_the_old_directory_aside(sshd: SSHServer, ssh_pair: PgPair) -> None:
    old, new, _ = fail_over(ssh_pair, sshd)
    ctx = step_ctx(secrets_for(sshd, ssh_pair, old, new), timeout=120)
    result = run_step("postgres.rebuild_standby", over_ssh(sshd, ssh_pair, old, start=True, port=old.port), ctx)
    ssh_pair.track(old)
    assert result.ok, result.error
    assert result.output["method"] == "pg_basebackup"
    aside = Path(result.output["old_data_dir"])
    assert aside.is_dir() and aside.name.startswith(f"{old.data.name}.old-")
    wait_until(lambda: ssh_pair.streaming(new, old), what="the rebuilt node streams from the new primary")
    assert aside.stat().st_uid == old.data.stat().st_uid  # moved by the login user, on the node
    shutil.rmtree(aside)


def test_bad_run_on_fails_before_anything_runs_naming_it(sshd: SSHServer, ssh_pair: PgPair) -> None:
    old, new = ssh_pair.reset()
    secrets = secrets_for(sshd, ssh_pair, new, old)
    pid_before = old.data.joinpath("postmaster.pid").read_text().split()[0]

    def rewind(**run_on) -> str:
        params = over_ssh(sshd, ssh_pair, new) | {"run_on": {"ssh": sshd.connection(**run_on)}}
        params["source_dsn_secret"] = "old"
        result = run_step("postgres.rewind", params, step_ctx(secrets, timeout=30))
        assert not result.ok
        return result.error

    assert "known_hosts_secret 'no-such-secret'" in rewind(known_hosts_secret="no-such-secret")
    import asyncssh

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    secrets["wrong-key"] = f"[127.0.0.1]:{sshd.port} {other}\n"
    error = rewind(known_hosts_secret="wrong-key")
    assert "host key verification failed" in error and "nothing was run" in error
    error = rewind(port=1)
    assert f"ssh {sshd.username}@127.0.0.1:1" in error
    params = over_ssh(sshd, ssh_pair, new, os_user="postgres", source_dsn_secret="old")
    result = run_step("postgres.rewind", params, step_ctx(secrets, timeout=30))
    assert not result.ok and "os_user 'postgres'" in result.error and sshd.username in result.error
    # Nothing was stopped: the servers run as before.
    assert new.running() and new.in_recovery() is True
    assert old.data.joinpath("postmaster.pid").read_text().split()[0] == pid_before


def test_timeout_over_ssh_kills_the_remote_copy_and_removes_it(sshd: SSHServer, ssh_pair: PgPair) -> None:
    old, new, _ = fail_over(ssh_pair, sshd)
    ctx = step_ctx(secrets_for(sshd, ssh_pair, old, new), timeout=4)
    params = over_ssh(sshd, ssh_pair, old, max_rate="32k")
    result = run_step("postgres.rebuild_standby", params, ctx)
    assert not result.ok
    assert "timed out after 4s during pg_basebackup" in result.error, result.error
    assert "was removed" in result.error
    assert not Path(f"{old.data}.drplan-new").exists() and old.data.is_dir()
    wait_until(lambda: not programs_on_host("pg_basebackup", old.data), what="no pg_basebackup left")


def programs_on_host(name: str, path: Path) -> list[int]:
    import psutil

    return [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "name", "cmdline"])
        if p.info["name"] == name and any(str(path) in a for a in (p.info["cmdline"] or []))
    ]
