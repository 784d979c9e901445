"""Reaching a PostgreSQL server for the postgres actions: a DSN from a secret, a connection and
queries that honour the step's timeout and cancel, and messages that never contain the DSN.

    @pg_action("postgres.x")                   # a PgError becomes the failed result "postgres.x: <message>"
    def x(params, ctx):
        with session_for(params, ctx, Deadline(ctx)) as db:
            db.value("SELECT pg_is_in_recovery()")

session_for reads the secret (PgError naming it when it is missing or not a DSN); connecting fails with
"cannot connect to HOST:PORT: <reason>"; a query raises Stopped on timeout or cancel, after cancelling it.

The secret's value is a postgresql:// URI or a key=value conninfo. It is checked before anything
connects; parse errors are not shown (libpq quotes the string it failed on). Messages name the secret,
the host and the port; a server error is shown with the password and the DSN masked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from failover.engine.actions import ActionResult, StepContext, executor
from failover.engine.actions.blocking import run_blocking

DEFAULT_PORT = "5432"
DEFAULT_CONNECT_TIMEOUT = 10.0
# A connection refused that is not "the server is not there": it answered and said no.
_ANSWERED = re.compile(
    r"authentication|password|pg_hba\.conf|does not exist|permission denied|no such user|SSL|certificate|too many",
    re.IGNORECASE,
)


class PgError(Exception):
    """A failure whose message is safe to show: it names a secret, a host:port, a check; never a DSN.
    `output` is what the step found before it failed (kept on the failed result)."""

    def __init__(self, message: str, *, unreachable: bool = False, output: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.unreachable = unreachable
        self.output = output or {}


class Stopped(PgError):
    """The step was cancelled or ran out of time while waiting on the server."""


@dataclass(frozen=True)
class Dsn:
    secret: str  # the secret's name
    conninfo: str = dataclasses.field(repr=False)  # the value: never in a message
    host: str = "localhost"
    port: str = DEFAULT_PORT
    password: str = dataclasses.field(default="", repr=False)
    application_name: str = ""

    @property
    def where(self) -> str:
        """host:port for messages (a list of hosts stays a list)."""
        return f"{self.host}:{self.port}"

    def scrub(self, text: str) -> str:
        """`text` with the DSN and the password masked (belt and braces: messages never format them)."""
        for value in (self.conninfo, self.password):
            if value:
                text = text.replace(value, "***")
        return text

    def without_password(self) -> str:
        """A conninfo for a program's argv (the password goes in PGPASSWORD, never on a command line)."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        parts = {k: str(v) for k, v in conninfo_to_dict(self.conninfo).items() if k != "password" and v is not None}
        return make_conninfo(**parts)


def read_dsn(ctx: StepContext, secret_name: str, param: str = "dsn_secret") -> Dsn:
    """The DSN held by the secret `secret_name` (the step's `param`), checked before any connection:
    PgError when the secret is missing, not a PostgreSQL DSN, or its host is not allowed for it."""
    if not secret_name:
        raise PgError(f"{param}: no secret named")
    if ctx.secret is None:
        raise PgError(f"{param} '{secret_name}': no secret store available to read the DSN")
    try:
        value = ctx.secret(secret_name)
    except Exception as exc:  # e.g. InvalidInput "secret 'X' is not defined"
        raise PgError(f"{param}: {getattr(exc, 'message', None) or type(exc).__name__}") from None
    not_a_dsn = PgError(
        f"{param}: secret '{secret_name}' is not a PostgreSQL DSN (expected a postgresql:// URI or key=value conninfo)"
    )
    text = (value or "").strip()
    if not text or ("://" in text.split("=", 1)[0] and not re.match(r"postgres(ql)?://", text)):
        raise not_a_dsn
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(text)
    except Exception:
        raise not_a_dsn from None  # libpq's message quotes the value
    host = str(parts.get("host") or parts.get("hostaddr") or "localhost")
    dsn = Dsn(
        secret=secret_name,
        conninfo=text,
        host=host,
        port=str(parts.get("port") or DEFAULT_PORT),
        password=str(parts.get("password") or ""),
        application_name=str(parts.get("application_name") or ""),
    )
    _check_hosts(ctx, dsn)
    return dsn


def _check_hosts(ctx: StepContext, dsn: Dsn) -> None:
    """The secret's allow-list (if it has one) must allow every host the DSN names."""
    hosts = dsn.host.split(",")
    ports = dsn.port.split(",")
    for i, host in enumerate(hosts):
        port_text = ports[i] if i < len(ports) else ports[-1]
        port = int(port_text) if port_text.strip().isdigit() else None
        refused = ctx.refuse_host(host.strip(), port)
        if refused:
            raise PgError(refused)


class Deadline:
    """The time a step has left: its timeout (or `default` seconds) from now."""

    def __init__(self, ctx: StepContext, default: float = 30.0) -> None:
        self.total = float(ctx.timeout) if ctx.timeout else default
        self.at = time.monotonic() + self.total

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0

    def stopped(self, ctx: StepContext, doing: str) -> Stopped:
        why = "cancelled" if ctx.cancelled.is_set() else f"timed out after {self.total:g}s"
        return Stopped(f"{why} while {doing}")


def uncancellable(ctx: StepContext, seconds: float) -> tuple[StepContext, Deadline]:
    """A context for clean-up after a cancel or timeout (e.g. lifting a fence): its own cancel flag and
    `seconds` of time."""
    fresh = dataclasses.replace(ctx, cancelled=threading.Event(), timeout=seconds)
    return fresh, Deadline(fresh)


