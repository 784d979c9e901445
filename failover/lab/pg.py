"""One PostgreSQL 16 server of the lab (binaries from the `pgserver` wheel), on 127.0.0.1 TCP only."""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Any

from failover.lab import procs
from failover.lab.state import DBNAME, DBUSER, HOST

# Appended to postgresql.conf of the first primary; base backups and rewinds copy it.
SERVER_CONF = """
# --- DRPlan lab ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 10
wal_keep_size = '512MB'
wal_log_hints = on              # pg_rewind needs it
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = '1s'
wal_retrieve_retry_interval = '1s'
wal_sender_timeout = '10s'
wal_receiver_timeout = '10s'
shared_buffers = '32MB'
max_connections = 40
logging_collector = off
"""


def connect(port: int, dbname: str = DBNAME, *, timeout: float = 2.0, autocommit: bool = True) -> Any:
    import psycopg

    return psycopg.connect(
        host=HOST, port=port, user=DBUSER, dbname=dbname, connect_timeout=max(1, int(timeout)), autocommit=autocommit
    )


def query(port: int, sql: str, params: Any = None, *, dbname: str = DBNAME, timeout: float = 2.0) -> list[tuple]:
    """All rows of one statement (autocommit); raises on connection errors."""
    with connect(port, dbname, timeout=timeout) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def reachable(port: int, timeout: float = 1.0) -> bool:
    try:
        query(port, "SELECT 1", dbname="postgres", timeout=timeout)
        return True
    except Exception:
        return False


def postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def initdb(data: Path, user: str | None) -> None:
    data.mkdir(parents=True, exist_ok=True)
    procs.chown(data, user)
    data.chmod(0o700)
    procs.run(
        [procs.pg_bin("initdb"), "-D", str(data), "-U", DBUSER, "--auth=trust", "--encoding=UTF8", "--locale=C"],
        user,
        cwd=data.parent,
    )
    with open(data / "postgresql.conf", "a") as handle:
        handle.write(SERVER_CONF)


def start(data: Path, port: int, name: str, user: str | None, *, extra: str = "", timeout: int = 30) -> int:
    """pg_ctl start -w on `port`; returns the postmaster pid."""
    log = data.parent / f"{name}.log"
    if not log.exists():
        log.touch()
        procs.chown(log, user)
    options = f"-p {port} -c cluster_name={name} {extra}".strip()
    procs.run(
        [procs.pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", str(timeout), "-o", options, "start"],
        user,
        cwd=data.parent,
        timeout=timeout + 10,
    )
    pid = postmaster_pid(data)
    if pid is None:
        raise RuntimeError(f"{name} started but {data}/postmaster.pid is missing")
    return pid


def stop(data: Path, user: str | None, *, mode: str = "fast", timeout: int = 20) -> None:
    """pg_ctl stop -m mode; SIGKILL the postmaster if that fails. Returns when it is gone."""
    pid = postmaster_pid(data)
    if pid is None or not procs.alive(pid):
        return
    children = procs.descendants(pid)
    try:
        procs.run(
            [procs.pg_bin("pg_ctl"), "-D", str(data), "-m", mode, "-w", "-t", str(timeout), "stop"],
            user,
            cwd=data.parent,
            timeout=timeout + 10,
        )
    except Exception:
        procs.kill(pid)
    left = procs.wait_gone([pid, *children], 10)
    for straggler in left:
        procs.kill(straggler)
    procs.wait_gone(left, 5)


def basebackup(target: Path, source_port: int, user: str | None, *, recovery_conf: bool = True) -> None:
    """pg_basebackup -X stream [-R] of the server on `source_port` into `target` (must not exist)."""
    if target.exists():
        shutil.rmtree(target)
    argv = [procs.pg_bin("pg_basebackup"), "-D", str(target), "-h", HOST, "-p", str(source_port), "-U", DBUSER]
    argv += ["-X", "stream", "-c", "fast"] + (["-R"] if recovery_conf else [])
    procs.run(argv, user, cwd=target.parent, timeout=300)


def rewind(target: Path, source_port: int, user: str | None) -> str:
    """pg_rewind the (stopped) `target` onto the server on `source_port`, writing standby config (-R)."""
    for signal_file in ("standby.signal", "recovery.signal"):
        (target / signal_file).unlink(missing_ok=True)  # single-user crash recovery refuses standby mode
    source = f"host={HOST} port={source_port} user={DBUSER} dbname=postgres"
    return procs.run(
        [procs.pg_bin("pg_rewind"), "--target-pgdata", str(target), "--source-server", source, "-R"],
        user,
        cwd=target.parent,
        timeout=300,
    )


def controldata(data: Path, user: str | None) -> dict[str, str]:
    out = procs.run([procs.pg_bin("pg_controldata"), "-D", str(data)], user, cwd=data.parent)
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if v}


def set_conf(port: int, name: str, value: str) -> None:
    """ALTER SYSTEM SET name = value; reload."""
    with connect(port, "postgres") as conn:
        conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")  # names are ours, values quoted
        conn.execute("SELECT pg_reload_conf()")


def wait_until(check: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):  # not up yet
            if check():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
