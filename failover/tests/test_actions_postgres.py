"""The postgres actions that talk SQL, against a real PostgreSQL 16 primary + streaming standby
(failover/tests/pg_pair.py): status and lag, fence, promote, wait_writable, switchover, data_loss,
and bad input (missing or wrong secrets, unreachable and hung servers), timeouts and cancels."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import psycopg
import pytest
import yaml

from failover.engine.actions import run_action
from failover.engine.actions.postgres_wal import WalScan, format_lsn, newest_timeline, parse_lsn, record_end
from failover.tests.pg_pair import PASSWORD, PgPair, black_hole, run_step, step_ctx, wait_until
from runbooks.actions import get_action
from runbooks.templating import TemplateContext, render_step_params

pytestmark = [
    pytest.mark.pgpair,
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="runs once, in the SQLite pass"),
]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "actions.md"
SQL_ACTIONS = {
    "postgres.replication_status": {"dsn_secret": "db"},
    "postgres.check_lag": {"dsn_secret": "db", "max_lag_seconds": 5},
    "postgres.fence": {"dsn_secret": "db"},
    "postgres.promote": {"dsn_secret": "db"},
    "postgres.wait_writable": {"dsn_secret": "db"},
    "postgres.switchover": {"primary_dsn_secret": "db", "standby_dsn_secret": "db"},
    "postgres.data_loss": {"dsn_secret": "db", "old_primary_end_lsn": "0/3000000"},
}
# rewind and rebuild_standby too: their secret is checked before any program runs.
SECRET_ACTIONS = {
    **SQL_ACTIONS,
    "postgres.rewind": {"data_dir": "/nonexistent/pgdata", "source_dsn_secret": "db"},
    "postgres.rebuild_standby": {"data_dir": "/nonexistent/pgdata", "source_dsn_secret": "db"},
}
NOT_DSNS = ["", "hello world", "redis://:pw@127.0.0.1:6379/0", "sqlite:///var/x.sqlite3", "host=db foo=bar"]


# ----------------------------------------------------------------------------- schemas and docs
def test_every_documented_example_matches_its_schema() -> None:
    """Each postgres action has an example step in docs/actions.md whose `with` its schema accepts."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.DOTALL)
    examples: dict[str, list[dict]] = {}
    for block in blocks:
        for step in yaml.safe_load(block) or []:
            if isinstance(step, dict) and str(step.get("action", "")).startswith("postgres."):
                examples.setdefault(step["action"], []).append(step["with"])
    assert set(examples) == set(SECRET_ACTIONS)
    for name, withs in examples.items():
        for params in withs:
            assert [e.message for e in get_action(name).validator.iter_errors(params)] == [], (name, params)
    assert list(get_action("postgres.fence").validator.iter_errors({"dsn_secret": "x", "lift": "yes"}))
    assert list(get_action("postgres.check_lag").validator.iter_errors({"dsn_secret": "x", "max_lag": 1}))


def test_wal_positions_and_pg_waldump_lines() -> None:
    assert (
        parse_lsn("16/B374D848") == (0x16 << 32) + 0xB374D848 and format_lsn(parse_lsn("16/B374D848")) == "16/B374D848"
    )
    with pytest.raises(ValueError, match="'0/3000000; DROP' is not an LSN"):
        parse_lsn("0/3000000; DROP")
    # An insert position just past a page header is the end of the record before it.
    assert record_end(0x3000028) == 0x3000000  # segment start: long header
    assert record_end(0x3002018) == 0x3002000  # page start: short header
    assert record_end(0x30082C8) == 0x30082C8
    scan = WalScan(parse_lsn("0/3000000"))
    for line in (
        "rmgr: Heap        len (rec/tot):     65/    65, tx:        732, lsn: 0/03008168, prev 0/03008140,"
        " desc: INSERT off: 2",
        "rmgr: Transaction len (rec/tot):     34/    34, tx:        732, lsn: 0/030081F0, prev 0/030081B0,"
        " desc: COMMIT 2026-01-02 05:31:16.161380 UTC",
        "rmgr: Transaction len (rec/tot):     34/    34, tx:        733, lsn: 0/030082A0, prev 0/03008260,"
        " desc: COMMIT 2026-01-02 05:31:18.661380 UTC",
        "pg_waldump: error: error in WAL record at 0/30082A0: invalid record length at 0/30082C8: expected at least 24",
    ):
        scan.feed(line)
    assert (scan.records, scan.commits, format_lsn(scan.end)) == (3, 2, "0/30082C8")
    assert scan.last_commit_at - scan.first_commit_at == pytest.approx(2.5)
    assert newest_timeline(["000000010000000000000003", "00000002.history", "000000020000000000000004", "x"]) == 2


