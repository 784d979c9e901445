"""The mariadb actions: replication status, promotion, read_only and a write check of MariaDB servers (PyMySQL).

    - {id: lag, action: mariadb.replication_status, with: {dsn_secret: orders-dr-dsn, max_lag_seconds: 10}}
    - {id: fence, action: mariadb.set_read_only, with: {dsn_secret: orders-main-dsn, read_only: true}}
    - {id: promote, action: mariadb.promote, with: {dsn_secret: orders-dr-dsn, primary_dsn_secret: orders-main-dsn}}
    - {id: writes, action: mariadb.check_writable, with: {dsn_secret: orders-dr-app-dsn, table: shop.drplan_heartbeat}}

A server is reached through a secret holding its DSN (mysql://user:password@host:port/db, or mariadb://);
errors and log lines name it `mariadb HOST:PORT (dsn_secret 'NAME')`, never with the DSN or its password. If
the secret has allowed hosts, the DSN's host must be one of them. Every call is bounded by the step's timeout
(30 s when it has none; connecting at most CONNECT_TIMEOUT) and a cancel closes the connection under it.

Promotion. `mariadb.promote` stops the IO thread (nothing more is fetched), waits until the SQL thread has
applied every event the replica already received (within the step's timeout), then STOP SLAVE, RESET SLAVE
ALL and read_only OFF. With `primary_dsn_secret`, when the old primary still answers, the transactions it has
that the new primary lacks are counted from the GTID positions (per replication domain, the sequence number
difference) and reported as `data_loss_transactions` (and `rpo_seconds` 0 when none).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql
import pymysql.cursors

from failover.engine.actions import ActionResult, StepContext, executor
from failover.engine.actions.sessions import ActionFailed, StepSession, run_session

CONNECT_TIMEOUT = 5.0
PROBE_TIMEOUT = 2.0  # for the old primary after a promotion: it is often down, and the promotion is done
POLL_INTERVAL = 0.1
DSN_FORM = "mysql://user:password@host:port/db"
TABLE = re.compile(r"^[A-Za-z0-9_]{1,64}(\.[A-Za-z0-9_]{1,64})?$")


class _Server:
    """One MariaDB server, reached through its DSN secret; one connection, opened on first use."""

    def __init__(self, param: str, name: str, dsn: str, connect_timeout: float) -> None:
        parts = urlsplit(dsn)
        if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
            raise ValueError
        self.host, self.port = parts.hostname, parts.port or 3306
        self.user = unquote(parts.username or "")
        self.password = unquote(parts.password or "")
        self.database = unquote(parts.path.lstrip("/")) or None
        self.label = f"mariadb {self.host}:{self.port} ({param} '{name}')"
        self.connect_timeout = connect_timeout
        self.conn: Any = None

    def open(self, read_timeout: float) -> Any:
        if self.conn is None:
            self.conn = pymysql.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                database=self.database,
                connect_timeout=self.connect_timeout,
                read_timeout=max(1, int(read_timeout) + 1),
                write_timeout=max(1, int(read_timeout) + 1),
                autocommit=True,
                cursorclass=pymysql.cursors.DictCursor,
            )
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None

    def abort(self) -> None:
        """Close the socket under a running call (a cancel, the step's deadline)."""
        conn = self.conn
        sock = getattr(conn, "_sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(2)

    def describe(self, exc: BaseException) -> str:
        if isinstance(exc, pymysql.err.MySQLError) and exc.args and isinstance(exc.args[0], int):
            text = f"error {exc.args[0]}: {exc.args[1] if len(exc.args) > 1 else ''}".strip()
        else:
            text = str(exc) or type(exc).__name__
        return text.replace(self.password, "***") if self.password else text


class _Session(StepSession):
    """The servers one step opened, and its deadline: every query goes through `run`."""

    poll_interval = POLL_INTERVAL

    def server(self, param: str, name: str, connect_timeout: float = CONNECT_TIMEOUT) -> _Server:
        dsn = self.read_secret(param, name)
        try:
            server = _Server(param, name, dsn, min(connect_timeout, max(0.5, self.remaining())))
        except ValueError:
            raise ActionFailed(f"{param} '{name}' is not a MariaDB DSN ({DSN_FORM})") from None
        return self.admit(server, server.host, server.port)

    def run(self, server: _Server, what: str, function: Callable[[Any], Any]) -> Any:
        """`function(cursor)` on the server's connection (opened on first use) within the step's deadline."""
        read_timeout = max(0.0, self.remaining())

        def call() -> Any:
            with server.open(read_timeout).cursor() as cursor:
                return function(cursor)

        return self.call(server, what, call, on_stop=server.abort, after_failure=server.close)


def _state(cursor: Any) -> dict[str, Any]:
    """SHOW SLAVE STATUS and the server's variables, in DRPlan's words."""
    cursor.execute("SHOW SLAVE STATUS")
    status = cursor.fetchone()
    cursor.execute(
        "SELECT @@server_id AS server_id, @@read_only AS read_only, @@gtid_binlog_pos AS binlog_pos, "
        "@@gtid_current_pos AS current_pos, @@gtid_slave_pos AS slave_pos, @@version AS version"
    )
    variables = cursor.fetchone()
    state: dict[str, Any] = {
        "role": "replica" if status else "primary",
        "server_id": int(variables["server_id"]),
        "read_only": bool(int(variables["read_only"])),
        "gtid_current_pos": variables["current_pos"] or "",
        "gtid_binlog_pos": variables["binlog_pos"] or "",
        "version": variables["version"],
    }
    if status:
        lag = status.get("Seconds_Behind_Master")
        state.update(
            {
                "primary": f"{status['Master_Host']}:{status['Master_Port']}",
                "io_running": status["Slave_IO_Running"] == "Yes",
                "io_state": status["Slave_IO_Running"],
                "sql_running": status["Slave_SQL_Running"] == "Yes",
                "lag_seconds": int(lag) if lag is not None else None,
                "gtid_slave_pos": variables["slave_pos"] or "",
                "gtid_io_pos": status.get("Gtid_IO_Pos") or "",
                "using_gtid": status.get("Using_Gtid") or "No",
                "last_io_error": status.get("Last_IO_Error") or "",
                "last_sql_error": status.get("Last_SQL_Error") or "",
                "relay_applied": status.get("Read_Master_Log_Pos") == status.get("Exec_Master_Log_Pos")
                and status.get("Master_Log_File") == status.get("Relay_Master_Log_File"),
            }
        )
    return state


def _summary(state: dict[str, Any]) -> str:
    ro = "read_only" if state["read_only"] else "writable"
    if state["role"] == "primary":
        return f"primary ({ro}) at GTID {state['gtid_binlog_pos'] or '(none)'}"
    lag = "unknown" if state["lag_seconds"] is None else f"{state['lag_seconds']}s"
    return (
        f"replica of {state['primary']} ({ro}), IO {state['io_state']}, SQL "
        f"{'running' if state['sql_running'] else 'stopped'}, lag {lag}, GTID {state['gtid_current_pos'] or '(none)'}"
    )


def gtid_behind(ahead: str, behind: str) -> int:
    """Transactions in GTID position `ahead` that `behind` lacks: per domain, the sequence number difference."""

    def domains(position: str) -> dict[int, int]:
        found: dict[int, int] = {}
        for part in filter(None, (p.strip() for p in position.split(","))):
            domain, _server, seq = part.split("-")
            found[int(domain)] = max(found.get(int(domain), 0), int(seq))
        return found

    later, earlier = domains(ahead), domains(behind)
    return sum(max(0, seq - earlier.get(domain, 0)) for domain, seq in later.items())


@executor("mariadb.replication_status")
def run_replication_status(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    def body(s: _Session) -> ActionResult:
        server = s.server("dsn_secret", str(params.get("dsn_secret") or ""))
        state = s.run(server, "SHOW SLAVE STATUS", _state)
        ctx.log(f"{server.label}: {_summary(state)}")
        problems = []
        expected = params.get("expect_role")
        if expected and state["role"] != expected:
            problems.append(f"is a {state['role']}, expected a {expected}")
        max_lag = params.get("max_lag_seconds")
        if max_lag is not None:
            if state["role"] != "replica":
                problems.append("is not a replica: no lag to check")
            elif not (state["io_running"] and state["sql_running"]):
                error = state["last_io_error"] or state["last_sql_error"]
                problems.append(
                    f"replication is not running (IO {state['io_state']}, SQL "
                    f"{'running' if state['sql_running'] else 'stopped'}){': ' + error if error else ''}"
                )
            elif state["lag_seconds"] is None or state["lag_seconds"] > int(max_lag):
                problems.append(f"lag {state['lag_seconds']}s exceeds {int(max_lag)}s")
        if problems:
            return ActionResult(False, output=state, error=f"{server.label}: {'; '.join(problems)}")
        return ActionResult(True, output=state)

    return run_session(_Session(ctx), body)


@executor("mariadb.set_read_only")
def run_set_read_only(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    def body(s: _Session) -> ActionResult:
        server = s.server("dsn_secret", str(params.get("dsn_secret") or ""))
        wanted = bool(params.get("read_only"))

        def apply(cursor: Any) -> tuple[bool, bool]:
            cursor.execute("SELECT @@read_only AS v")
            before = bool(int(cursor.fetchone()["v"]))
            cursor.execute(f"SET GLOBAL read_only = {'ON' if wanted else 'OFF'}")
            cursor.execute("SELECT @@read_only AS v")
            return before, bool(int(cursor.fetchone()["v"]))

        before, after = s.run(server, f"SET GLOBAL read_only = {'ON' if wanted else 'OFF'}", apply)
        if after != wanted:
            raise ActionFailed(f"{server.label}: read_only is still {'ON' if after else 'OFF'}")
        ctx.log(f"{server.label}: read_only {'ON' if before else 'OFF'} -> {'ON' if after else 'OFF'}")
        return ActionResult(True, output={"read_only": after, "previous": before, "changed": before != after})

    return run_session(_Session(ctx), body)


@executor("mariadb.promote")
def run_promote(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    def body(s: _Session) -> ActionResult:
        server = s.server("dsn_secret", str(params.get("dsn_secret") or ""))
        old = (
            s.server("primary_dsn_secret", str(params["primary_dsn_secret"]), PROBE_TIMEOUT)
            if params.get("primary_dsn_secret")
            else None
        )
        before = s.run(server, "SHOW SLAVE STATUS", _state)
        if before["role"] == "primary":
            ctx.log(f"{server.label}: no replica configuration ({_summary(before)}); left as it is")
            output = {"promoted": False, "already_primary": True, "gtid_current_pos": before["gtid_current_pos"]}
            return ActionResult(True, output={**output, "read_only": before["read_only"]})
        ctx.log(f"{server.label}: {_summary(before)}")
        s.run(server, "STOP SLAVE IO_THREAD", lambda c: c.execute("STOP SLAVE IO_THREAD"))
        seen = [before]

        def applied() -> bool:
            state = s.run(server, "SHOW SLAVE STATUS", _state)
            seen.append(state)
            return state["relay_applied"] or not state["sql_running"]

        started = time.monotonic()
        s.wait(server, "the relay log to be applied", applied, lambda: _summary(seen[-1]))
        if not seen[-1]["sql_running"] and not seen[-1]["relay_applied"]:
            ctx.log(f"{server.label}: the SQL thread is stopped ({seen[-1]['last_sql_error'] or 'no error'})")
        waited = round(time.monotonic() - started, 3)

        def promote(cursor: Any) -> dict[str, Any]:
            cursor.execute("STOP SLAVE")
            cursor.execute("RESET SLAVE ALL")
            cursor.execute("SET GLOBAL read_only = OFF")
            return _state(cursor)

        after = s.run(server, "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF", promote)
        if after["role"] != "primary" or after["read_only"]:
            raise ActionFailed(f"{server.label}: not promoted: {_summary(after)}")
        position = after["gtid_current_pos"]
        ctx.log(f"{server.label}: promoted at GTID {position or '(none)'} (was a replica of {before['primary']})")
        lost = _lost(s, old, position) if old is not None else None
        measurements: dict[str, float] = {}
        if lost is not None:
            measurements["data_loss_transactions"] = float(lost)
            if lost == 0:
                measurements["rpo_seconds"] = 0.0
        output = {
            "promoted": True,
            "already_primary": False,
            "previous_primary": before["primary"],
            "gtid_current_pos": position,
            "read_only": after["read_only"],
            "applied_wait_seconds": waited,
            "data_loss_transactions": lost,
        }
        return ActionResult(True, output=output, measurements=measurements)

    return run_session(_Session(ctx), body)


def _lost(s: _Session, old: _Server, position: str) -> int | None:
    """Transactions the old primary has that the new one lacks, if it answers. Nothing here fails the step."""
    try:
        state = s.run(old, "SELECT @@gtid_binlog_pos", _state)
    except ActionFailed as failure:  # usually: it is down, which is why we fail over
        s.ctx.log(f"{failure}; data loss not measured")
        return None
    lost = gtid_behind(state["gtid_binlog_pos"], position)
    s.ctx.log(
        f"{old.label}: at GTID {state['gtid_binlog_pos'] or '(none)'}: {lost} transaction(s) not on the new primary"
    )
    return lost


@executor("mariadb.check_writable")
def run_check_writable(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    def body(s: _Session) -> ActionResult:
        server = s.server("dsn_secret", str(params.get("dsn_secret") or ""))
        table = str(params.get("table") or "")
        if not TABLE.match(table):
            raise ActionFailed(f"{server.label}: table {table!r} is not a table name (db.table, letters, digits, _)")
        quoted = ".".join(f"`{part}`" for part in table.split("."))

        # `quoted` is a checked identifier (TABLE), in backquotes: no value of the runbook's is spliced in
        def write(cursor: Any) -> dict[str, Any]:
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {quoted} (id INT PRIMARY KEY, checked_at DATETIME(6))")
            cursor.execute(f"REPLACE INTO {quoted} (id, checked_at) VALUES (1, UTC_TIMESTAMP(6))")  # noqa: S608
            cursor.execute(f"SELECT checked_at FROM {quoted} WHERE id = 1")  # noqa: S608
            checked = cursor.fetchone()["checked_at"]
            cursor.execute("SELECT @@gtid_current_pos AS pos, @@server_id AS id")
            row = cursor.fetchone()
            return {"checked_at": checked.isoformat(), "gtid_current_pos": row["pos"], "server_id": int(row["id"])}

        result = s.run(server, f"write to {table}", write)
        ctx.log(f"{server.label}: wrote {table} at {result['checked_at']} (GTID {result['gtid_current_pos']})")
        return ActionResult(True, output={"writable": True, "table": table, **result})

    return run_session(_Session(ctx), body)
