"""Runbook actions for the DR lab, called through the `python` action:

    action: python
    with: {callable: failover.lab.actions.promote_standby, kwargs: {timeout_seconds: 30}}

settings.DRPLAN_PYTHON_ACTIONS allows this module by default. Each function takes the
StepContext and keyword arguments, works on the lab under var/lab/ (or $DRPLAN_LAB_DIR), and
returns an output dict or an ActionResult whose measurements the engine stores on the
execution (rpo_seconds, data_loss_bytes, data_loss_transactions; the largest over steps).
A failed check raises (the step fails with the message).

Node roles come from var/lab/state.json; "the primary" is the node route.json names (what
the application writes to), "the standby" the node with role standby.

Only functions meant for runbooks are public here: the allow-list lets a runbook call any
public callable of this module.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from failover.engine.actions import ActionResult, StepContext
from failover.lab import cluster as _cluster
from failover.lab import pg as _pg
from failover.lab import probes as _probes
from failover.lab import procs as _procs
from failover.lab import state as _state


# ----------------------------------------------------------------------------- helpers
def _nodes() -> tuple[dict[str, Any], str, dict[str, Any]]:
    state = _state.require_state()
    name, node = _cluster.route_node(state, "postgres")
    return state, name, node


def _standby(state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    found = _cluster.node_by_role(state, "postgres", "standby")
    if found is None:
        raise RuntimeError("the lab has no standby (state.json: no postgres node with role standby)")
    return found


def _set_role(kind: str, name: str, **fields: Any) -> None:
    def change(state: dict[str, Any]) -> None:
        state[kind][name].update(fields)

    _state.update_state(change)


def _fence(ctx: StepContext, state: dict[str, Any], name: str) -> dict[str, Any]:
    """Stop `name` so it can no longer accept writes, and make sure it cannot come back as primary."""
    node = state["postgres"][name]
    data = Path(node["data"])
    reachable = _pg.reachable(node["port"])
    end_lsn = None
    if reachable:
        end_lsn = _pg.query(node["port"], "SELECT pg_current_wal_lsn()::text", dbname="postgres")[0][0]
        _pg.stop(data, state.get("user"), mode="fast")
        method = "pg_ctl stop -m fast"
    elif _procs.alive(node.get("pid")):
        _procs.kill(node["pid"])  # running but not answering: a hung primary is still a primary
        method = "SIGKILL (not answering)"
    else:
        method = "already down"
    left = _procs.wait_gone([p for p in [node.get("pid"), _pg.postmaster_pid(data)] if p], 10)
    if left:
        raise RuntimeError(f"{name} still runs after fencing (pids {left})")
    if data.exists():  # if anyone starts it again it comes up read-only, never as a primary
        (data / "standby.signal").touch()
        _procs.chown(data / "standby.signal", state.get("user"))
    fenced_at = time.time()
    _set_role("postgres", name, role="fenced", fenced_at=fenced_at)
    ctx.log(f"fenced {name}: {method}")
    return {"node": name, "was_reachable": reachable, "method": method, "end_lsn": end_lsn, "fenced_at": fenced_at}


def _promote(ctx: StepContext, state: dict[str, Any], name: str, timeout: float) -> dict[str, Any]:
    """pg_promote() the standby `name`, wait until it accepts writes; no standby left, so no sync wait."""
    node = state["postgres"][name]
    started = time.monotonic()
    with _pg.connect(node["port"], "postgres", timeout=5) as conn:
        conn.execute("SET statement_timeout = 0")
        (done,) = conn.execute("SELECT pg_promote(true, %s)", (int(timeout),)).fetchone()
    promote_seconds = time.monotonic() - started
    if not done:
        raise RuntimeError(f"pg_promote() on {name} did not finish within {timeout:g} s")

    def writable() -> bool:
        with _pg.connect(node["port"], timeout=2) as conn:
            conn.execute("INSERT INTO lab_checks (note) VALUES (%s)", (f"promoted {name}",))
        return True

    if not _pg.wait_until(writable, timeout):
        raise RuntimeError(f"{name} was promoted but accepts no writes after {timeout:g} s")
    writable_seconds = time.monotonic() - started
    _cluster.set_synchronous(state, node["port"], False)
    _set_role("postgres", name, role="primary", promoted_at=time.time())
    ctx.log(f"promoted {name}: pg_promote() {promote_seconds:.3f} s, writable after {writable_seconds:.3f} s")
    return {"node": name, "promote_seconds": round(promote_seconds, 4), "writable_seconds": round(writable_seconds, 4)}


def _loss(state: dict[str, Any], old: str, standby: dict[str, Any]) -> dict[str, Any]:
    """What the old primary's WAL holds that the standby did not receive (measured before promotion)."""
    probe = _probes.postgres_node(standby["port"])
    if not probe.get("reachable"):
        raise RuntimeError(f"the standby does not answer: {probe.get('error')}")
    positions = [p for p in (probe.get("receive_lsn"), probe.get("replay_lsn")) if p]
    from_lsn = max(positions, key=_state.parse_lsn)
    data = Path(state["postgres"][old]["data"])
    if not (data / "pg_wal").exists():
        return {"from_lsn": from_lsn, "bytes": None, "commits": None, "rpo_seconds": None}
    gap = _probes.wal_gap(data, from_lsn, state.get("user"))
    last_replayed = probe.get("last_replayed_at")
    rpo = 0.0
    if gap["commits"] and gap["last_commit_at"] and last_replayed:
        rpo = max(0.0, gap["last_commit_at"] - last_replayed)
    return {**gap, "rpo_seconds": round(rpo, 3), "standby_last_replayed_at": last_replayed}


