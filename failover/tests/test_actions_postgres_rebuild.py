"""postgres.rewind and postgres.rebuild_standby against a real pair (failover/tests/pg_pair.py), their
timeout and cancel (the program's process group is killed), and the postgres actions end to end through
the engine: a plan's failover runbook (check_lag → fence → promote → wait_writable → data_loss) and its
failback runbook (rewind the old primary → switchover back → rebuild the other node)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import psutil
import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from core.secrets import set_secret
from failover import services
from failover.engine.runner import run_execution
from failover.models import ExecutionEvent, FailoverExecution, StepRun
from failover.tests.pg_pair import PASSWORD, PgPair, black_hole, run_step, step_ctx, wait_until
from plans.tests.factories import make_app, make_plan
from runbooks.choices import VersionStatus
from runbooks.models import RunbookVersion
from runbooks.services import import_runbook_document

pytestmark = [
    pytest.mark.pgpair,
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="runs once, in the SQLite pass"),
]


def programs_on(path: Path, name: str) -> list[int]:
    """Pids of running `name` processes whose command line names `path`."""
    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        alive = proc.info["status"] != psutil.STATUS_ZOMBIE
        if alive and cmdline and Path(cmdline[0]).name == name and any(str(path) in arg for arg in cmdline):
            found.append(proc.info["pid"])
    return found


def rebuild_params(pair: PgPair, node, **extra) -> dict:
    return {
        "data_dir": str(node.data),
        "source_dsn_secret": "new",
        "os_user": pair.user,
        "pg_bin_dir": pair.bin_dir,
    } | extra


def fail_over(pair: PgPair):
    """Fence the primary, promote the standby (by SQL, as the actions do); returns (old, new)."""
    old, new = pair.reset()
    ctx = step_ctx({"old": old.dsn, "new": new.dsn})
    assert run_step("postgres.fence", {"dsn_secret": "old"}, ctx).ok
    assert run_step("postgres.promote", {"dsn_secret": "new"}, ctx).output["promoted"] is True
    pair.write(new, 3)
    return old, new


def test_rewind_makes_the_old_primary_a_standby_of_the_new_one(pg_pair: PgPair) -> None:
    old, new = fail_over(pg_pair)
    lines: list[str] = []
    params = rebuild_params(pg_pair, old, start=True, port=old.port)  # the default start: pg_ctl, PGPORT
    result = run_step("postgres.rewind", params, step_ctx({"new": new.dsn}, timeout=60, log=lines))
    pg_pair.track(old)
    assert result.ok, (result.error, lines)
    out = result.output
    assert (out["method"], out["was_running"], out["started"], out["source"]) == ("pg_rewind", True, True, new.where)
    assert "old_data_dir" not in out and "rewind_error" not in out
    assert (old.data / "standby.signal").exists()
    wait_until(lambda: pg_pair.streaming(new, old), what="the rewound node streams from the new primary")
    pg_pair.caught_up(new, old)
    assert old.value("SELECT count(*) FROM t") == new.value("SELECT count(*) FROM t")
    assert old.value("SHOW default_transaction_read_only") == "off"  # the fence went with the rewind
    assert not any("pw-" in line for line in lines)


def test_rebuild_standby_cancelled_mid_copy_leaves_the_node_as_it_was_then_rebuilds(pg_pair: PgPair) -> None:
    primary, standby = pg_pair.reset()
    fresh = Path(f"{standby.data}.drplan-new")
    ctx = step_ctx({"new": primary.dsn}, timeout=60)
    params = rebuild_params(pg_pair, standby, max_rate="32k", start=True, start_argv=pg_pair.start_argv(standby))

    def cancel_once_copying() -> None:
        wait_until(lambda: programs_on(fresh, "pg_basebackup"), what="pg_basebackup running")
        ctx.cancelled.set()

    canceller = threading.Thread(target=cancel_once_copying)
    canceller.start()
    started = time.monotonic()
    result = run_step("postgres.rebuild_standby", params, ctx)
    canceller.join()
    assert time.monotonic() - started < 20
    assert result.error == (
        f"postgres.rebuild_standby: cancelled during pg_basebackup from {primary.where} into {fresh} (its process"
        f" group was killed); the partial copy {fresh} was removed; {standby.data} is unchanged"
    )
    assert programs_on(fresh, "pg_basebackup") == [] and not fresh.exists()
    assert (standby.data / "PG_VERSION").exists() and (standby.data / "standby.signal").exists()

    result = run_step("postgres.rebuild_standby", {**params, "max_rate": "100M"}, step_ctx({"new": primary.dsn}, 60))
    pg_pair.track(standby)
    assert result.ok, result.error
    aside = Path(result.output["old_data_dir"])
    assert result.output["method"] == "pg_basebackup" and aside.name.startswith(f"{standby.name}.old-")
    assert (aside / "PG_VERSION").exists() and not fresh.exists()
    wait_until(lambda: pg_pair.streaming(primary, standby), what="the rebuilt standby streams")


def test_rewind_timeout_and_cancel_kill_pg_rewind(pg_pair: PgPair) -> None:
    _, standby = pg_pair.reset()
    with black_hole() as port:  # a new primary that never answers: pg_rewind hangs connecting
        hung = f"host=127.0.0.1 port={port} user=postgres password=pw-hung dbname=postgres"
        params = rebuild_params(pg_pair, standby, fallback="fail", connect_timeout=60)
        ctx = step_ctx({"new": hung}, timeout=30)

        def cancel_once_rewinding() -> None:
            wait_until(lambda: programs_on(standby.data, "pg_rewind"), what="pg_rewind running")
            ctx.cancelled.set()

        canceller = threading.Thread(target=cancel_once_rewinding)
        canceller.start()
        result = run_step("postgres.rewind", params, ctx)
        canceller.join()
        assert result.error == (
            f"postgres.rewind: cancelled during pg_rewind of {standby.data} from 127.0.0.1:{port} (its process group"
            f" was killed); {standby.data} may be unusable: rewind it again or rebuild it"
        )
        assert programs_on(standby.data, "pg_rewind") == []

        started = time.monotonic()
        result = run_step("postgres.rewind", params, step_ctx({"new": hung}, timeout=2))
        assert time.monotonic() - started < 4
        assert result.error.startswith("postgres.rewind: timed out after 2s during ")
        assert programs_on(standby.data, "pg_rewind") == []
        assert "pw-hung" not in result.error
    with black_hole() as closed:
        pass  # nothing listens there now
    refused = f"host=127.0.0.1 port={closed} user=postgres password=pw-refused dbname=postgres"
    result = run_step("postgres.rewind", params, step_ctx({"new": refused}))
    assert result.error.startswith(
        f"postgres.rewind: pg_rewind of {standby.data} from 127.0.0.1:{closed} failed locally (exit code 1): "
    )
    assert f"port {closed} failed: Connection refused" in result.error and "pw-refused" not in result.error
    missing_user = run_step("postgres.rewind", {**params, "os_user": "no-such-user-x"}, step_ctx({"new": hung}))
    assert missing_user.error == "postgres.rewind: pg_ctl status: no such OS user 'no-such-user-x' on this machine"
    bad_dir = run_step(
        "postgres.rebuild_standby",
        {**rebuild_params(pg_pair, standby), "data_dir": "/srv/../etc"},
        step_ctx({"new": hung}),
    )
    assert (
        bad_dir.error == "postgres.rebuild_standby: data_dir: '/srv/../etc' is not an absolute path to a data directory"
    )
    pg_pair.reset()  # the standby lost standby.signal: reset rebuilds it


# ----------------------------------------------------------------------------- through the engine
def _runbook(slug: str, category: str, steps: list[dict]) -> RunbookVersion:
    doc = {"name": slug, "slug": slug, "version": "1.0.0", "category": category, "application": "pg-pair"}
    version = import_runbook_document({**doc, "steps": steps})  # validated: schemas, templates, needs
    RunbookVersion.objects.filter(pk=version.pk).update(status=VersionStatus.APPROVED, approved_at=timezone.now())
    return version


def _run(execution: FailoverExecution) -> FailoverExecution:
    status = run_execution(execution.pk)
    execution.refresh_from_db()
    failed = list(StepRun.objects.filter(execution=execution, status="failed").values_list("step_key", "error"))
    assert status == "completed", (execution.error, failed)
    return execution


def _output(execution: FailoverExecution, key: str) -> dict:
    return StepRun.objects.get(execution=execution, step_key=f"pg-pair.{key}").output


@pytest.mark.django_db(transaction=True)
def test_a_plan_fails_over_and_back_through_the_engine(pg_pair: PgPair, users: dict[str, User], enqueued) -> None:
    primary, standby = pg_pair.reset()
    set_secret("orders-db-primary-dsn", primary.dsn)
    set_secret("orders-db-standby-dsn", standby.dsn)
    node = {"os_user": pg_pair.user, "pg_bin_dir": pg_pair.bin_dir}
    app = make_app("pg-pair")
    _runbook(
        "pg-pair-failover",
        "failover",
        [
            {
                "id": "check-lag",
                "action": "postgres.check_lag",
                "timeout": 10,
                "with": {"dsn_secret": "orders-db-standby-dsn", "max_lag_seconds": "{{ plan.rpo_seconds }}"},
            },
            {
                "id": "fence",
                "action": "postgres.fence",
                "needs": ["check-lag"],
                "timeout": 20,
                "with": {"dsn_secret": "orders-db-primary-dsn", "if_unreachable": "continue"},
            },
            {
                "id": "promote",
                "action": "postgres.promote",
                "needs": ["fence"],
                "timeout": 30,
                "with": {"dsn_secret": "orders-db-standby-dsn"},
            },
            {
                "id": "writable",
                "action": "postgres.wait_writable",
                "needs": ["promote"],
                "timeout": 30,
                "with": {"dsn_secret": "orders-db-standby-dsn"},
            },
            {
                "id": "data-loss",
                "action": "postgres.data_loss",
                "needs": ["promote"],
                "timeout": 30,
                "with": {
                    "dsn_secret": "orders-db-standby-dsn",
                    "old_primary_end_lsn": "{{ steps.fence.output.end_lsn }}",
                    "wal_dir": f"{primary.data}/pg_wal",
                    **node,
                },
            },
        ],
    )
    _runbook(
        "pg-pair-failback",
        "failback",
        [
            {
                "id": "rewind",
                "action": "postgres.rewind",
                "timeout": 120,
                "with": {
                    "data_dir": str(primary.data),
                    "source_dsn_secret": "orders-db-standby-dsn",
                    "start": True,
                    "start_argv": pg_pair.start_argv(primary),
                    **node,
                },
            },
            {
                "id": "switch-back",
                "action": "postgres.switchover",
                "needs": ["rewind"],
                "timeout": 60,
                "with": {
                    "primary_dsn_secret": "orders-db-standby-dsn",
                    "standby_dsn_secret": "orders-db-primary-dsn",
                    "max_wait_seconds": 30,
                },
            },
            {
                "id": "rebuild",
                "action": "postgres.rebuild_standby",
                "needs": ["switch-back"],
                "timeout": 120,
                "with": {
                    "data_dir": str(standby.data),
                    "source_dsn_secret": "orders-db-primary-dsn",
                    "start": True,
                    "start_argv": pg_pair.start_argv(standby),
                    **node,
                },
            },
        ],
    )
    plan = make_plan("pg-pair-dr", status="active", rpo_seconds=60, applications=[app])

    # Replication cut: the primary commits 3 transactions the standby never receives.
    standby.query("ALTER SYSTEM SET primary_conninfo = ''")
    standby.query("SELECT pg_reload_conf()")
    wait_until(lambda: not standby.query("SELECT 1 FROM pg_stat_wal_receiver"), what="WAL receiver stopped")
    pg_pair.write(primary, 3)

    # A wrong secret: an ordinary step failure, naming it, before anything is touched; fixed, resumed.
    set_secret("orders-db-standby-dsn", "db-2.example.internal:5432")
    failover = services.start_failover(plan, execution_type="unplanned", actor=users["operator"])
    assert run_execution(failover.pk) == "failed"
    failed = StepRun.objects.get(execution=failover, step_key="pg-pair.check-lag")
    assert failed.error == (
        "postgres.check_lag: dsn_secret: secret 'orders-db-standby-dsn' is not a PostgreSQL DSN"
        " (expected a postgresql:// URI or key=value conninfo)"
    )
    assert primary.in_recovery() is False and primary.value("SHOW default_transaction_read_only") == "off"
    set_secret("orders-db-standby-dsn", standby.dsn)
    services.resume(failover, users["operator"], comment="standby DSN corrected")
    failover = _run(failover)
    assert _output(failover, "check-lag")["max_lag_seconds"] == 60  # the plan's RPO reached the template
    assert _output(failover, "fence")["fenced"] is True and _output(failover, "promote")["promoted"] is True
    loss = _output(failover, "data-loss")
    assert loss["data_loss_transactions"] == 3 and loss["data_loss_bytes"] > 0
    assert failover.data_loss_transactions == 3 and failover.data_loss_bytes == loss["data_loss_bytes"]
    assert failover.actual_rpo_seconds == loss["rpo_seconds"]
    assert standby.in_recovery() is False and primary.value("SHOW default_transaction_read_only") == "on"

    failback = _run(services.start_failback(plan, actor=users["operator"]))
    for node_ in (primary, standby):
        pg_pair.track(node_)
    assert _output(failback, "rewind")["method"] == "pg_rewind"
    assert _output(failback, "switch-back")["promote"]["promoted"] is True
    assert _output(failback, "rebuild")["method"] == "pg_basebackup"
    assert (failback.data_loss_bytes, failback.data_loss_transactions, failback.actual_rpo_seconds) == (0, 0, 0.0)
    assert primary.in_recovery() is False and primary.value("SHOW default_transaction_read_only") == "off"
    wait_until(lambda: pg_pair.streaming(primary, standby), what="the original standby streams again")
    pg_pair.write(primary)
    pg_pair.caught_up(primary, standby)
    # The 3 transactions the failover lost stay lost; everything written since is on both nodes.
    assert primary.value("SELECT count(*) FROM t") == standby.value("SELECT count(*) FROM t")
    # No secret value in anything the engine stored (events, outputs, errors, rendered parameters).
    for execution in (failover, failback):
        stored = json.dumps(
            [
                list(ExecutionEvent.objects.filter(execution=execution).values_list("message", "data")),
                list(StepRun.objects.filter(execution=execution).values_list("output", "error", "rendered")),
                execution.error,
            ],
            default=str,
        )
        found = stored.find(PASSWORD)
        assert found == -1, stored[max(0, found - 300) : found + 50]
