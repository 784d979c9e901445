"""The real servers each library template is run against end to end (runbooks/tests/test_template_runs.py).

A target factory takes a temp dir, starts the servers (PostgreSQL 16 from the pgserver wheel through
failover/tests/pg_pair.py, an HTTP endpoint on 127.0.0.1 …), sets up the disaster, yields the run's
parameters, the secrets to create in DRPlan's store and `verify` (asserts, on the real servers, the state
after the run), and stops everything by pid on exit. bench/templates.py runs the same targets.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from core.localservers import postgres as pg
from core.localservers import procs
from failover.tests.pg_pair import Node, PgPair

ROWS_BEFORE = 5  # committed (and replicated / backed up) before the disaster
CHECK_QUERY = "SELECT count(*) = 5 FROM t"  # the template's check: exactly ROWS_BEFORE rows


@dataclass
class TemplateTarget:
    params: dict[str, Any]  # run parameters for the template's `parameters`
    secrets: dict[str, str]  # secret name -> value, created in DRPlan's secret store before the run
    verify: Callable[[], None]  # asserts, on the real servers, the state after the failover


TargetFactory = Callable[[Path], AbstractContextManager[TemplateTarget]]


def _count(node: Node) -> int:
    return int(node.value("SELECT count(*) FROM t"))


def _writable(node: Node) -> bool:
    node.query("CREATE TABLE IF NOT EXISTS dr_check (at timestamptz DEFAULT now())")
    node.query("INSERT INTO dr_check DEFAULT VALUES")
    return node.in_recovery() is False


@contextlib.contextmanager
def _pair(root: Path, *, standby: bool = True) -> Iterator[PgPair]:
    pair = PgPair(root / "pg")
    try:
        if standby:
            pair.up()
        else:
            a = pair.nodes["a"]
            pg.initdb(a.data, pair.user)
            pair.start(a)
            a.query("CREATE TABLE IF NOT EXISTS t (id serial PRIMARY KEY, note text)")
        yield pair
    finally:
        pair.close()


@contextlib.contextmanager
def postgres_backup_restore(root: Path) -> Iterator[TemplateTarget]:
    """A primary with ROWS_BEFORE rows; a base backup of it; 3 rows more; the primary lost. The DR node is a
    new data directory on a new port."""
    with _pair(root, standby=False) as pair:
        primary = pair.nodes["a"]
        pair.write(primary, ROWS_BEFORE)
        backup = pair.root / "backup"
        pg.basebackup(backup, primary.port, pair.user, recovery_conf=False)
        pair.write(primary, 3)  # after the backup: lost with the primary
        pair.stop(primary, "immediate")
        dr = Node("dr", procs.free_port(), pair.root / "dr", pair.user)
        pair.nodes["dr"] = dr  # stopped by pair.close()

        def verify() -> None:
            assert dr.in_recovery() is False, "the restored node is not a primary"
            assert _count(dr) == ROWS_BEFORE, "the restored node does not hold exactly the backed-up rows"
            assert _writable(dr)

        yield TemplateTarget(
            params={
                "backup_dir": str(backup),
                "data_dir": str(dr.data),
                "port": dr.port,
                "log_file": str(pair.root / "dr.log"),
                "pg_bin_dir": pair.bin_dir,
                "os_user": pair.user or "",
                "start_timeout_seconds": 120,
                "check_query": CHECK_QUERY,
            },
            secrets={"pg_dr": dr.dsn},
            verify=verify,
        )


@contextlib.contextmanager
def postgres_pilot_light(root: Path) -> Iterator[TemplateTarget]:
    """A primary and a standby that caught up, then was shut down (the pilot light); the primary lost."""
    with _pair(root) as pair:
        primary, standby = pair.nodes["a"], pair.nodes["b"]
        pair.write(primary, ROWS_BEFORE)
        pair.caught_up(primary, standby)
        pair.stop(standby, "fast")
        pair.stop(primary, "immediate")

        def verify() -> None:
            assert standby.running() and standby.in_recovery() is False, "the standby is not a running primary"
            assert _count(standby) == ROWS_BEFORE
            assert _writable(standby)
            assert not primary.running()

        yield TemplateTarget(
            params={
                "standby_data_dir": str(standby.data),
                "standby_port": standby.port,
                "log_file": str(pair.root / "b.log"),
                "pg_bin_dir": pair.bin_dir,
                "os_user": pair.user or "",
                "start_timeout_seconds": 120,
                "promote_wait_seconds": 60,
                "check_query": CHECK_QUERY,
            },
            secrets={"pg_primary": primary.dsn, "pg_standby": standby.dsn},
            verify=verify,
        )


class _Registry(BaseHTTPRequestHandler):
    """Where clients look the primary up (a stand-in for a Consul KV key or a proxy's admin API): PUT stores the
    JSON body, GET returns it."""

    value: dict[str, Any] = {}

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            type(self).value = json.loads(self.rfile.read(length))
        except ValueError:
            self._answer(400, {"error": "not JSON"})
            return
        self._answer(200, type(self).value)

    def do_GET(self) -> None:
        self._answer(200, type(self).value)


@contextlib.contextmanager
def _registry(initial: dict[str, Any]) -> Iterator[tuple[str, Callable[[], dict[str, Any]]]]:
    handler = type("Registry", (_Registry,), {"value": dict(initial)})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/kv/service/postgres/primary", lambda: handler.value
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@contextlib.contextmanager
def postgres_active_passive(root: Path) -> Iterator[TemplateTarget]:
    """A primary serving, a standby streaming from it, clients pointed at the primary by the registry."""
    with _pair(root) as pair:
        primary, standby = pair.nodes["a"], pair.nodes["b"]
        pair.write(primary, ROWS_BEFORE)
        pair.caught_up(primary, standby)
        with _registry({"host": "127.0.0.1", "port": primary.port}) as (url, current):

            def verify() -> None:
                assert standby.in_recovery() is False, "the standby was not promoted"
                assert primary.value("SHOW default_transaction_read_only") == "on", "the old primary is not fenced"
                now = current()
                assert (now.get("host"), int(now.get("port", 0))) == ("127.0.0.1", standby.port), now
                assert _count(standby) == ROWS_BEFORE
                assert _writable(standby)

            yield TemplateTarget(
                params={
                    "max_lag_seconds": 300,
                    "promote_wait_seconds": 60,
                    "repoint_url": url,
                    "standby_host": "127.0.0.1",
                    "standby_port": standby.port,
                    "check_query": CHECK_QUERY,
                },
                secrets={"pg_primary": primary.dsn, "pg_standby": standby.dsn},
                verify=verify,
            )


# ----------------------------------------------------------------------------- the DR lab's own templates
@contextlib.contextmanager
def _lab(root: Path) -> Iterator[dict[str, Any]]:
    """The DR lab (lab/cluster.py: PostgreSQL pair, Redis pair, the orders app writing through them), with its
    nodes reached over SSH (the lab's sshd) as the templates expect; stopped by pid on exit."""
    import pytest

    from core.localservers import sshd
    from lab import cluster

    if not sshd.available():
        pytest.skip(f"Debian's openssh-server is not installed ({sshd.SSHD}); run scripts/ensure_sshd.sh")
    lab_root = root / "lab"
    previous = os.environ.get("DRPLAN_LAB_DIR")
    os.environ["DRPLAN_LAB_DIR"] = str(lab_root)
    try:
        yield cluster.up(root=lab_root, ssh=True, log=lambda _: None)
    finally:
        try:
            cluster.down(root=lab_root, log=lambda _: None)
        finally:
            if previous is None:
                os.environ.pop("DRPLAN_LAB_DIR", None)
            else:
                os.environ["DRPLAN_LAB_DIR"] = previous
            shutil.rmtree(lab_root, ignore_errors=True)


def _lab_target(slug: str, state: dict[str, Any], verify: Callable[[], None]) -> TemplateTarget:
    """The lab's parameters and secrets, as `manage.py lab up` stores them, limited to what `slug` declares."""
    from lab.setup import lab_parameters, secret_values
    from runbooks import library

    template = library.get_template(slug)
    declared = {p["name"] for p in template.parameters()}
    return TemplateTarget(
        params={name: value for name, value in lab_parameters(state).items() if name in declared},
        secrets={name: value for name, (value, _) in secret_values(state).items() if name in template.secrets},
        verify=verify,
    )


def _app_status(state: dict[str, Any], wait_ack: float = 20) -> dict[str, Any]:
    from lab.cluster import app_url

    with urllib.request.urlopen(f"{app_url(state)}/status?wait_ack={wait_ack}", timeout=wait_ack + 10) as answer:
        return json.loads(answer.read())


@contextlib.contextmanager
def postgres_failover(root: Path) -> Iterator[TemplateTarget]:
    """The lab serving orders from pg1, pg2 streaming; the template fails over to pg2 (fence, promote, the loss
    read over SSH with pg_waldump, the app repointed)."""
    with _lab(root) as state:
        pg2 = state["postgres"]["pg2"]

        def verify() -> None:
            assert pg.query(pg2["port"], "SELECT pg_is_in_recovery()", dbname="postgres", timeout=5) == [(False,)]
            status = _app_status(state)
            assert status["switch"]["verified"] is True, status

        yield _lab_target("postgres-failover", state, verify)


@contextlib.contextmanager
def redis_failover(root: Path) -> Iterator[TemplateTarget]:
    """The lab's Redis pair with the app writing through redis1; the template switches over to redis2."""
    import redis

    with _lab(root) as state:
        port = state["redis"]["redis2"]["port"]

        def verify() -> None:
            from lab.state import read_route

            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=5) as client:
                assert client.info("replication")["role"] == "master"
            route = read_route(root / "lab")["redis"]
            assert (route.get("node"), route.get("epoch")) == ("redis2", 2), route  # repointed once, to redis2
            _app_status(state)  # the app acknowledges orders again (200, else HTTPError 503)

        yield _lab_target("redis-failover", state, verify)


TARGETS: dict[str, TargetFactory] = {
    "postgres-backup-restore": postgres_backup_restore,
    "postgres-pilot-light": postgres_pilot_light,
    "postgres-active-passive": postgres_active_passive,
    "postgres-failover": postgres_failover,
    "redis-failover": redis_failover,
}