def _repoint(service: str, name: str, port: int) -> dict[str, Any]:
    target = {"node": name, "host": _state.HOST, "port": port}
    if service == "postgres":
        target.update({"dbname": _state.DBNAME, "user": _state.DBUSER})
    return _state.switch_route(service, target)


def _rebuild(ctx: StepContext, state: dict[str, Any], name: str, primary: dict[str, Any]) -> dict[str, Any]:
    """Make the stopped node `name` a streaming standby of `primary`: pg_rewind, else a fresh base backup."""
    node = state["postgres"][name]
    data = Path(node["data"])
    user = state.get("user")
    _pg.stop(data, user, mode="fast")
    started = time.monotonic()
    method, rewind_error = "pg_rewind", ""
    try:
        _pg.rewind(data, primary["port"], user)
    except Exception as exc:
        rewind_error = str(exc)[-500:]
        ctx.log(f"pg_rewind failed ({rewind_error}); taking a fresh base backup")
        method = "pg_basebackup"
        shutil.rmtree(data, ignore_errors=True)
        _pg.basebackup(data, primary["port"], user)
    pid = _pg.start(data, node["port"], name, user)
    _set_role("postgres", name, role="standby", pid=pid, rebuilt_at=time.time())
    if not _cluster.wait_streaming(primary["port"], 30):
        raise RuntimeError(f"{name} was rebuilt ({method}) but does not stream from the primary within 30 s")
    _cluster.set_synchronous(state, primary["port"], True)
    seconds = time.monotonic() - started
    ctx.log(f"{name} rebuilt as a standby with {method} in {seconds:.1f} s, streaming")
    return {"node": name, "method": method, "seconds": round(seconds, 3), "rewind_error": rewind_error, "pid": pid}


# ----------------------------------------------------------------------------- postgres failover
def check_replication_lag(ctx: StepContext, max_lag_seconds: float = 5, max_lag_bytes: int | None = None) -> dict:
    """Fail if the standby is further behind than the RPO target allows.

    Primary reachable: its pg_stat_replication (replay lag, LSN difference). Primary down: what its
    own WAL holds beyond what the standby received (pg_waldump), i.e. what promoting would lose."""
    state, name, node = _nodes()
    standby_name, standby = _standby(state)
    if _pg.reachable(node["port"]):
        lag = _probes.postgres_lag(node["port"], standby["port"], standby_name)
        seconds, lag_bytes, source = lag.get("lag_seconds"), lag.get("lag_bytes"), "pg_stat_replication"
        if lag.get("state") != "streaming":
            ctx.log(f"warning: {standby_name} is {lag.get('state')}")
        seconds = seconds if seconds is not None else 0.0
    else:
        loss = _loss(state, name, standby)
        seconds, lag_bytes, source = loss["rpo_seconds"], loss["bytes"], "old primary's WAL (pg_waldump)"
        lag = loss
    ctx.log(f"{standby_name} lag behind {name}: {seconds} s, {lag_bytes} bytes ({source})")
    if seconds is not None and float(seconds) > float(max_lag_seconds):
        raise RuntimeError(f"replication lag {seconds:.3f} s is over the RPO target of {max_lag_seconds} s")
    if max_lag_bytes is not None and lag_bytes is not None and int(lag_bytes) > int(max_lag_bytes):
        raise RuntimeError(f"replication lag {lag_bytes} bytes is over the limit of {max_lag_bytes} bytes")
    return {"primary": name, "standby": standby_name, "lag_seconds": seconds, "lag_bytes": lag_bytes, "source": source}


