"""One local PostgreSQL 16 server (binaries from the `pgserver` wheel), on 127.0.0.1 TCP only.

Used by the DR lab (lab/cluster.py) and the postgres actions' test pair (failover/tests/pg_pair.py).
`initdb(password=...)` makes TCP logins (replication too) ask for a SCRAM password; without one they
are trusted. Programs that connect to a server get the password in PGPASSWORD, never on a command line.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Any

from core.localservers import procs

HOST = "127.0.0.1"
SUPERUSER = "postgres"

# Appended to postgresql.conf of the first server; base backups and rewinds copy it.
SERVER_CONF = """
# --- DRPlan local server ---
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
max_connections = 120          # a local cluster: 2 web nodes, 2 worker clusters, each process a pool
logging_collector = off
"""


def connect(
    port: int,
    dbname: str = "postgres",
    *,
    password: str | None = None,
    timeout: float = 2.0,
    autocommit: bool = True,
) -> Any:
    import psycopg

    return psycopg.connect(
        host=HOST,
        port=port,
        user=SUPERUSER,
        dbname=dbname,
        password=password,
        connect_timeout=max(1, int(timeout)),
        autocommit=autocommit,
    )


def query(
    port: int,
    sql: str,
    params: Any = None,
    *,
    dbname: str = "postgres",
    password: str | None = None,
    timeout: float = 2.0,
) -> list[tuple]:
    """All rows of one statement (autocommit); raises on connection errors."""
    with connect(port, dbname, password=password, timeout=timeout) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def reachable(port: int, *, password: str | None = None, timeout: float = 1.0) -> bool:
    try:
        query(port, "SELECT 1", password=password, timeout=timeout)
        return True
    except Exception:
        return False


def postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError, PermissionError):
        return None


def password_env(password: str | None) -> dict[str, str]:
    return {"PGPASSWORD": password} if password else {}


def initdb(data: Path, user: str | None, *, password: str | None = None, conf: str = SERVER_CONF) -> None:
    """A new cluster in `data` (owned by `user`), `conf` appended to its postgresql.conf. With `password`
    the superuser has it and TCP logins need it (scram-sha-256); else they are trusted."""
    data.mkdir(parents=True, exist_ok=True)
    procs.chown(data, user)
    data.chmod(0o700)
    argv = [procs.pg_bin("initdb"), "-D", str(data), "-U", SUPERUSER, "--encoding=UTF8", "--locale=C"]
    pwfile = data.parent / f".{data.name}.pwfile"
    try:
        if password:
            pwfile.write_text(password + "\n")
            pwfile.chmod(0o600)
            procs.chown(pwfile, user)
            argv += ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            argv += ["--auth=trust"]
        procs.run(argv, user, cwd=data.parent)
    finally:
        pwfile.unlink(missing_ok=True)
    with open(data / "postgresql.conf", "a") as handle:
        handle.write(conf)


def start(
    data: Path,
    port: int | None,
    name: str,
    user: str | None,
    *,
    extra: str = "",
    timeout: int = 30,
    log: Path | None = None,
) -> int:
    """pg_ctl start -w (on `port`, else the one its configuration sets); returns the postmaster pid."""
    log = log or data.parent / f"{name}.log"
    if not log.exists():
        log.touch()
        procs.chown(log, user)
    options = (f"-p {port} -c cluster_name={name} " if port else "") + extra
    argv = [procs.pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", str(timeout)]
    argv += ["-o", options.strip()] if options.strip() else []
    procs.run([*argv, "start"], user, cwd=data.parent, timeout=timeout + 10)
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


def basebackup(
    target: Path, source_port: int, user: str | None, *, recovery_conf: bool = True, password: str | None = None
) -> None:
    """pg_basebackup -X stream [-R] of the server on `source_port` into `target` (replaced if it exists)."""
    if target.exists():
        shutil.rmtree(target)
    argv = [procs.pg_bin("pg_basebackup"), "-D", str(target), "-h", HOST, "-p", str(source_port), "-U", SUPERUSER]
    argv += ["-X", "stream", "-c", "fast", "--no-password"] + (["-R"] if recovery_conf else [])
    procs.run(argv, user, cwd=target.parent, timeout=300, env=password_env(password))


def set_conf(port: int, name: str, value: str, *, password: str | None = None) -> None:
    """ALTER SYSTEM SET name = value; reload. `name` is the caller's own constant; the value is quoted."""
    from psycopg import sql

    with connect(port, password=password) as conn:
        conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
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
