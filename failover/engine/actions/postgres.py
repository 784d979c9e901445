"""Executors of the postgres actions that talk SQL to a server (schemas: runbooks/action_schemas/postgres.py).

Every server is reached through a DSN secret named by the step (postgres_conn.py); every wait is bounded
by the step's timeout (30 s when it has none) and ends at once on cancel, cancelling the running query.

- replication_status / check_lag: role and lag as the node sees it (a standby: its receive and replay
  positions; a primary: pg_stat_replication).
- fence: default_transaction_read_only = on (ALTER SYSTEM + reload), then terminate client sessions; reports
  the primary's end LSN. A soft fence: a client that asks for a read-write transaction explicitly still can;
  pair it with a network or power fence where that matters. `lift: true` undoes it (for a rollback).
- promote: pg_promote(wait => true); a node already primary is reported, never promoted twice.
- wait_writable: poll until the node is out of recovery and not read-only.
- switchover: fence, wait until the standby has replayed the primary's end LSN, promote; lift the fence and
  fail without promoting when the standby does not catch up.

Elsewhere: data_loss (postgres_loss.py); rewind and rebuild_standby, which run programs (postgres_rebuild.py).
Every module registers its actions on import; this one imports the others.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from failover.engine.actions import (  # noqa: F401  (register their actions)
    ActionResult,
    StepContext,
    postgres_loss,
    postgres_rebuild,
)
from failover.engine.actions.postgres_conn import (
    Deadline,
    PgError,
    Session,
    Stopped,
    pg_action,
    session_for,
    threshold,
    uncancellable,
)
from failover.engine.actions.postgres_wal import format_lsn, parse_lsn, record_end

POLL_SECONDS = 0.1
MAX_STANDBYS = 50  # rows of pg_stat_replication kept in an output
MAX_SESSIONS = 20  # terminated sessions listed in an output
TERMINATE_WAIT_MS = 2000
LIFT_SECONDS = 15.0  # time allowed to lift a fence after a switchover gave up (even if cancelled)


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _float(value: Any) -> float | None:
    return round(float(value), 3) if value is not None else None


# ----------------------------------------------------------------------------- what a node is
def is_standby(db: Session) -> bool:
    return bool(db.value("SELECT pg_is_in_recovery()"))


def primary_position(db: Session) -> dict[str, Any]:
    """A primary's WAL position: end_lsn (the end of its last WAL record), timeline, read-only or not."""
    insert, written, walfile, read_only, block, segment = db.row(
        "SELECT pg_current_wal_insert_lsn()::text, pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn()),"
        " current_setting('default_transaction_read_only'), current_setting('wal_block_size')::int,"
        " pg_size_bytes(current_setting('wal_segment_size'))"
    )
    end = record_end(parse_lsn(insert), int(block), int(segment))
    return {
        "end_lsn": format_lsn(end),
        "written_lsn": written,
        "timeline": int(walfile[:8], 16),
        "read_only": read_only == "on",
    }


def standby_position(db: Session) -> dict[str, Any]:
    """A standby's view: received and replayed LSNs, last replayed transaction, its lag behind the
    primary as last reported by the primary (bytes), and the time since it last replayed a transaction
    while something is still to replay (seconds; 0 when it has replayed everything it knows of)."""
    receive, replay, replayed_at, paused, now = db.row(
        "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp(),"
        " pg_is_wal_replay_paused(), now()"
    )
    rows = db.query(
        "SELECT status, sender_host, sender_port, received_tli, flushed_lsn::text, latest_end_lsn::text,"
        " last_msg_receipt_time FROM pg_stat_wal_receiver"
    )
    receiver = None
    if rows:
        status, host, port, tli, flushed, latest_end, last_message = rows[0]
        receiver = {
            "status": status,
            "sender": f"{host}:{port}" if host else None,
            "timeline": tli,
            "flushed_lsn": flushed,
            "primary_end_lsn": latest_end,
            "last_message_at": _iso(last_message),
        }
    known = [parse_lsn(x) for x in (receive, (receiver or {}).get("primary_end_lsn")) if x]
    replayed = parse_lsn(replay)
    lag_bytes = max(0, max(known) - replayed) if known and replayed is not None else None
    if lag_bytes == 0:
        lag_seconds: float | None = 0.0
    elif replayed_at is not None:
        lag_seconds = max(0.0, round((now - replayed_at).total_seconds(), 3))
    else:
        lag_seconds = None
    return {
        "received_lsn": receive,
        "replayed_lsn": replay,
        "last_replayed_at": _iso(replayed_at),
        "lag_seconds": lag_seconds,
        "lag_bytes": lag_bytes,
        "replay_paused": bool(paused),
        "receiver": receiver,
    }