def fence_primary(ctx: StepContext) -> dict[str, Any]:
    """Make the old primary unable to accept writes: pg_ctl stop -m fast, or (unreachable) kill it and
    leave standby.signal in its data directory so it can never come back as a primary."""
    state, name, _node = _nodes()
    result = _fence(ctx, state, name)
    result["acked_before_fence"] = len(_state.read_acked())
    return result


def promote_standby(ctx: StepContext, timeout_seconds: float = 30) -> ActionResult:
    """Promote the standby (pg_promote), wait until it accepts writes. Measures, just before, what the
    old primary's WAL holds beyond the standby: data_loss_bytes, and rpo_seconds (its last commit
    missing on the standby minus the standby's last replayed commit)."""
    state, old, _node = _nodes()
    name, standby = _standby(state)
    loss = _loss(state, old, standby)
    promoted = _promote(ctx, state, name, float(timeout_seconds))
    measurements = {}
    if loss.get("bytes") is not None:
        measurements = {"data_loss_bytes": float(loss["bytes"]), "rpo_seconds": float(loss["rpo_seconds"])}
    output = {**promoted, "old_primary": old, "lost_wal": loss}
    ctx.log(f"measured at promotion: {loss.get('bytes')} bytes / {loss.get('commits')} commits not on {name}")
    return ActionResult(True, output=output, measurements=measurements)


def repoint_app(ctx: StepContext, service: str = "postgres") -> dict[str, Any]:
    """Atomically rewrite route.json so the application uses the current primary of `service`."""
    state = _state.require_state()
    if service not in ("postgres", "redis"):
        raise ValueError("service must be postgres or redis")
    found = _cluster.node_by_role(state, service, "primary")
    if found is None:
        raise RuntimeError(f"no {service} node has the primary role to point the application at")
    name, node = found
    switched = _repoint(service, name, node["port"])
    ctx.log(
        f"route {service}: {(switched['previous'] or {}).get('node')} -> {name} (epoch {switched['current']['epoch']})"
    )
    return {"service": service, "previous": (switched["previous"] or {}).get("node"), **switched["current"]}