# ----------------------------------------------------------------------------- bad input (no server needed)
@pytest.mark.parametrize("action", sorted(SECRET_ACTIONS))
def test_a_missing_or_wrong_secret_fails_before_connecting_naming_it(action: str) -> None:
    params = SECRET_ACTIONS[action]
    field = next(k for k in params if k.endswith("dsn_secret"))
    missing = run_step(action, params, step_ctx({}))
    assert not missing.ok
    assert missing.error == f"{action}: {field}: secret 'db' is not defined"
    for value in NOT_DSNS:
        with black_hole() as port:  # would hang if anything tried to connect
            started = time.monotonic()
            result = run_step(action, params, step_ctx({"db": value}))
            assert time.monotonic() - started < 1
        assert result.error == (
            f"{action}: {field}: secret 'db' is not a PostgreSQL DSN"
            " (expected a postgresql:// URI or key=value conninfo)"
        ), port
        assert not value or value not in result.error


def test_an_unreachable_server_fails_within_the_timeout_naming_host_and_port() -> None:
    with black_hole() as closed:
        pass  # now nothing listens there
    dsn = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{closed}/postgres"
    refused = run_step("postgres.promote", {"dsn_secret": "db"}, step_ctx({"db": dsn}))
    assert refused.error == f"postgres.promote: cannot connect to 127.0.0.1:{closed}: Connection refused"

    with black_hole() as port:
        hung = f"host=127.0.0.1 port={port} user=postgres password={PASSWORD} dbname=postgres"
        started = time.monotonic()
        result = run_step("postgres.replication_status", {"dsn_secret": "db"}, step_ctx({"db": hung}, timeout=1.5))
        assert 1.4 <= time.monotonic() - started < 3
        assert result.error == (
            f"postgres.replication_status: timed out after 1.5s while connecting to 127.0.0.1:{port}"
        )
        started = time.monotonic()
        params = {"dsn_secret": "db", "connect_timeout": 1}
        result = run_step("postgres.wait_writable", params, step_ctx({"db": hung}, timeout=2))
        assert time.monotonic() - started < 3.5
        assert result.error.startswith(f"postgres.wait_writable: 127.0.0.1:{port} does not accept writes after 2s")

        ctx = step_ctx({"db": hung}, timeout=30)  # a promote cancelled while it waits for the server
        threading.Timer(0.3, ctx.cancelled.set).start()
        started = time.monotonic()
        result = run_step("postgres.promote", {"dsn_secret": "db"}, ctx)
        assert time.monotonic() - started < 1.5
        assert result.error == f"postgres.promote: cancelled while connecting to 127.0.0.1:{port}"
    for text in (refused.error, result.error):
        assert PASSWORD not in text and "postgresql://" not in text


def test_fence_of_an_unreachable_primary_fails_unless_told_to_continue() -> None:
    with black_hole() as closed:
        pass
    ctx = step_ctx({"old": f"postgresql://postgres:{PASSWORD}@127.0.0.1:{closed}/postgres"})
    failed = run_step("postgres.fence", {"dsn_secret": "old"}, ctx)
    assert failed.error == f"postgres.fence: cannot connect to 127.0.0.1:{closed}: Connection refused"
    lines: list[str] = []
    ctx = step_ctx({"old": f"host=127.0.0.1 port={closed} password={PASSWORD}"}, log=lines)
    result = run_step("postgres.fence", {"dsn_secret": "old", "if_unreachable": "continue"}, ctx)
    assert result.ok
    assert result.output == {
        "node": f"127.0.0.1:{closed}",
        "reachable": False,
        "fenced": False,
        "reason": f"cannot connect to 127.0.0.1:{closed}: Connection refused",
        "end_lsn": None,
    }
    assert "NOT fenced by SQL" in lines[0] and PASSWORD not in "".join(lines)
    with black_hole() as port:  # hung rather than down: still reported within the step's timeout
        ctx = step_ctx({"old": f"host=127.0.0.1 port={port} password={PASSWORD}"}, timeout=3)
        started = time.monotonic()
        result = run_step("postgres.fence", {"dsn_secret": "old", "if_unreachable": "continue"}, ctx)
        assert time.monotonic() - started < 3
    assert result.ok and result.output["fenced"] is False
    assert result.output["reason"] == f"cannot connect to 127.0.0.1:{port}: no answer within 2s (connect timeout)"


