"""A real MariaDB primary and replica on 127.0.0.1 (Debian's mariadb-server, scripts/ensure_mariadb.sh) for the
mariadb actions' tests and the MariaDB replication template: each node's datadir is made by mariadb-install-db
in a folder under var/, and each mariadbd runs as an unprivileged user (ourselves, or, when we are root, the
`pgserver` user the local PostgreSQL servers use) in its own session, stopped by its pid. The replica follows
the primary with GTID replication (MASTER_USE_GTID=slave_pos) and is read_only.

Users on both nodes: `admin` (every privilege), `repl` (REPLICATION SLAVE) and `app` (reads and writes the
`shop` database, no privilege that bypasses read_only), each with its own password, over TCP."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.localservers import procs
from failover.tests.engine_support import wait_for

HOST = "127.0.0.1"
MARIADBD = "/usr/sbin/mariadbd"
DATABASE = "shop"


def binaries() -> tuple[str, str]:
    install_db = shutil.which("mariadb-install-db")
    if not (Path(MARIADBD).exists() and install_db):
        pytest.skip("mariadb-server is not installed: run scripts/ensure_mariadb.sh (Debian's mariadb-server)")
    return MARIADBD, install_db


@dataclass
class MariaNode:
    name: str
    port: int
    socket: str
    passwords: dict[str, str]
    proc: subprocess.Popen = field(repr=False)
    log: Path = field(repr=False)

    def dsn(self, user: str = "admin") -> str:
        return f"mysql://{user}:{self.passwords[user]}@{HOST}:{self.port}/{DATABASE}"

    def connect(self, user: str = "admin", **extra: Any) -> Any:
        import pymysql

        return pymysql.connect(
            host=HOST,
            port=self.port,
            user=user,
            password=self.passwords[user],
            database=DATABASE,
            connect_timeout=10,
            read_timeout=30,
            autocommit=True,
            **extra,
        )

    def query(self, sql: str, args: Any = None, user: str = "admin") -> list[tuple]:
        with contextlib.closing(self.connect(user)) as conn, conn.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def value(self, sql: str, user: str = "admin") -> Any:
        return self.query(sql, user=user)[0][0]

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGCONT)  # a test may have paused it
            self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _bootstrap(node_socket: str, sql: list[str]) -> None:
    """Run statements as root over the node's unix socket (root has no password there, nothing else does)."""
    import pymysql

    conn = pymysql.connect(unix_socket=node_socket, user="root", autocommit=True)
    with contextlib.closing(conn), conn.cursor() as cursor:
        for statement in sql:
            cursor.execute(statement)