def validate_orders(ctx: StepContext, timeout_seconds: float = 30) -> ActionResult:
    """After a switch: writes succeed on the new primary, the application acknowledges orders again
    (under the new route epoch), and every order it acknowledged before the switch is there — or, in
    asynchronous mode, exactly the missing ids are reported (data_loss_transactions). A missing
    acknowledged order in synchronous mode fails the step."""
    state, name, node = _nodes()
    route = _state.read_route()["postgres"]
    epoch = int(route["epoch"])
    with _pg.connect(node["port"], timeout=3) as conn:
        (check_id,) = conn.execute(
            "INSERT INTO lab_checks (note) VALUES (%s) RETURNING id", (f"validate_orders epoch {epoch}",)
        ).fetchone()
    deadline = time.monotonic() + float(timeout_seconds)

    def new_acks() -> list[tuple[int, int, float]]:
        return [a for a in _state.read_acked() if a[1] == epoch]

    while not new_acks():
        if time.monotonic() > deadline or ctx.cancelled.is_set():
            raise RuntimeError(f"the orders application acknowledged nothing on {name} within {timeout_seconds} s")
        time.sleep(0.05)
    acked = _state.read_acked()
    before = sorted({a[0] for a in acked if a[1] == epoch - 1})
    present: set[int] = set()
    with _pg.connect(node["port"], timeout=3) as conn:
        for i in range(0, len(before), 10000):
            rows = conn.execute("SELECT id FROM orders WHERE id = ANY(%s)", (before[i : i + 10000],)).fetchall()
            present.update(r[0] for r in rows)
    missing = [i for i in before if i not in present]
    app_lost = None
    while time.monotonic() < deadline:
        app = _state.read_json(_state.app_status_path()) or {}
        if str(epoch - 1) in (app.get("lost") or {}):
            app_lost = app["lost"][str(epoch - 1)]
            break
        time.sleep(0.1)
    output = {
        "primary": name,
        "epoch": epoch,
        "write_ok": True,
        "check_row": check_id,
        "acked_before_switch": len(before),
        "acked_after_switch": len(new_acks()),
        "missing_count": len(missing),
        "missing_ids": missing[:1000],
        "app_counted_lost": len(app_lost) if app_lost is not None else None,
        "mode": state["mode"],
    }
    ctx.log(
        f"{len(before)} orders acked before the switch, {len(missing)} missing on {name}"
        f" (the app counted {output['app_counted_lost']}); {output['acked_after_switch']} acked since"
    )
    if missing and state["mode"] == "sync":
        raise RuntimeError(f"{len(missing)} acknowledged orders lost in synchronous mode: {missing[:20]}")
    return ActionResult(True, output=output, measurements={"data_loss_transactions": float(len(missing))})


# ----------------------------------------------------------------------------- postgres failback
def rebuild_old_primary_as_standby(ctx: StepContext) -> dict[str, Any]:
    """Make the fenced old primary a streaming standby of the current one (pg_rewind; a fresh
    pg_basebackup when rewinding is impossible)."""
    state, name, node = _nodes()
    found = _cluster.node_by_role(state, "postgres", "fenced")
    if found is None:
        standby = _cluster.node_by_role(state, "postgres", "standby")
        if standby and _procs.alive(standby[1].get("pid")):
            return {"skipped": f"{standby[0]} is already a standby of {name}"}
        raise RuntimeError("no fenced node to rebuild")
    return _rebuild(ctx, state, found[0], node)


def switchover(ctx: StepContext, max_wait_seconds: float = 30) -> ActionResult:
    """Planned switch to the standby with no loss: wait for a small lag, stop writes (clean stop of
    the primary), wait until the standby has every byte of its WAL, promote, repoint the
    application, rebuild the old primary as the new standby."""
    state, old, node = _nodes()
    name, standby = _standby(state)
    deadline = time.monotonic() + float(max_wait_seconds)
    while True:
        lag = _probes.postgres_lag(node["port"], standby["port"], name)
        if lag.get("state") == "streaming" and (lag.get("lag_bytes") or 0) < 1024 * 1024:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} is not streaming close behind {old}: {lag}")
        time.sleep(0.1)
    stopped_at = time.monotonic()
    fenced = _fence(ctx, state, old)
    final = _state.parse_lsn(_pg.controldata(Path(node["data"]), state.get("user"))["Latest checkpoint location"])

    def caught_up() -> bool:
        probe = _probes.postgres_node(standby["port"])
        return (_state.parse_lsn(probe.get("receive_lsn")) or 0) > final

    if not _pg.wait_until(caught_up, max(1.0, deadline - time.monotonic())):
        raise RuntimeError(f"{name} did not receive {old}'s last WAL ({_state.format_lsn(final)}); not promoting")
    loss = _loss(state, old, standby)
    promoted = _promote(ctx, state, name, 30)
    route = _repoint("postgres", name, standby["port"])
    writes_stopped = time.monotonic() - stopped_at
    state = _state.require_state()
    rebuilt = _rebuild(ctx, state, old, standby)
    output = {
        "from": old,
        "to": name,
        "fenced": fenced,
        "promoted": promoted,
        "epoch": route["current"]["epoch"],
        "writes_stopped_seconds": round(writes_stopped, 3),
        "rebuilt": rebuilt,
        "lost_wal": loss,
    }
    measurements = {
        "data_loss_bytes": float(loss.get("bytes") or 0),
        "rpo_seconds": float(loss.get("rpo_seconds") or 0),
    }
    return ActionResult(True, output=output, measurements=measurements)