def test_a_dsn_host_outside_the_secrets_allowed_hosts_is_refused() -> None:
    ctx = step_ctx({"db": "postgresql://u:p@10.1.2.3:5432/postgres"})
    ctx.allowed_hosts = {"db": ["db.example.internal"]}
    result = run_step("postgres.replication_status", {"dsn_secret": "db"}, ctx)
    assert result.error == (
        "postgres.replication_status: secret 'db' may not be sent to 10.1.2.3:5432 (allowed hosts: db.example.internal)"
    )


# ----------------------------------------------------------------------------- status and lag
def test_replication_status_on_the_primary_and_on_the_standby(pg_pair: PgPair) -> None:
    primary, standby = pg_pair.reset()
    ctx = step_ctx({"p": primary.dsn, "s": standby.dsn})
    pg_pair.write(primary, 2)
    pg_pair.caught_up(primary, standby)
    on_primary = run_step("postgres.replication_status", {"dsn_secret": "p"}, ctx)
    assert on_primary.ok, on_primary.error
    out = on_primary.output
    assert (out["node"], out["role"], out["read_only"]) == (primary.where, "primary", False)
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", out["end_lsn"]) and out["timeline"] >= 1
    [row] = out["standbys"]
    assert (row["application_name"], row["state"], row["client_addr"]) == (standby.name, "streaming", "127.0.0.1/32")
    assert row["lag_bytes"] is not None and row["lag_seconds"] is not None

    on_standby = run_step("postgres.replication_status", {"dsn_secret": "s"}, ctx)
    assert on_standby.ok, on_standby.error
    out = on_standby.output
    assert (out["node"], out["role"], out["replay_paused"]) == (standby.where, "standby", False)
    assert out["receiver"]["status"] == "streaming" and out["receiver"]["sender"] == f"127.0.0.1:{primary.port}"
    assert out["lag_bytes"] == 0 and out["lag_seconds"] == 0.0
    assert out["last_replayed_at"] is not None and out["replayed_lsn"] == out["received_lsn"]


def test_check_lag_passes_within_the_thresholds_and_fails_above_them(pg_pair: PgPair) -> None:
    primary, standby = pg_pair.reset()
    ctx = step_ctx({"p": primary.dsn, "s": standby.dsn})
    pg_pair.caught_up(primary, standby)
    ok = run_step("postgres.check_lag", {"dsn_secret": "s", "max_lag_seconds": 5, "max_lag_bytes": 0}, ctx)
    assert ok.ok, ok.error
    assert ok.output["checked"] == [{"standby": standby.where, "lag_seconds": 0.0, "lag_bytes": 0}]

    standby.query("SELECT pg_wal_replay_pause()")
    try:
        pg_pair.write(primary, 3)
        received = wait_until(
            lambda: standby.lsn("SELECT pg_last_wal_receive_lsn()") > standby.lsn("SELECT pg_last_wal_replay_lsn()"),
            what="WAL received but not replayed",
        )
        assert received
        behind = run_step("postgres.check_lag", {"dsn_secret": "s", "max_lag_bytes": 0}, ctx)
        lag = behind.output["lag_bytes"]
        assert lag > 0
        assert behind.error == (
            f"postgres.check_lag: standby {standby.where}: lag {lag} bytes is above max_lag_bytes 0"
        )

        # From the primary, with a templated threshold (rendered as the engine does) and the standby named.
        def primary_sees_lag() -> int:
            checked = run_step("postgres.check_lag", {"dsn_secret": "p", "max_lag_bytes": 0}, ctx).output["checked"]
            return checked[0]["lag_bytes"]

        wait_until(primary_sees_lag, what="the primary sees the lag")
        params = {"dsn_secret": "p", "max_lag_bytes": "{{ params.max_bytes }}", "standby": standby.name}
        assert list(get_action("postgres.check_lag").validator.iter_errors(params)) == []
        rendered = render_step_params(params, TemplateContext(params={"max_bytes": "0"})).value
        on_primary = run_action("postgres.check_lag", rendered, ctx)
        assert on_primary.error.startswith(
            f"postgres.check_lag: standby '{standby.name}' (127.0.0.1/32) of {primary.where}: lag "
        )
        assert on_primary.error.endswith(" bytes is above max_lag_bytes 0")
        nobody = run_step("postgres.check_lag", {"dsn_secret": "p", "max_lag_bytes": 0, "standby": "nope"}, ctx)
        assert (
            nobody.error
            == f"postgres.check_lag: no standby named 'nope' is connected to {primary.where} (pg_stat_replication)"
        )
        generous = run_step("postgres.check_lag", {"dsn_secret": "s", "max_lag_bytes": 10**9}, ctx)
        assert generous.ok, generous.error
        neither = run_step("postgres.check_lag", {"dsn_secret": "s"}, ctx)
        assert neither.error == "postgres.check_lag: give max_lag_seconds and/or max_lag_bytes"
    finally:
        standby.query("SELECT pg_wal_replay_resume()")


