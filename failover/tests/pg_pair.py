"""A real PostgreSQL 16 primary + streaming standby on 127.0.0.1 for the postgres actions' tests.

Binaries from the `pgserver` wheel, started with core/localservers (postgres.py, procs.py): as
pgserver's unprivileged user when we are root, TCP on free ports, trust authentication (a DSN's password
is accepted and ignored, so tests can check that it never shows). Tests fail over, fence and rebuild the
pair at will; `reset()` brings it back to "one writable primary, one standby streaming from it" (the
node names may have swapped), rebuilding the standby with a base backup only when it is not healthy.
Every server it starts is stopped by pid at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.exceptions import InvalidInput
from core.localservers import postgres as pg
from core.localservers import procs
from failover.engine.actions import ActionResult, StepContext, run_action
from runbooks.actions import get_action

PASSWORD = "pw-Zq7-never-shown"  # trust auth ignores it; it must never appear in an output or error


def wait_until(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `check` (exceptions count as "not yet") until it returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(0.05)


@dataclass
class Node:
    name: str
    port: int
    data: Path
    user: str | None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    @property
    def where(self) -> str:
        return f"127.0.0.1:{self.port}"

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        return pg.query(self.port, sql, params, dbname="postgres", timeout=5)

    def value(self, sql: str, params: Any = None) -> Any:
        return self.query(sql, params)[0][0]

    def running(self) -> bool:
        return procs.alive(pg.postmaster_pid(self.data))

    def in_recovery(self) -> bool | None:
        try:
            return bool(self.value("SELECT pg_is_in_recovery()"))
        except Exception:
            return None

    def lsn(self, sql: str) -> int:
        high, _, low = str(self.value(sql)).partition("/")
        return (int(high, 16) << 32) + int(low, 16)


class PgPair:
    def __init__(self, root: Path, user: str | None = None) -> None:
        """`user`: the OS user the servers run as when we are root (default: pgserver's)."""
        self.root = root
        self.user = (user if os.geteuid() == 0 else None) if user else procs.server_user()
        procs.prepare(root, self.user)
        self.bin_dir = str(Path(procs.pg_bin("pg_ctl")).parent)
        self.nodes = {name: Node(name, procs.free_port(), root / name, self.user) for name in ("a", "b")}
        self.pids: set[int] = set()

    def up(self) -> None:
        """initdb a, start it, a base backup of it as b, streaming (close() stops whatever started)."""
        a, b = self.nodes["a"], self.nodes["b"]
        pg.initdb(a.data, self.user)
        self.start(a)
        a.query("CREATE TABLE IF NOT EXISTS t (id serial PRIMARY KEY, note text)")
        self._clone(b, a)

    # ----------------------------------------------------------------- processes
    def start(self, node: Node) -> None:
        self.pids.add(pg.start(node.data, node.port, node.name, self.user))

    def stop(self, node: Node, mode: str = "fast") -> None:
        pg.stop(node.data, self.user, mode=mode)

    def start_argv(self, node: Node) -> list[str]:
        """What postgres.rewind / rebuild_standby run to start `node` on its own port (start_argv)."""
        return [
            f"{self.bin_dir}/pg_ctl",
            *("-D", str(node.data), "-l", str(self.root / f"{node.name}.log"), "-w", "-t", "30"),
            *("-o", f"-p {node.port} -c cluster_name={node.name}", "start"),
        ]

    def track(self, node: Node) -> None:
        """Remember the pid of a server an action started, so close() stops it too."""
        pid = pg.postmaster_pid(node.data)
        if pid:
            self.pids.add(pid)

    def close(self) -> None:
        for node in self.nodes.values():
            self.track(node)
            if node.data.exists():
                self.stop(node, "immediate")
        left = procs.wait_gone(sorted(self.pids), 10)
        for pid in left:
            procs.kill(pid)
        left = procs.wait_gone(left, 5)
        shutil.rmtree(self.root, ignore_errors=True)
        assert not left, f"servers still running after the pair stopped: {left}"

    # ----------------------------------------------------------------- roles
    @property
    def primary(self) -> Node:
        return next(n for n in self.nodes.values() if n.in_recovery() is False)

    @property
    def standby(self) -> Node:
        return next(n for n in self.nodes.values() if n.in_recovery() is True)

    def other(self, node: Node) -> Node:
        return next(n for n in self.nodes.values() if n is not node)

    def streaming(self, primary: Node, standby: Node) -> bool:
        """`standby` streams from `primary` (its WAL receiver says so, and the primary has a streaming walsender)."""
        receiver = standby.query("SELECT status, sender_port FROM pg_stat_wal_receiver")
        sender = primary.query("SELECT state FROM pg_stat_replication")
        return receiver == [("streaming", primary.port)] and ("streaming",) in sender

    def healthy(self, primary: Node, standby: Node) -> bool:
        try:
            return (
                standby.in_recovery() is True
                and not standby.value("SELECT pg_is_wal_replay_paused()")
                and self.streaming(primary, standby)
            )
        except Exception:
            return False

    def reset(self) -> tuple[Node, Node]:
        """One writable primary and a standby streaming from it; returns (primary, standby)."""
        a, b = self.nodes["a"], self.nodes["b"]
        for node in (a, b):
            if not node.running():
                self.start(node)
        primary = a if a.in_recovery() is False else b if b.in_recovery() is False else None
        assert primary is not None, "neither node is a primary"
        if primary.value("SHOW default_transaction_read_only") == "on":
            primary.query("ALTER SYSTEM RESET default_transaction_read_only")
            primary.query("SELECT pg_reload_conf()")
            wait_until(lambda: primary.value("SHOW default_transaction_read_only") == "off", what="unfenced")
        standby = self.other(primary)
        if not self.healthy(primary, standby):
            self._clone(standby, primary)
        return primary, standby

    def _clone(self, standby: Node, primary: Node) -> None:
        """A fresh base backup of `primary` into `standby`'s directory, started and streaming."""
        self.stop(standby, "immediate")
        pg.basebackup(standby.data, primary.port, self.user)
        self.start(standby)  # cluster_name=<name>: the application_name pg_stat_replication shows
        wait_until(lambda: self.streaming(primary, standby), 30, f"{standby.name} streaming from {primary.name}")

    def write(self, node: Node, count: int = 1) -> None:
        """`count` committed transactions on `node`."""
        with pg.connect(node.port, "postgres", timeout=5) as conn:
            for i in range(count):
                conn.execute("INSERT INTO t (note) VALUES (%s)", (f"row {i}",))

    def caught_up(self, primary: Node, standby: Node) -> None:
        target = primary.lsn("SELECT pg_current_wal_lsn()")
        wait_until(lambda: standby.lsn("SELECT pg_last_wal_replay_lsn()") >= target, what="standby caught up")


# ----------------------------------------------------------------------------- running actions in tests
def step_ctx(secrets: dict[str, str], timeout: float | None = 20, log: list[str] | None = None) -> StepContext:
    """A StepContext whose ctx.secret reads `secrets` (a missing name fails like the secret store)."""

    def secret(name: str) -> str:
        if name not in secrets:
            raise InvalidInput(f"secret '{name}' is not defined")
        return secrets[name]

    lines = log if log is not None else []
    return StepContext(execution_id=1, step_key="pg", timeout=timeout, secret=secret, log=lines.append)


def run_step(action: str, params: dict[str, Any], ctx: StepContext) -> ActionResult:
    """Check `params` against the action's schema (executor and schema cannot drift apart), then run it."""
    errors = [e.message for e in get_action(action).validator.iter_errors(params)]
    assert errors == [], errors
    return run_action(action, params, ctx)


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts TCP connections and never answers (a hung server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]