# ----------------------------------------------------------------------------- redis
def redis_failover(ctx: StepContext) -> ActionResult:
    """REPLICAOF NO ONE on the replica, repoint the application, and make the old primary a replica
    of the new one (restarting it as one if it died). data_loss_bytes: the replication offset the
    replica was behind (known only if the old primary answers)."""
    import redis

    state = _state.require_state()
    old, old_node = _cluster.route_node(state, "redis")
    found = _cluster.node_by_role(state, "redis", "replica")
    if found is None:
        raise RuntimeError("the lab has no redis replica")
    name, node = found
    old_up = _probes.redis_node(old_node["port"]).get("reachable")
    lag = _probes.redis_lag(old_node["port"], node["port"]) if old_up else {"lag_bytes": None}
    client = redis.Redis(host=_state.HOST, port=node["port"], socket_timeout=5)
    client.execute_command("REPLICAOF", "NO", "ONE")
    client.close()
    _set_role("redis", name, role="primary")
    route = _repoint("redis", name, node["port"])
    if old_up:
        old_client = redis.Redis(host=_state.HOST, port=old_node["port"], socket_timeout=5)
        old_client.execute_command("REPLICAOF", _state.HOST, str(node["port"]))
        old_client.close()
        _set_role("redis", old, role="replica")
        rejoined = "REPLICAOF the new primary"
    else:

        def restart(s: dict[str, Any]) -> None:
            _cluster.start_redis(_state.lab_dir(), s, old, replica_of=node["port"])

        _state.update_state(restart)
        rejoined = "restarted as a replica of the new primary"
    ctx.log(f"redis {name} promoted, route epoch {route['current']['epoch']}; {old} {rejoined}")
    output = {"old_primary": old, "new_primary": name, "old_primary_was_up": bool(old_up), "rejoined": rejoined}
    output["lag_bytes"] = lag.get("lag_bytes")
    measurements = {"data_loss_bytes": float(lag["lag_bytes"])} if lag.get("lag_bytes") is not None else {}
    return ActionResult(True, output=output, measurements=measurements)


# ----------------------------------------------------------------------------- non-disruptive DR test
def _clone_name(ctx: StepContext) -> str:
    return f"clone-{ctx.execution_id}"


def clone_standby(ctx: StepContext) -> dict[str, Any]:
    """pg_basebackup from the STANDBY into a temporary instance on another free port under var/lab/,
    started as a standby of it (production is not touched)."""
    state = _state.require_state()
    standby_name, standby = _standby(state)
    name = _clone_name(ctx)
    root = _state.lab_dir()
    clone = {
        "port": _procs.free_port(),
        "data": str(root / name),
        "pid": None,
        "source": standby_name,
        "acked_at_start": len(_state.read_acked()),
        "started_at": time.time(),
    }

    def register(s: dict[str, Any]) -> None:
        s.setdefault("clones", {})[name] = clone

    _state.update_state(register)  # registered first, so `lab down` removes it whatever happens
    started = time.monotonic()
    _pg.basebackup(Path(clone["data"]), standby["port"], state.get("user"))
    backup_seconds = time.monotonic() - started
    # Never a synchronous primary, and no feedback to production.
    extra = "-c synchronous_standby_names='' -c hot_standby_feedback=off"
    pid = _pg.start(Path(clone["data"]), clone["port"], name, state.get("user"), extra=extra)

    def started_clone(s: dict[str, Any]) -> None:
        s["clones"][name]["pid"] = pid

    _state.update_state(started_clone)
    ctx.log(f"{name}: base backup of {standby_name} in {backup_seconds:.2f} s, running on port {clone['port']}")
    return {"clone": name, "port": clone["port"], "source": standby_name, "backup_seconds": round(backup_seconds, 3)}


def _clone(ctx: StepContext) -> dict[str, Any]:
    clone = (_state.require_state().get("clones") or {}).get(_clone_name(ctx))
    if clone is None:
        raise RuntimeError(f"no DR-test clone {_clone_name(ctx)} (clone_standby did not run)")
    return clone