# ----------------------------------------------------------------------------- fence, promote, wait_writable
def test_fence_makes_the_primary_read_only_terminates_clients_keeps_replication_and_lifts(pg_pair: PgPair) -> None:
    primary, standby = pg_pair.reset()
    ctx = step_ctx({"p": primary.dsn})
    client = psycopg.connect(primary.dsn, autocommit=True)
    client_pid = client.info.backend_pid
    try:
        fenced = run_step("postgres.fence", {"dsn_secret": "p"}, ctx)
        assert fenced.ok, fenced.error
        out = fenced.output
        assert (out["fenced"], out["read_only"], out["method"], out["role"]) == (True, True, "sql", "primary")
        assert client_pid in [s["pid"] for s in out["terminated_sessions"]]
        assert out["end_lsn"] == run_step("postgres.replication_status", {"dsn_secret": "p"}, ctx).output["end_lsn"]
        with pytest.raises(psycopg.OperationalError):
            client.execute("SELECT 1")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            pg_pair.write(primary)
        assert pg_pair.streaming(primary, standby)  # the walsender was not terminated
        not_yet = run_step("postgres.wait_writable", {"dsn_secret": "p"}, step_ctx({"p": primary.dsn}, timeout=1))
        assert not_yet.error == (
            f"postgres.wait_writable: {primary.where} does not accept writes after 1s:"
            " read-only (default_transaction_read_only = on)"
        )
        again = run_step("postgres.fence", {"dsn_secret": "p"}, ctx)  # idempotent: a retry fences again
        # No client writes after the fence, but the server's own records (a checkpoint, a standby snapshot) may
        # still extend its WAL a little: seen once in CI, 0/50028A8 then 0/5002958.
        assert again.ok and parse(again.output["end_lsn"]) >= parse(out["end_lsn"])
    finally:
        client.close()
    lifted = run_step("postgres.fence", {"dsn_secret": "p", "lift": True}, ctx)
    assert lifted.output == {"node": primary.where, "fenced": False, "lifted": True}
    writable = run_step("postgres.wait_writable", {"dsn_secret": "p"}, ctx)
    assert writable.ok and writable.output["writable"] is True
    pg_pair.write(primary)
    on_standby = run_step("postgres.fence", {"dsn_secret": "s"}, step_ctx({"s": standby.dsn}))
    assert on_standby.output == {
        "node": standby.where,
        "role": "standby",
        "fenced": False,
        "read_only": True,
        "end_lsn": None,
    }


def test_promote_on_a_primary_reports_it_and_promotes_nothing(pg_pair: PgPair) -> None:
    primary, standby = pg_pair.reset()
    ctx = step_ctx({"p": primary.dsn})
    result = run_step("postgres.promote", {"dsn_secret": "p"}, ctx)
    assert result.ok, result.error
    assert (result.output["already_primary"], result.output["promoted"]) == (True, False)
    assert result.output["timeline"] == primary_timeline(primary)
    assert pg_pair.streaming(primary, standby) and standby.in_recovery() is True


