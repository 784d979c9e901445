"""The mariadb actions against a real MariaDB primary and GTID replica on 127.0.0.1 (Debian's mariadb-server, run
as an unprivileged user by failover/tests/mariadb_support.py); a silent TCP listener for the timeout."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pymysql
import pytest

from failover.engine.actions import run_action
from failover.tests.aws_support import Ctx
from failover.tests.engine_support import wait_for
from failover.tests.mariadb_support import DATABASE, HOST, MariaPair, caught_up, start_pair
from runbooks.actions import get_action

pytestmark = pytest.mark.realsystem


def valid(action: str, params: dict) -> dict:
    spec = get_action(action)
    assert spec is not None
    assert [e.message for e in spec.validator.iter_errors(params)] == []
    return params


def secrets_of(pair: MariaPair) -> dict[str, str]:
    return {
        "main": pair.primary.dsn(),
        "dr": pair.replica.dsn(),
        "main-app": pair.primary.dsn("app"),
        "dr-app": pair.replica.dsn("app"),
    }


@pytest.fixture(scope="module")
def pair() -> Iterator[MariaPair]:
    started = start_pair()
    yield started
    started.stop()


def test_schemas_refuse_bad_parameters() -> None:
    def errors(action: str, params: dict) -> list[str]:
        return [e.message for e in get_action(action).validator.iter_errors(params)]

    assert errors("mariadb.replication_status", {"dsn_secret": "x", "max_lag_seconds": -1})
    assert errors("mariadb.replication_status", {"dsn_secret": "x", "expect_role": "leader"})
    assert errors("mariadb.set_read_only", {"dsn_secret": "x"})
    assert errors("mariadb.promote", {"dsn_secret": "x", "force": True})
    assert errors("mariadb.check_writable", {"dsn_secret": "x", "table": "a; DROP TABLE b"})
    assert errors("mariadb.replication_status", {"dsn_secret": "x", "max_lag_seconds": "{{ params.lag }}"}) == []


def test_replication_status_of_the_replica_and_the_primary(pair: MariaPair) -> None:
    ctx = Ctx(secrets_of(pair))
    params = valid("mariadb.replication_status", {"dsn_secret": "dr", "expect_role": "replica", "max_lag_seconds": 5})
    result = run_action("mariadb.replication_status", params, ctx)
    assert result.ok, result.error
    out = result.output
    assert (out["role"], out["io_running"], out["sql_running"], out["read_only"]) == ("replica", True, True, True)
    assert out["lag_seconds"] == 0
    assert out["primary"] == f"{HOST}:{pair.primary.port}"
    assert out["gtid_current_pos"] == pair.primary.value("SELECT @@gtid_binlog_pos")
    result = run_action("mariadb.replication_status", {"dsn_secret": "main", "max_lag_seconds": 5}, ctx)
    assert not result.ok
    assert result.output["role"] == "primary" and result.output["read_only"] is False
    assert result.error == f"mariadb {HOST}:{pair.primary.port} (dsn_secret 'main'): is not a replica: no lag to check"
    result = run_action("mariadb.replication_status", {"dsn_secret": "dr", "expect_role": "primary"}, ctx)
    assert result.error == f"mariadb {HOST}:{pair.replica.port} (dsn_secret 'dr'): is a replica, expected a primary"


def test_read_only_fences_the_application_and_check_writable_sees_it(pair: MariaPair) -> None:
    ctx = Ctx(secrets_of(pair))
    table = f"{DATABASE}.drplan_heartbeat"
    writable = run_action(
        "mariadb.check_writable", valid("mariadb.check_writable", {"dsn_secret": "main-app", "table": table}), ctx
    )
    assert writable.ok, writable.error
    assert writable.output["server_id"] == 1
    try:
        fence = run_action(
            "mariadb.set_read_only", valid("mariadb.set_read_only", {"dsn_secret": "main", "read_only": True}), ctx
        )
        assert fence.ok, fence.error
        assert fence.output == {"read_only": True, "previous": False, "changed": True}
        with pytest.raises(pymysql.err.OperationalError, match="read-only"):
            pair.primary.query("INSERT INTO shop.orders (item) VALUES ('blocked')", user="app")
        refused = run_action("mariadb.check_writable", {"dsn_secret": "main-app", "table": table}, ctx)
        assert not refused.ok
        assert refused.error.startswith(
            f"mariadb {HOST}:{pair.primary.port} (dsn_secret 'main-app'): write to {table}: error 1290"
        )
    finally:
        opened = run_action("mariadb.set_read_only", {"dsn_secret": "main", "read_only": False}, ctx)
    assert opened.ok and opened.output["changed"] is True
    assert run_action("mariadb.check_writable", {"dsn_secret": "main-app", "table": table}, ctx).ok


def test_errors_name_the_server_never_the_password(pair: MariaPair) -> None:
    wrong = pair.primary.dsn("app").replace(pair.primary.passwords["app"], "wrong-password-123")
    ctx = Ctx({"wrong": wrong, "bad": "postgresql://x@y/z", "main": pair.primary.dsn()})
    result = run_action("mariadb.replication_status", {"dsn_secret": "wrong"}, ctx)
    assert result.error.startswith(
        f"mariadb {HOST}:{pair.primary.port} (dsn_secret 'wrong'): SHOW SLAVE STATUS: error 1045"
    )
    assert "wrong-password-123" not in result.error
    result = run_action("mariadb.replication_status", {"dsn_secret": "bad"}, ctx)
    assert result.error == "dsn_secret 'bad' is not a MariaDB DSN (mysql://user:password@host:port/db)"
    result = run_action("mariadb.replication_status", {"dsn_secret": "nope"}, ctx)
    assert result.error == "dsn_secret 'nope': secret 'nope' is not defined"
    ctx.allowed_hosts = {"main": ["db.example.com"]}
    result = run_action("mariadb.promote", {"dsn_secret": "main"}, ctx)
    assert result.error == (
        f"mariadb {HOST}:{pair.primary.port} (dsn_secret 'main'): secret 'main' may not be sent to "
        f"{HOST}:{pair.primary.port} (allowed hosts: db.example.com)"
    )


def test_promote_measures_the_transactions_the_replica_lacks() -> None:
    own = start_pair()
    try:
        ctx = Ctx(secrets_of(own))
        # the link breaks: two transactions reach the primary only
        own.replica.query("STOP SLAVE IO_THREAD")
        own.primary.query("INSERT INTO shop.orders (item) VALUES ('lost-1')", user="app")
        own.primary.query("INSERT INTO shop.orders (item) VALUES ('lost-2')", user="app")
        params = valid("mariadb.promote", {"dsn_secret": "dr", "primary_dsn_secret": "main"})
        result = run_action("mariadb.promote", params, ctx)
        assert result.ok, result.error
        assert result.output["promoted"] is True and result.output["read_only"] is False
        assert result.output["previous_primary"] == f"{HOST}:{own.primary.port}"
        assert result.output["data_loss_transactions"] == 2
        assert result.measurements == {"data_loss_transactions": 2.0}
        assert own.replica.query("SHOW SLAVE STATUS") == []
        own.replica.query("INSERT INTO shop.orders (item) VALUES ('on the new primary')", user="app")
        status = run_action("mariadb.replication_status", {"dsn_secret": "dr", "expect_role": "primary"}, ctx)
        assert status.ok and status.output["read_only"] is False
        again = run_action("mariadb.promote", params, ctx)
        assert again.ok and again.output["promoted"] is False and again.output["already_primary"] is True
    finally:
        own.stop()


def test_promote_of_a_caught_up_replica_loses_nothing(pair: MariaPair) -> None:
    """Runs last on the module's pair: it promotes its replica."""
    ctx = Ctx(secrets_of(pair))
    pair.primary.query("INSERT INTO shop.orders (item) VALUES ('paid')", user="app")
    wait_for(lambda: caught_up(pair), timeout=30)
    assert run_action("mariadb.set_read_only", {"dsn_secret": "main", "read_only": True}, ctx).ok
    result = run_action("mariadb.promote", {"dsn_secret": "dr", "primary_dsn_secret": "main"}, ctx)
    assert result.ok, result.error
    assert result.output["data_loss_transactions"] == 0
    assert result.measurements == {"data_loss_transactions": 0.0, "rpo_seconds": 0.0}
    assert pair.replica.query("SELECT item FROM shop.orders ORDER BY id")[-1] == ("paid",)


def test_a_silent_server_times_out_and_a_cancel_ends_the_step(silent: int) -> None:
    dsn = f"mysql://admin:pw@{HOST}:{silent}/shop"
    result = run_action("mariadb.replication_status", {"dsn_secret": "db"}, Ctx({"db": dsn}, timeout=1))
    assert result.error == f"mariadb {HOST}:{silent} (dsn_secret 'db'): SHOW SLAVE STATUS: timed out after 1s"
    ctx = Ctx({"db": dsn}, timeout=60)
    threading.Timer(0.5, ctx.cancelled.set).start()
    result = run_action("mariadb.set_read_only", {"dsn_secret": "db", "read_only": True}, ctx)
    assert result.error == f"mariadb {HOST}:{silent} (dsn_secret 'db'): SET GLOBAL read_only = ON: cancelled"