def promote_clone(ctx: StepContext, timeout_seconds: float = 30) -> dict[str, Any]:
    """Promote the clone (pg_promote) and wait until it accepts writes."""
    clone = _clone(ctx)
    started = time.monotonic()
    with _pg.connect(clone["port"], "postgres", timeout=5) as conn:
        (done,) = conn.execute("SELECT pg_promote(true, %s)", (int(timeout_seconds),)).fetchone()
    promote_seconds = time.monotonic() - started
    if not done:
        raise RuntimeError(f"pg_promote() on the clone did not finish within {timeout_seconds} s")
    ctx.log(f"clone promoted in {promote_seconds:.3f} s")
    return {"clone": _clone_name(ctx), "promote_seconds": round(promote_seconds, 4)}


def validate_clone(ctx: StepContext) -> dict[str, Any]:
    """The recovered copy works: writes succeed on the clone, and every order the application
    acknowledged (in the current route epoch) up to the newest order in the clone is there."""
    clone = _clone(ctx)
    epoch = int(_state.read_route()["postgres"]["epoch"])
    with _pg.connect(clone["port"], timeout=3) as conn:
        conn.execute("INSERT INTO lab_checks (note) VALUES ('DR test write on the clone')")
        count, newest = conn.execute("SELECT count(*), coalesce(max(id), 0) FROM orders").fetchone()
        expected = sorted({a[0] for a in _state.read_acked() if a[1] == epoch and a[0] <= newest})
        rows = conn.execute("SELECT id FROM orders WHERE id = ANY(%s)", (expected,)).fetchall()
    missing = sorted(set(expected) - {r[0] for r in rows})
    if missing or not count:
        raise RuntimeError(f"the clone has {count} orders; {len(missing)} acknowledged orders missing: {missing[:20]}")
    ctx.log(f"clone: write ok, {count} orders, all {len(expected)} acknowledged orders up to #{newest} present")
    return {"write_ok": True, "orders": count, "newest_order": newest, "checked": len(expected), "missing": 0}


def check_production(ctx: StepContext, since_clone: bool = True) -> dict[str, Any]:
    """Production was not disturbed: the primary keeps acknowledging orders and the standby keeps streaming."""
    state, name, node = _nodes()
    standby_name, standby = _standby(state)
    clone = (state.get("clones") or {}).get(_clone_name(ctx)) if since_clone else None
    acked = len(_state.read_acked())
    if clone is not None and acked <= clone["acked_at_start"]:
        raise RuntimeError(f"no order acknowledged since the DR test started ({acked} then and now)")
    lag = _probes.postgres_lag(node["port"], standby["port"], standby_name)
    if lag.get("state") != "streaming":
        raise RuntimeError(f"replication {name} -> {standby_name} is {lag.get('state')}")
    new_orders = acked - clone["acked_at_start"] if clone else None
    ctx.log(
        f"production: {new_orders} orders acked during the test, {standby_name} streaming, lag {lag['lag_bytes']} bytes"
    )
    return {
        "primary": name,
        "orders_during_test": new_orders,
        "replication": lag["state"],
        "lag_bytes": lag["lag_bytes"],
    }


def teardown_clone(ctx: StepContext) -> dict[str, Any]:
    """Stop the clone and delete its directory; verify no process and no directory is left."""
    state = _state.require_state()
    name = _clone_name(ctx)
    clone = (state.get("clones") or {}).get(name)
    if clone is None:
        return {"clone": name, "removed": False, "reason": "no such clone"}
    data = Path(clone["data"])
    pids = [p for p in (clone.get("pid"), _pg.postmaster_pid(data)) if p]
    pids += [c for p in pids for c in _procs.descendants(p)]
    if data.exists():
        _pg.stop(data, state.get("user"), mode="immediate")
    for pid in _procs.wait_gone(pids, 10):
        _procs.kill(pid)
    left = _procs.wait_gone(pids, 5)
    shutil.rmtree(data, ignore_errors=True)
    if left or data.exists():
        raise RuntimeError(f"clone {name} not fully removed: pids {left}, directory exists {data.exists()}")

    def forget(s: dict[str, Any]) -> None:
        s.get("clones", {}).pop(name, None)

    _state.update_state(forget)
    ctx.log(f"{name} stopped and removed")
    return {"clone": name, "removed": True, "pids_checked": pids}