def primary_timeline(node) -> int:
    return int(node.value("SELECT pg_walfile_name(pg_current_wal_lsn())")[:8], 16)


def test_wait_writable_waits_for_a_promotion_and_is_cancelled_at_once(pg_pair: PgPair) -> None:
    _, standby = pg_pair.reset()
    ctx = step_ctx({"s": standby.dsn}, timeout=30)
    threading.Timer(0.3, ctx.cancelled.set).start()
    started = time.monotonic()
    cancelled = run_step("postgres.wait_writable", {"dsn_secret": "s"}, ctx)
    assert time.monotonic() - started < 1.5
    assert cancelled.error == f"postgres.wait_writable: cancelled while waiting for {standby.where} to accept writes"
    # Promote while it waits: it returns once the standby accepts writes.
    ctx = step_ctx({"s": standby.dsn}, timeout=30)
    threading.Timer(0.3, lambda: standby.query("SELECT pg_promote(true, 30)")).start()
    waited = run_step("postgres.wait_writable", {"dsn_secret": "s"}, ctx)
    assert waited.ok, waited.error
    assert waited.output["waited_seconds"] >= 0.25
    promote_again = run_step("postgres.promote", {"dsn_secret": "s"}, ctx)
    assert promote_again.output["already_primary"] is True  # promoted once, never twice


# ----------------------------------------------------------------------------- switchover
def test_switchover_gives_up_without_promoting_when_the_standby_does_not_catch_up(pg_pair: PgPair) -> None:
    primary, standby = pg_pair.reset()
    secrets = {"p": primary.dsn, "s": standby.dsn}
    params = {"primary_dsn_secret": "p", "standby_dsn_secret": "s", "max_wait_seconds": 1}
    standby.query("SELECT pg_wal_replay_pause()")
    try:
        pg_pair.write(primary, 2)
        started = time.monotonic()
        result = run_step("postgres.switchover", params, step_ctx(secrets))
        assert 1 <= time.monotonic() - started < 4
        end = result.output["fence"]["end_lsn"]
        assert re.fullmatch(
            rf"postgres\.switchover: {standby.where} replayed [0-9A-F/]+, not {end}, within 1 s; not promoted;"
            rf" fence lifted: {primary.where} accepts writes again",
            result.error,
        ), result.error
        assert standby.in_recovery() is True
        pg_pair.write(primary)  # writable again

        lines: list[str] = []
        ctx = step_ctx(secrets, timeout=30, log=lines)  # cancelled while waiting: the same, at once

        cancelled_at: list[float] = []

        def cancel_once_waiting() -> None:
            wait_until(lambda: any("to replay it" in line for line in lines), what="switchover waiting")
            cancelled_at.append(time.monotonic())
            ctx.cancelled.set()

        threading.Thread(target=cancel_once_waiting).start()
        result = run_step("postgres.switchover", {**params, "max_wait_seconds": 30}, ctx)
        assert time.monotonic() - cancelled_at[0] < 2
        assert result.error == (
            f"postgres.switchover: cancelled while waiting for {standby.where} to catch up; not promoted;"
            f" fence lifted: {primary.where} accepts writes again"
        )
        assert standby.in_recovery() is True
        pg_pair.write(primary)
    finally:
        standby.query("SELECT pg_wal_replay_resume()")
    wrong_way = run_step(
        "postgres.switchover", {**params, "primary_dsn_secret": "s", "standby_dsn_secret": "p"}, step_ctx(secrets)
    )
    assert wrong_way.error == (
        f"postgres.switchover: {primary.where} is not a standby (not in recovery): nothing to switch over to"
    )