def standbys_of(db: Session) -> list[dict[str, Any]]:
    """pg_stat_replication with each standby's lag: bytes behind the primary's written WAL, and its
    replay_lag in seconds (0 when it has replayed everything; None when the server has no figure)."""
    rows = db.query(
        "SELECT application_name, client_addr::text, state, sync_state, sent_lsn::text, flush_lsn::text,"
        " replay_lsn::text, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,"
        " extract(epoch FROM replay_lag)::float8"
        " FROM pg_stat_replication ORDER BY application_name, client_addr, pid"
    )
    standbys = []
    for name, addr, state, sync, sent, flush, replay, lag_bytes, replay_lag in rows[:MAX_STANDBYS]:
        lag_bytes = max(0, int(lag_bytes)) if lag_bytes is not None else None
        standbys.append(
            {
                "application_name": name,
                "client_addr": addr,
                "state": state,
                "sync_state": sync,
                "sent_lsn": sent,
                "flushed_lsn": flush,
                "replayed_lsn": replay,
                "lag_bytes": lag_bytes,
                "lag_seconds": 0.0 if lag_bytes == 0 else _float(replay_lag),
            }
        )
    return standbys


def node_status(db: Session) -> dict[str, Any]:
    if is_standby(db):
        return {"node": db.dsn.where, "role": "standby", **standby_position(db)}
    return {"node": db.dsn.where, "role": "primary", **primary_position(db), "standbys": standbys_of(db)}