class Session:
    """One autocommit connection whose every query is bounded by the deadline and the cancel flag."""

    def __init__(
        self, ctx: StepContext, dsn: Dsn, deadline: Deadline, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    ) -> None:
        self.ctx = ctx
        self.dsn = dsn
        self.deadline = deadline
        self.connect_timeout = connect_timeout
        self.conn: Any = None

    def __enter__(self) -> Session:
        if self.conn is None:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        import psycopg

        limit = min(self.connect_timeout, self.deadline.remaining())
        if limit <= 0:
            raise self.deadline.stopped(self.ctx, f"connecting to {self.dsn.where}")
        holder: dict[str, Any] = {}
        extra = {} if self.dsn.application_name else {"application_name": "drplan"}

        def call() -> Any:
            conn = psycopg.connect(self.dsn.conninfo, autocommit=True, connect_timeout=max(1, round(limit)), **extra)
            holder["conn"] = conn
            if holder.get("abandoned"):  # we stopped waiting: do not leave it open
                conn.close()
            return conn

        def abandon() -> None:
            holder["abandoned"] = True
            with contextlib.suppress(Exception):
                holder["conn"].close()

        outcome = run_blocking(call, self.ctx, limit, on_stop=abandon)
        if outcome.stopped:
            if self.ctx.cancelled.is_set() or self.deadline.expired():
                raise self.deadline.stopped(self.ctx, f"connecting to {self.dsn.where}")
            raise PgError(
                f"cannot connect to {self.dsn.where}: no answer within {round(limit, 1):g}s (connect timeout)",
                unreachable=True,
            )
        if outcome.exception is not None:
            reason = self._reason(outcome.exception)
            raise PgError(f"cannot connect to {self.dsn.where}: {reason}", unreachable=not _ANSWERED.search(reason))
        self.conn = outcome.value
        # The server gives up on its own if we disappear (a worker killed mid-step).
        self.query(
            "SELECT set_config('statement_timeout', %s, false)",
            [f"{max(1000, int(self.deadline.remaining() * 1000))}ms"],
        )

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None

    def query(self, sql: str, params: Any = None, *, doing: str = "") -> list[tuple]:
        """All rows of one statement; Stopped on timeout / cancel (the statement is cancelled on the
        server), PgError naming host:port for a server error."""
        conn = self.conn
        remaining = self.deadline.remaining()
        doing = doing or f"querying {self.dsn.where}"
        if remaining <= 0 or self.ctx.cancelled.is_set():
            raise self.deadline.stopped(self.ctx, doing)

        def call() -> list[tuple]:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

        outcome = run_blocking(call, self.ctx, remaining, on_stop=lambda: conn.cancel_safe(timeout=2.0))
        if outcome.stopped:
            raise self.deadline.stopped(self.ctx, doing)
        if outcome.exception is not None:
            raise PgError(f"{self.dsn.where}: {self._reason(outcome.exception)}")
        return outcome.value

    def row(self, sql: str, params: Any = None, **kw: Any) -> tuple:
        rows = self.query(sql, params, **kw)
        if not rows:
            raise PgError(f"{self.dsn.where}: no row returned by {sql.split()[0]}")
        return rows[0]

    def value(self, sql: str, params: Any = None, **kw: Any) -> Any:
        return self.row(sql, params, **kw)[0]

    def _reason(self, exc: BaseException) -> str:
        """The first useful line of a driver error, with the DSN and password masked."""
        text = str(exc).strip()
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        first = lines[0] if lines else type(exc).__name__
        # libpq: 'connection failed: connection to server at "h" (1.2.3.4), port 5432 failed: Connection refused'
        first = first.rsplit(" failed: ", 1)[-1] if " failed: " in first else first
        first = re.sub(r"^(FATAL|ERROR):\s+", "", first)
        return self.dsn.scrub(first) or type(exc).__name__


def threshold(params: dict[str, Any], name: str, kind: type = float) -> float | int | None:
    """A numeric parameter that may have been rendered from a template ("{{ plan.rpo_seconds }}")."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise PgError(f"{name}: {value!r} is not a number")
    try:
        number = kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        raise PgError(f"{name}: {value!r} is not a number") from None
    if number < 0:
        raise PgError(f"{name}: {value!r} is negative")
    return number


# ----------------------------------------------------------------------------- for executors
def pg_action(name: str) -> Callable[[Callable[..., ActionResult]], Callable[..., ActionResult]]:
    """Register an executor whose PgError becomes a failed result: "<action>: <message>"."""

    def wrap(function: Callable[..., ActionResult]) -> Callable[..., ActionResult]:
        @functools.wraps(function)
        def run(params: dict[str, Any], ctx: StepContext) -> ActionResult:
            try:
                return function(params, ctx)
            except PgError as exc:
                return ActionResult(False, output=exc.output, error=f"{name}: {exc.message}")

        return executor(name)(run)

    return wrap


def session_for(
    params: dict[str, Any],
    ctx: StepContext,
    deadline: Deadline,
    secret_param: str = "dsn_secret",  # noqa: S107 (a parameter name)
) -> Session:
    """A (not yet connected) session to the server of the DSN secret the step names in `secret_param`;
    PgError naming the secret when it is missing or not a DSN."""
    dsn = read_dsn(ctx, str(params.get(secret_param) or ""), secret_param)
    return Session(ctx, dsn, deadline, float(threshold(params, "connect_timeout") or DEFAULT_CONNECT_TIMEOUT))
