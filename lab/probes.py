"""RPO probes: replication state and lag of PostgreSQL and Redis, measured from the servers.

For `lab status` and the lab monitor (runbooks use the postgres.* and redis.* actions); each returns a
plain dict and raises nothing for an unreachable server (it says so in the dict).

PostgreSQL
- postgres_node(port): role (primary/standby), current or replayed LSN; on a standby the WAL
  receiver (pg_stat_wal_receiver), last replayed transaction time and replay delay.
- postgres_replication(primary_port): one row per standby from pg_stat_replication, with the
  lag in bytes (pg_wal_lsn_diff of the primary's current LSN and the standby's replay LSN) and
  the replay lag in seconds.
- postgres_lag(primary_port, standby_port): the pair's lag in seconds and bytes.
Redis
- redis_node(port): INFO replication; redis_lag(primary_port, replica_port): the offset
  difference (master_repl_offset minus the replica's offset) in bytes.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from core.localservers import postgres as pg
from lab.state import HOST, parse_lsn


def _epoch(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def postgres_node(port: int) -> dict[str, Any]:
    """Role and WAL position of one server; {"reachable": False, "error"} when it does not answer."""
    try:
        with pg.connect(port, "postgres", timeout=2) as conn:
            (in_recovery,) = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if not in_recovery:
                (lsn,) = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
                return {"reachable": True, "role": "primary", "lsn": lsn}
            row = conn.execute(
                "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,"
                " pg_last_xact_replay_timestamp(), extract(epoch FROM now() - pg_last_xact_replay_timestamp()),"
                " pg_is_wal_replay_paused()"
            ).fetchone()
            receiver = conn.execute(
                "SELECT status, sender_host, sender_port, flushed_lsn::text, last_msg_receipt_time"
                " FROM pg_stat_wal_receiver"
            ).fetchone()
    except Exception as exc:
        return {"reachable": False, "error": f"{type(exc).__name__}: {str(exc).strip()[:200]}"}
    result = {
        "reachable": True,
        "role": "standby",
        "receive_lsn": row[0],
        "replay_lsn": row[1],
        "lsn": row[1],
        "last_replayed_at": _epoch(row[2]),
        "replay_delay_seconds": float(row[3]) if row[3] is not None else None,
        "replay_paused": bool(row[4]),
        "receiver": None,
    }
    if receiver is not None:
        result["receiver"] = {
            "status": receiver[0],
            "sender": f"{receiver[1]}:{receiver[2]}",
            "flushed_lsn": receiver[3],
            "last_message_at": _epoch(receiver[4]),
        }
    return result


def postgres_replication(primary_port: int) -> list[dict[str, Any]]:
    """pg_stat_replication of a primary, with the lag of each standby in bytes and seconds."""
    rows = pg.query(
        primary_port,
        "SELECT application_name, client_port, state, sync_state, sent_lsn::text, flush_lsn::text,"
        " replay_lsn::text, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,"
        " extract(epoch FROM replay_lag) FROM pg_stat_replication ORDER BY application_name",
        dbname="postgres",
    )
    return [
        {
            "application_name": r[0],
            "client_port": r[1],
            "state": r[2],
            "sync_state": r[3],
            "sent_lsn": r[4],
            "flush_lsn": r[5],
            "replay_lsn": r[6],
            "lag_bytes": int(r[7]) if r[7] is not None else None,
            "replay_lag_seconds": float(r[8]) if r[8] is not None else 0.0,
        }
        for r in rows
    ]


def postgres_lag(primary_port: int, standby_port: int, standby_name: str | None = None) -> dict[str, Any]:
    """The pair's replication lag: {"state", "sync_state", "lag_seconds", "lag_bytes", "last_replayed_at"}.

    Bytes: the primary's current LSN minus the standby's replay LSN. Seconds: pg_stat_replication's
    replay_lag (NULL — caught up and idle — counts as 0); with no walsender for the standby,
    state "not streaming" and the lag measured from LSNs only."""
    standby = postgres_node(standby_port)
    if not standby.get("reachable"):
        return {"state": "standby unreachable", "error": standby.get("error")}
    try:
        rows = postgres_replication(primary_port)
        (current,) = pg.query(primary_port, "SELECT pg_current_wal_lsn()::text", dbname="postgres")[0]
    except Exception as exc:
        return {"state": "primary unreachable", "error": f"{type(exc).__name__}: {exc}", "standby": standby}
    row = next((r for r in rows if standby_name is None or r["application_name"] == standby_name), None)
    replay = parse_lsn(standby.get("replay_lsn"))
    lag_bytes = max(0, parse_lsn(current) - replay) if replay is not None else None
    seconds = row["replay_lag_seconds"] if row else None
    if lag_bytes == 0:
        seconds = 0.0
    return {
        "state": row["state"] if row else "not streaming",
        "sync_state": row["sync_state"] if row else None,
        "lag_seconds": seconds,
        "lag_bytes": lag_bytes,
        "primary_lsn": current,
        "replay_lsn": standby.get("replay_lsn"),
        "last_replayed_at": standby.get("last_replayed_at"),
    }


def redis_node(port: int) -> dict[str, Any]:
    """INFO replication of one Redis; {"reachable": False} when it does not answer."""
    import redis

    try:
        client = redis.Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=1)
        info = client.info("replication")
        client.close()
    except Exception as exc:
        return {"reachable": False, "error": f"{type(exc).__name__}: {exc}"}
    role = "primary" if info.get("role") == "master" else "replica"
    result = {"reachable": True, "role": role, "offset": int(info.get("master_repl_offset", 0))}
    if role == "replica":
        result.update(
            {
                "master": f"{info.get('master_host')}:{info.get('master_port')}",
                "link": info.get("master_link_status"),
                "offset": int(info.get("slave_repl_offset", info.get("master_repl_offset", 0))),
                "last_io_seconds_ago": info.get("master_last_io_seconds_ago"),
            }
        )
    else:
        result["replicas"] = int(info.get("connected_slaves", 0))
    return result


def redis_lag(primary_port: int, replica_port: int) -> dict[str, Any]:
    """{"lag_bytes": master_repl_offset - replica offset, "link"}; None bytes if either is down."""
    primary, replica = redis_node(primary_port), redis_node(replica_port)
    if not (primary.get("reachable") and replica.get("reachable")):
        return {"lag_bytes": None, "link": replica.get("link"), "primary": primary, "replica": replica}
    return {"lag_bytes": max(0, primary["offset"] - replica["offset"]), "link": replica.get("link")}


def now() -> float:
    return time.time()