# ----------------------------------------------------------------------------- replication_status, check_lag
@pg_action("postgres.replication_status")
def replication_status(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    with session_for(params, ctx, Deadline(ctx)) as db:
        status = node_status(db)
    if status["role"] == "standby":
        ctx.log(
            f"{status['node']}: standby, replayed {status['replayed_lsn']}, lag {status['lag_seconds']} s /"
            f" {status['lag_bytes']} bytes, WAL receiver {(status['receiver'] or {}).get('status', 'not running')}"
        )
    else:
        ctx.log(f"{status['node']}: primary at {status['end_lsn']}, {len(status['standbys'])} standby(s)")
    return ActionResult(True, output=status)


@pg_action("postgres.check_lag")
def check_lag(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    max_seconds = threshold(params, "max_lag_seconds")
    max_bytes = threshold(params, "max_lag_bytes", int)
    if max_seconds is None and max_bytes is None:
        raise PgError("give max_lag_seconds and/or max_lag_bytes")
    wanted = params.get("standby") or None
    with session_for(params, ctx, Deadline(ctx)) as db:
        status = node_status(db)
    if status["role"] == "standby":
        checked = [{"standby": status["node"], **{k: status[k] for k in ("lag_seconds", "lag_bytes")}}]
        if not status["receiver"]:
            ctx.log(f"warning: {status['node']} has no WAL receiver: its lag is measured against what it received")
    else:
        rows = [s for s in status["standbys"] if wanted is None or s["application_name"] == wanted]
        if not rows:
            named = f" named '{wanted}'" if wanted else ""
            raise PgError(f"no standby{named} is connected to {status['node']} (pg_stat_replication)", output=status)
        checked = [
            {"standby": f"'{s['application_name']}' ({s['client_addr']})", "lag_seconds": s["lag_seconds"]}
            | {"lag_bytes": s["lag_bytes"], "state": s["state"]}
            for s in rows
        ]
    failures = []
    for row in checked:
        who = f"standby {row['standby']}" + (f" of {status['node']}" if status["role"] == "primary" else "")
        if max_seconds is not None:
            if row["lag_seconds"] is None:
                failures.append(f"{who}: lag in seconds unknown (max_lag_seconds {max_seconds:g})")
            elif row["lag_seconds"] > max_seconds:
                failures.append(f"{who}: lag {row['lag_seconds']:g} s is above max_lag_seconds {max_seconds:g}")
        if max_bytes is not None:
            if row["lag_bytes"] is None:
                failures.append(f"{who}: lag in bytes unknown (max_lag_bytes {max_bytes})")
            elif row["lag_bytes"] > max_bytes:
                failures.append(f"{who}: lag {row['lag_bytes']} bytes is above max_lag_bytes {max_bytes}")
    output = {**status, "checked": checked, "max_lag_seconds": max_seconds, "max_lag_bytes": max_bytes}
    for row in checked:
        ctx.log(f"{row['standby']}: lag {row['lag_seconds']} s / {row['lag_bytes']} bytes")
    if failures:
        return ActionResult(False, output=output, error="postgres.check_lag: " + "; ".join(failures))
    return ActionResult(True, output=output)


# ----------------------------------------------------------------------------- fence
def _wait_setting(db: Session, value: str) -> None:
    """Until this session sees default_transaction_read_only = value (pg_reload_conf() is asynchronous)."""
    while db.value("SHOW default_transaction_read_only", doing=f"waiting for the reload on {db.dsn.where}") != value:
        if db.ctx.cancelled.wait(0.02):
            raise db.deadline.stopped(db.ctx, f"waiting for the reload on {db.dsn.where}")


def make_read_only(db: Session) -> None:
    """default_transaction_read_only = on, in force (new sessions and idle ones after the reload)."""
    db.query("ALTER SYSTEM SET default_transaction_read_only = on", doing=f"fencing {db.dsn.where}")
    reload_until(db, "on")


def reload_until(db: Session, value: str) -> None:
    db.query("SELECT pg_reload_conf()")
    _wait_setting(db, value)


def fence_primary(db: Session) -> dict[str, Any]:
    """Stop writes on the primary `db` is connected to; returns what was done and its end LSN."""
    make_read_only(db)
    return end_client_sessions(db)


def end_client_sessions(db: Session) -> dict[str, Any]:
    """Terminate every client session but ours (walsenders and background workers are not clients), then
    read the end of the WAL: nothing can add to it any more but the server itself."""
    sessions = db.query(
        "SELECT pid, usename::text, application_name, client_addr::text FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY pid"
    )
    terminated, refused = [], []
    for pid, user, app, addr in sessions:
        who = {"pid": pid, "user": user, "application_name": app, "client_addr": addr}
        try:
            ended = db.value("SELECT pg_terminate_backend(%s, %s)", (pid, TERMINATE_WAIT_MS))
        except Stopped:
            raise
        except PgError as exc:
            refused.append({**who, "error": exc.message})
            continue
        # False: it did not end within the wait, or it had already gone; ask again.
        if ended or not db.query("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)):
            terminated.append(who)
        else:
            refused.append({**who, "error": f"still running after {TERMINATE_WAIT_MS} ms"})
    position = primary_position(db)
    output = {
        "node": db.dsn.where,
        "role": "primary",
        "fenced": True,
        "read_only": True,
        "method": "sql",
        "terminated": len(terminated),
        "terminated_sessions": terminated[:MAX_SESSIONS],
        "end_lsn": position["end_lsn"],
        "timeline": position["timeline"],
    }
    if refused:
        output["not_terminated"] = refused[:MAX_SESSIONS]
        pids = ", ".join(str(r["pid"]) for r in refused[:MAX_SESSIONS])
        raise PgError(
            f"{db.dsn.where} is read-only now but {len(refused)} session(s) could not be terminated"
            f" (pid {pids}): they may still write",
            output=output,
        )
    return output


def lift_fence(db: Session) -> None:
    db.query("ALTER SYSTEM RESET default_transaction_read_only", doing=f"lifting the fence on {db.dsn.where}")
    reload_until(db, "off")


@pg_action("postgres.fence")
def fence(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    deadline = Deadline(ctx)
    db = session_for(params, ctx, deadline)
    if params.get("if_unreachable") == "continue":  # leave the step time to report "not fenced"
        db.connect_timeout = min(db.connect_timeout, max(0.5, deadline.remaining() - 1.0))
    try:
        db.connect()
    except PgError as exc:
        if not exc.unreachable or params.get("if_unreachable") != "continue":
            raise
        ctx.log(f"{exc.message}: NOT fenced by SQL (if_unreachable: continue); fence it by other means")
        output = {"node": db.dsn.where, "reachable": False, "fenced": False, "reason": exc.message, "end_lsn": None}
        return ActionResult(True, output=output)
    with db:
        if params.get("lift"):
            lift_fence(db)
            ctx.log(f"{db.dsn.where}: fence lifted (default_transaction_read_only reset)")
            return ActionResult(True, output={"node": db.dsn.where, "fenced": False, "lifted": True})
        if is_standby(db):
            ctx.log(f"{db.dsn.where} is a standby (in recovery): it accepts no writes; nothing to fence")
            output = {"node": db.dsn.where, "role": "standby", "fenced": False, "read_only": True, "end_lsn": None}
            return ActionResult(True, output=output)
        output = fence_primary(db)
    ctx.log(
        f"{output['node']} fenced: read-only, {output['terminated']} client session(s) terminated,"
        f" end of WAL {output['end_lsn']} (timeline {output['timeline']})"
    )
    return ActionResult(True, output=output)


# ----------------------------------------------------------------------------- promote, wait_writable
def promote_standby(db: Session, wait_seconds: float) -> dict[str, Any]:
    """pg_promote() the standby `db` is connected to, within the deadline; what it had when promoted."""
    before = standby_position(db)
    wait = max(1, int(min(wait_seconds, db.deadline.remaining() - 0.5)))
    started = time.monotonic()
    done = db.value(
        "SELECT pg_promote(wait => true, wait_seconds => %s)",
        (wait,),
        doing=f"waiting for pg_promote() on {db.dsn.where} (requested: the promotion may still complete)",
    )
    seconds = round(time.monotonic() - started, 3)
    if not done:
        raise PgError(
            f"pg_promote() on {db.dsn.where} did not finish within {wait} s; the promotion was requested and"
            " may still complete (check with postgres.replication_status)",
            output={"node": db.dsn.where, "promoted": False, **before},
        )
    # pg_last_wal_replay_lsn() keeps, after the promotion, the end of the WAL replayed: the switch point.
    replayed, walfile = db.row("SELECT pg_last_wal_replay_lsn()::text, pg_walfile_name(pg_current_wal_lsn())")
    return {
        "node": db.dsn.where,
        "already_primary": False,
        "promoted": True,
        "promote_seconds": seconds,
        "received_lsn": before["received_lsn"],
        "promoted_at_lsn": replayed or before["replayed_lsn"],
        "last_replayed_at": before["last_replayed_at"],
        "timeline": int(walfile[:8], 16),
    }


@pg_action("postgres.promote")
def promote(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    wait_seconds = threshold(params, "wait_seconds") or 60
    with session_for(params, ctx, Deadline(ctx)) as db:
        if not is_standby(db):
            position = primary_position(db)
            ctx.log(f"{db.dsn.where} is already a primary (not in recovery): nothing promoted")
            output = {"node": db.dsn.where, "already_primary": True, "promoted": False, **position}
            return ActionResult(True, output=output)
        output = promote_standby(db, float(wait_seconds))
    ctx.log(
        f"{output['node']} promoted in {output['promote_seconds']} s at {output['promoted_at_lsn']}"
        f" (timeline {output['timeline']})"
    )
    return ActionResult(True, output=output)


@pg_action("postgres.wait_writable")
def wait_writable(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    deadline = Deadline(ctx)
    first = session_for(params, ctx, deadline)  # reads and checks the secret once
    where = first.dsn.where
    started = time.monotonic()
    attempts, why, db = 0, "", None
    try:
        while True:
            attempts += 1
            try:
                if db is None:
                    db = Session(ctx, first.dsn, deadline, first.connect_timeout)
                    db.connect()
                in_recovery, read_only = db.row(
                    "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')"
                )
                if not in_recovery and read_only == "off":
                    break
                why = "in recovery (a standby)" if in_recovery else "read-only (default_transaction_read_only = on)"
            except PgError as exc:  # not there yet (restarting, refusing): try again with a new connection
                if isinstance(exc, Stopped) and ctx.cancelled.is_set():
                    raise deadline.stopped(ctx, f"waiting for {where} to accept writes") from None
                why = why if isinstance(exc, Stopped) and why else exc.message
                if db is not None:
                    db.close()
                    db = None
            if ctx.cancelled.wait(min(0.2, deadline.remaining())):
                raise deadline.stopped(ctx, f"waiting for {where} to accept writes")
            if deadline.expired():
                raise PgError(f"{where} does not accept writes after {deadline.total:g}s: {why}")
    finally:
        if db is not None:
            db.close()
    waited = round(time.monotonic() - started, 3)
    ctx.log(f"{where} accepts writes (after {waited} s, {attempts} check(s))")
    return ActionResult(True, output={"node": where, "writable": True, "waited_seconds": waited})


# ----------------------------------------------------------------------------- switchover
@pg_action("postgres.switchover")
def switchover(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    deadline = Deadline(ctx, default=120.0)
    max_wait = float(threshold(params, "max_wait_seconds") or 60)
    # Both secrets are read (and checked) before connecting to either server.
    primary_session = session_for(params, ctx, deadline, "primary_dsn_secret")
    standby_session = session_for(params, ctx, deadline, "standby_dsn_secret")
    with primary_session as primary, standby_session as standby:
        if not is_standby(standby):
            raise PgError(f"{standby.dsn.where} is not a standby (not in recovery): nothing to switch over to")
        if is_standby(primary):
            raise PgError(f"{primary.dsn.where} is not a primary (in recovery): nothing to switch over from")
        # Refused (no privilege): nothing changed. Once set, any failure before the promotion lifts it.
        primary.query("ALTER SYSTEM SET default_transaction_read_only = on", doing=f"fencing {primary.dsn.where}")
        started, fenced = time.monotonic(), {}
        try:
            reload_until(primary, "on")
            fenced = end_client_sessions(primary)
            ctx.log(f"{primary.dsn.where} fenced at {fenced['end_lsn']}; waiting for {standby.dsn.where} to replay it")
            replayed = _wait_replayed(standby, parse_lsn(fenced["end_lsn"]), max_wait)
        except PgError as exc:
            lifted = _lift_after_failure(primary, ctx)
            raise PgError(f"{exc.message}; not promoted; {lifted}", output={"fence": fenced or exc.output}) from None
        waited = round(time.monotonic() - started, 3)
        ctx.log(f"{standby.dsn.where} replayed {format_lsn(replayed)} after {waited} s; promoting")
        try:
            promoted = promote_standby(standby, float(threshold(params, "wait_seconds") or 60))
        except PgError as exc:
            raise PgError(f"{exc.message}; {primary.dsn.where} stays fenced", output={"fence": fenced}) from None
    output = {
        "primary": primary.dsn.where,
        "standby": standby.dsn.where,
        "end_lsn": fenced["end_lsn"],
        "replayed_lsn": format_lsn(replayed),
        "caught_up_seconds": waited,
        "fence": fenced,
        "promote": promoted,
        "timeline": promoted["timeline"],
    }
    ctx.log(f"switched over: {standby.dsn.where} is the primary (timeline {promoted['timeline']}), nothing lost")
    zero = {"data_loss_bytes": 0.0, "data_loss_transactions": 0.0, "rpo_seconds": 0.0}
    return ActionResult(True, output=output, measurements=zero)


def _wait_replayed(standby: Session, target: int, max_wait: float) -> int:
    """Until the standby's replay LSN reaches `target`, for at most max_wait seconds (and the deadline)."""
    give_up = time.monotonic() + max_wait
    while True:
        doing = f"waiting for {standby.dsn.where} to catch up"
        replayed = parse_lsn(standby.value("SELECT pg_last_wal_replay_lsn()::text", doing=doing)) or 0
        if replayed >= target:
            return replayed
        if time.monotonic() >= give_up:
            raise PgError(
                f"{standby.dsn.where} replayed {format_lsn(replayed)}, not {format_lsn(target)}, within {max_wait:g} s"
            )
        if standby.ctx.cancelled.wait(POLL_SECONDS) or standby.deadline.expired():
            raise standby.deadline.stopped(standby.ctx, doing)


def _lift_after_failure(primary: Session, ctx: StepContext) -> str:
    """The switchover gave up before promoting: make the primary writable again, even after a cancel."""
    fresh, deadline = uncancellable(ctx, LIFT_SECONDS)
    try:
        with Session(fresh, primary.dsn, deadline, primary.connect_timeout) as db:
            lift_fence(db)
    except PgError as exc:
        return f"lifting the fence failed ({exc.message}): {primary.dsn.where} is still read-only"
    return f"fence lifted: {primary.dsn.where} accepts writes again"