def test_switchover_promotes_the_standby_once_it_has_everything(pg_pair: PgPair) -> None:
    primary, standby = pg_pair.reset()
    pg_pair.write(primary, 20)
    last = primary.value("SELECT max(id) FROM t")
    params = {"primary_dsn_secret": "p", "standby_dsn_secret": "s", "max_wait_seconds": 20}
    result = run_step("postgres.switchover", params, step_ctx({"p": primary.dsn, "s": standby.dsn}))
    assert result.ok, result.error
    assert result.measurements == {"data_loss_bytes": 0.0, "data_loss_transactions": 0.0, "rpo_seconds": 0.0}
    out = result.output
    assert (out["primary"], out["standby"]) == (primary.where, standby.where)
    assert parse(out["replayed_lsn"]) >= parse(out["end_lsn"])
    assert out["promote"]["promoted"] is True and out["timeline"] == primary_timeline(standby)
    assert standby.in_recovery() is False and standby.value("SELECT max(id) FROM t") == last
    assert primary.value("SHOW default_transaction_read_only") == "on"  # the old primary stays fenced


def parse(lsn: str) -> int:
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


# ----------------------------------------------------------------------------- failover with loss, data_loss
def test_failover_measures_the_transactions_lost(pg_pair: PgPair) -> None:
    """Replication cut, 5 commits on the primary only, fence, promote: data_loss finds exactly those 5."""
    primary, standby = pg_pair.reset()
    ctx = step_ctx({"p": primary.dsn, "s": standby.dsn})
    pg_pair.write(primary)
    pg_pair.caught_up(primary, standby)
    standby.query("ALTER SYSTEM SET primary_conninfo = ''")
    standby.query("SELECT pg_reload_conf()")
    wait_until(lambda: not standby.query("SELECT 1 FROM pg_stat_wal_receiver"), what="WAL receiver stopped")
    pg_pair.write(primary, 5)

    fenced = run_step("postgres.fence", {"dsn_secret": "p"}, ctx).output
    promoted = run_step("postgres.promote", {"dsn_secret": "s", "wait_seconds": 20}, ctx)
    assert promoted.ok, promoted.error
    assert promoted.output["already_primary"] is False and promoted.output["timeline"] == fenced["timeline"] + 1
    assert parse(promoted.output["promoted_at_lsn"]) < parse(fenced["end_lsn"])

    wal = {"wal_dir": str(primary.data / "pg_wal"), "pg_bin_dir": pg_pair.bin_dir}
    params = {"dsn_secret": "s", "old_primary_end_lsn": fenced["end_lsn"], **wal}
    lost = run_step("postgres.data_loss", params, ctx)
    assert lost.ok, lost.error
    expected_bytes = parse(fenced["end_lsn"]) - parse(promoted.output["promoted_at_lsn"])
    assert lost.output["standby_lsn"] == promoted.output["promoted_at_lsn"]
    assert lost.output["data_loss_transactions"] == 5 and lost.output["data_loss_bytes"] == expected_bytes
    assert lost.output["timeline"] == fenced["timeline"]  # found in wal_dir
    assert 0 <= lost.output["rpo_seconds"] < 30
    assert lost.measurements == {
        "data_loss_bytes": float(expected_bytes),
        "data_loss_transactions": 5.0,
        "rpo_seconds": lost.output["rpo_seconds"],
    }
    # From LSNs alone (no WAL to read): bytes only. Without the new primary: its promotion LSN given.
    by_lsn = run_step("postgres.data_loss", {"dsn_secret": "s", "old_primary_end_lsn": fenced["end_lsn"]}, ctx)
    assert by_lsn.measurements == {"data_loss_bytes": float(expected_bytes)}
    explicit = {"standby_lsn": promoted.output["promoted_at_lsn"], "timeline": fenced["timeline"], **wal}
    from_wal = run_step("postgres.data_loss", explicit, step_ctx({}))
    assert from_wal.output["data_loss_transactions"] == 5
    assert from_wal.output["old_primary_end_lsn"] is not None and from_wal.output["rpo_basis"].startswith("span")
    nothing = run_step("postgres.data_loss", {"dsn_secret": "s"}, ctx)
    assert nothing.error == (
        "postgres.data_loss: nothing to compare: give old_primary_end_lsn and/or wal_dir (the old primary's pg_wal)"
    )
    unreadable = run_step("postgres.data_loss", {**params, "wal_dir": "/nonexistent/pg_wal"}, ctx)
    assert unreadable.ok and unreadable.measurements == {"data_loss_bytes": float(expected_bytes)}
    assert unreadable.output["wal_error"].startswith("no WAL segment found in /nonexistent/pg_wal")