def start_node(root: Path, name: str, server_id: int, passwords: dict[str, str], user: str | None) -> MariaNode:
    mariadbd, install_db = binaries()
    home = Path(tempfile.mkdtemp(prefix=f"mdb-{name}-", dir=root))  # short: the socket path is at most 107 bytes
    procs.chown(home, user)
    data = home / "data"
    install_argv = [install_db, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal"]
    install_argv += ["--skip-test-db", "--skip-name-resolve", *([f"--user={user}"] if user else [])]
    procs.run(install_argv, user, cwd=home, timeout=300)
    port = procs.free_port()
    sock = str(home / "s")
    log = home / "mariadbd.log"
    argv = [
        mariadbd,
        "--no-defaults",
        f"--datadir={data}",
        f"--socket={sock}",
        f"--port={port}",
        f"--bind-address={HOST}",
        f"--pid-file={home / 'pid'}",
        f"--log-error={log}",
        f"--server-id={server_id}",
        "--log-bin=binlog",
        "--binlog-format=ROW",
        "--log-slave-updates",
        "--gtid-strict-mode=1",
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=16M",
        "--innodb-log-file-size=16M",
        "--performance-schema=OFF",
        "--skip-log-bin-trust-function-creators",
        "--max-connections=50",
    ]
    output = (home / "mariadbd.out").open("ab")
    procs.chown(home / "mariadbd.out", user)
    proc = subprocess.Popen(
        argv,
        stdout=output,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=home,
        start_new_session=True,
        **({"user": user, "group": user, "extra_groups": []} if user else {}),
    )
    output.close()
    node = MariaNode(name, port, sock, passwords, proc, log)

    def answers() -> bool:
        if proc.poll() is not None:
            text = "".join(p.read_text() for p in (log, home / "mariadbd.out") if p.exists())
            raise AssertionError(f"mariadbd {name} exited {proc.returncode}: {text[-3000:]}")
        return Path(sock).exists() and procs.port_open(port)

    try:
        wait_for(answers, timeout=120, interval=0.2)
    except BaseException:
        node.stop()
        raise
    return node


@dataclass
class MariaPair:
    primary: MariaNode
    replica: MariaNode
    root: Path

    def stop(self) -> None:
        self.replica.stop()
        self.primary.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _users(passwords: dict[str, str]) -> list[str]:
    return [
        f"CREATE USER 'admin'@'{HOST}' IDENTIFIED BY '{passwords['admin']}'",
        f"GRANT ALL PRIVILEGES ON *.* TO 'admin'@'{HOST}' WITH GRANT OPTION",
        f"CREATE USER 'repl'@'{HOST}' IDENTIFIED BY '{passwords['repl']}'",
        f"GRANT REPLICATION SLAVE ON *.* TO 'repl'@'{HOST}'",
        f"CREATE USER 'app'@'{HOST}' IDENTIFIED BY '{passwords['app']}'",
        f"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON {DATABASE}.* TO 'app'@'{HOST}'",
    ]


def start_pair() -> MariaPair:
    """A primary with database `shop` (table orders) and a replica following it with GTID, caught up. Their
    files live under var/ (like the PostgreSQL pairs'), not in pytest's temporary folder: another pytest run
    makes that folder private again, and the server user could no longer reach its datadir."""
    from django.conf import settings

    root = Path(settings.VAR_DIR) / f"mariadb-{os.getpid()}-{secrets.token_hex(3)}"
    user = procs.server_user()
    procs.prepare(root, user)
    passwords = {name: secrets.token_hex(12) for name in ("admin", "repl", "app")}
    try:
        primary = start_node(root, "primary", 1, passwords, user)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        replica = start_node(root, "replica", 2, passwords, user)
    except BaseException:
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    pair = MariaPair(primary, replica, root)
    try:
        # The same users on both, outside the binary log: the replica then starts from an empty GTID position.
        for node in (primary, replica):
            _bootstrap(node.socket, ["SET sql_log_bin = 0", *_users(passwords), "SET sql_log_bin = 1"])
        _bootstrap(
            primary.socket,
            [
                f"CREATE DATABASE {DATABASE}",
                "CREATE TABLE shop.orders (id INT PRIMARY KEY AUTO_INCREMENT, item VARCHAR(64))",
                "INSERT INTO shop.orders (item) VALUES ('first')",
            ],
        )
        _bootstrap(
            replica.socket,
            [
                f"CHANGE MASTER TO MASTER_HOST='{HOST}', MASTER_PORT={primary.port}, MASTER_USER='repl', "
                f"MASTER_PASSWORD='{passwords['repl']}', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
                "START SLAVE",
                "SET GLOBAL read_only = ON",
            ],
        )
        wait_for(lambda: caught_up(pair), timeout=60, interval=0.2)
    except BaseException:
        pair.stop()
        raise
    return pair


def caught_up(pair: MariaPair) -> bool:
    import pymysql

    try:
        gtid = pair.primary.value("SELECT @@gtid_binlog_pos")
        conn = pair.replica.connect(cursorclass=pymysql.cursors.DictCursor)
        with contextlib.closing(conn), conn.cursor() as cursor:
            cursor.execute("SHOW SLAVE STATUS")
            status = cursor.fetchone()
            cursor.execute("SELECT @@gtid_slave_pos AS pos")
            pos = cursor.fetchone()["pos"]
    except pymysql.err.OperationalError:
        return False
    running = status and status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"
    return bool(running and pos == gtid)


@contextlib.contextmanager
def running_pair() -> Any:
    pair = start_pair()
    try:
        yield pair
    finally:
        pair.stop()
