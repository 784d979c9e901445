"""Lab control: up, down, status, chaos. Every process it starts is recorded by pid in state.json.

Nodes keep their names, ports and data directories for the lab's life; their roles change as
runbooks fail over and back, and `status` reads them from the servers themselves (the runbooks'
actions do not tell the lab what they did). A PostgreSQL server started by an action (a rewind)
has a new pid: the lab finds it from the postmaster.pid of its data directory.

With `ssh=True` the lab also runs an OpenSSH server on 127.0.0.1 (core/localservers/sshd.py) as
the user `drplan-ssh`, who then owns the PostgreSQL servers and their data: the runbooks reach the
nodes' data directories (rewind, base backup, pg_waldump) only through it, with `run_on: {ssh: ...}`.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.localservers import postgres as pg
from core.localservers import procs
from core.localservers import sshd as local_sshd
from lab import probes
from lab.state import (
    DBNAME,
    HOST,
    acked_path,
    app_status_path,
    lab_dir,
    load_state,
    locked,
    read_acked,
    read_json,
    read_route,
    route_path,
    state_path,
    switch_route,
    write_json_atomic,
)

REPO = Path(__file__).resolve().parents[1]
SSH_USER = "drplan-ssh"  # the login user of the lab's sshd, and then the owner of its PostgreSQL servers
CLONE_DIR = "dr-test-clone"  # the DR test's clone of the standby (lab/templates/lab-dr-test.yaml)
SCHEMA = [
    "CREATE TABLE orders (id bigint PRIMARY KEY, epoch integer NOT NULL,"
    " amount_cents integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE lab_checks (id bigserial PRIMARY KEY, note text NOT NULL, at timestamptz NOT NULL DEFAULT now())",
]


class LabError(RuntimeError):
    """Something the operator must act on (message says what)."""


Log = Callable[[str], None]


def _save(root: Path, state: dict[str, Any]) -> None:
    write_json_atomic(state_path(root), state)


# ----------------------------------------------------------------------------- nodes
def route_node(state: dict[str, Any], kind: str, root: Path | None = None) -> tuple[str, dict[str, Any]]:
    """The node route.json names for `kind` (the one the application uses)."""
    name = (read_route(root).get(kind) or {}).get("node")
    if name not in state[kind]:
        raise LabError(f"route.json names no known {kind} node ({name!r})")
    return name, state[kind][name]


def postgres_pid(node: dict[str, Any]) -> int | None:
    """The running postmaster of a node: from its data directory (an action may have restarted it)."""
    pid = pg.postmaster_pid(Path(node["data"]))
    return pid if procs.alive(pid) else None


def start_postgres(root: Path, state: dict[str, Any], name: str, *, extra: str = "") -> int:
    node = state["postgres"][name]
    pid = pg.start(Path(node["data"]), node["port"], name, state.get("user"), extra=extra)
    node["pid"] = pid
    return pid


def start_redis(root: Path, state: dict[str, Any], name: str, *, replica_of: int | None = None) -> int:
    node = state["redis"][name]
    workdir = Path(node["dir"])
    workdir.mkdir(parents=True, exist_ok=True)
    procs.chown(workdir, state.get("user"))
    argv = [procs.redis_server_bin(), "--bind", HOST, "--port", str(node["port"]), "--dir", str(workdir)]
    argv += ["--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no"]
    if replica_of:
        argv += ["--replicaof", HOST, str(replica_of)]
    pid = procs.spawn(argv, state.get("user"), log=root / f"{name}.log", cwd=workdir)
    node["pid"] = pid
    node["role"] = "replica" if replica_of else "primary"
    if not pg.wait_until(lambda: probes.redis_node(node["port"]).get("reachable"), 10):
        raise LabError(f"{name} did not answer on port {node['port']} within 10 s (see {root / (name + '.log')})")
    return pid


def start_app(root: Path, state: dict[str, Any], interval: float = 0.02) -> int:
    http_port = state["app_http_port"]
    argv = [sys.executable, "-m", "lab.app", "--dir", str(root), "--interval", str(interval)]
    argv += ["--http-port", str(http_port)]
    env = {"PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    user = state.get("user")
    if user is not None and not _python_usable_by(user, env):
        user = None  # e.g. a pyenv interpreter under /root: the client app then runs as ourselves
    token = root / "app-token"
    token.write_text(secrets.token_urlsafe(24) + "\n")
    token.chmod(0o600)
    procs.chown(token, user)
    pid = procs.spawn(argv, user, log=root / "app.log", cwd=REPO, env=env)
    state["app"] = {"pid": pid, "interval": interval, "user": user, "http_port": http_port}
    if not pg.wait_until(lambda: procs.port_open(http_port), 20):
        raise LabError(f"the orders app's admin API did not answer on port {http_port} (see {root / 'app.log'})")
    return pid


def app_url(state: dict[str, Any]) -> str:
    return f"http://{HOST}:{state['app_http_port']}"


def start_sshd(root: Path, state: dict[str, Any]) -> dict[str, Any]:
    """The lab's sshd (as drplan-ssh, which it creates when we are root); its client key stays in
    sshd/client_key (0600) for the DRPlan secret; state["ssh"] has its port, pid and known_hosts line."""
    import os
    import pwd

    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SSH_USER)
        except KeyError:
            procs.run(["useradd", "--create-home", "--shell", "/bin/sh", SSH_USER], None)
    username = SSH_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    folder = root / "sshd"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        server = local_sshd.start(folder, username)
    except local_sshd.SshdError as exc:
        raise LabError(f"lab up --ssh: {exc}") from None
    key = folder / "client_key"
    key.write_text(server.client_key)
    key.chmod(0o600)
    os.chown(key, 0, 0) if os.geteuid() == 0 else None
    state["ssh"] = {"port": server.port, "pid": server.pid, "username": username, "known_hosts": server.known_hosts}
    return state["ssh"]


def _python_usable_by(user: str, env: dict[str, str]) -> bool:
    try:
        procs.run([sys.executable, "-c", "import psycopg, redis"], user, cwd=REPO, env=env, timeout=30)
        return True
    except (OSError, RuntimeError, subprocess.SubprocessError):
        return False


def wait_streaming(primary_port: int, timeout: float = 30) -> bool:
    return pg.wait_until(
        lambda: any(r["state"] == "streaming" for r in probes.postgres_replication(primary_port)), timeout, 0.1
    )


def set_synchronous(state: dict[str, Any], primary_port: int, on: bool) -> None:
    """In sync mode a primary waits for any standby ('*') — but only while one exists."""
    if state.get("mode") == "sync":
        pg.set_conf(primary_port, "synchronous_standby_names", "*" if on else "")


# ----------------------------------------------------------------------------- up / down
def health(state: dict[str, Any]) -> list[str]:
    """What is not running that should be (empty: everything the lab started runs)."""
    problems = []
    for name, node in sorted(state.get("postgres", {}).items()):
        if postgres_pid(node) is None:
            problems.append(f"postgres {name} is not running")
    for name, node in sorted(state.get("redis", {}).items()):
        if not procs.alive(node.get("pid")):
            problems.append(f"redis {name} is not running")
    if state.get("ssh") and not procs.alive(state["ssh"].get("pid")):
        problems.append("the lab's sshd is not running")
    if not procs.alive((state.get("app") or {}).get("pid")):
        problems.append("the orders app is not running")
    return problems


def up(
    *, sync: bool = False, ssh: bool = False, root: Path | None = None, log: Log = print, wait_ack: float = 20
) -> dict[str, Any]:
    """Start the lab (fresh data) unless it already runs; returns the state. Idempotent."""
    root = root or lab_dir()
    with locked(root):
        state = load_state(root)
        if state is not None:
            problems = health(state)
            if not problems:
                log(f"lab already up in {root} ({state['mode']} replication); nothing to do")
                return state
            raise LabError(
                "the lab is partly running: " + "; ".join(problems) + ". Run a failover, or `lab down` then `lab up`."
            )
        try:
            return _up(root, sync, ssh, log, wait_ack)
        except BaseException:
            log("lab up failed; stopping what it started")
            _down(root, log=lambda _: None)
            raise


def _up(root: Path, sync: bool, ssh: bool, log: Log, wait_ack: float) -> dict[str, Any]:
    started = time.monotonic()
    _wipe(root)
    user = procs.server_user()
    state_ssh = None
    if ssh:
        state_ssh = start_sshd(root, {})
        user = SSH_USER if user is not None else None  # root: the servers run as the SSH login user
    procs.prepare(root, user)
    ports = set()

    def port() -> int:
        while (p := procs.free_port()) in ports:
            pass
        ports.add(p)
        return p

    state: dict[str, Any] = {
        "mode": "sync" if sync else "async",
        "user": user,
        "root": str(root),
        "started_at": time.time(),
        "postgres": {
            name: {"port": port(), "data": str(root / name), "role": role, "pid": None}
            for name, role in (("pg1", "primary"), ("pg2", "standby"))
        },
        "redis": {
            name: {"port": port(), "dir": str(root / name), "role": role, "pid": None}
            for name, role in (("redis1", "primary"), ("redis2", "replica"))
        },
        "app": None,
        "app_http_port": port(),
        "clone_port": port(),
        "ssh": state_ssh,
    }
    _save(root, state)
    pg1, pg2 = state["postgres"]["pg1"], state["postgres"]["pg2"]

    pg.initdb(Path(pg1["data"]), user)
    start_postgres(root, state, "pg1")
    _save(root, state)
    pg.query(pg1["port"], "CREATE DATABASE lab", dbname="postgres")
    for statement in SCHEMA:
        pg.query(pg1["port"], statement, dbname=DBNAME)
    log(f"pg1 primary on {HOST}:{pg1['port']} (pid {pg1['pid']})")

    pg.basebackup(Path(pg2["data"]), pg1["port"], user)
    start_postgres(root, state, "pg2")
    _save(root, state)
    if not wait_streaming(pg1["port"]):
        raise LabError("pg2 did not start streaming from pg1 within 30 s")
    set_synchronous(state, pg1["port"], True)
    log(f"pg2 standby on {HOST}:{pg2['port']} (pid {pg2['pid']}), streaming, {state['mode']}")

    r1, r2 = state["redis"]["redis1"], state["redis"]["redis2"]
    start_redis(root, state, "redis1")
    _save(root, state)
    start_redis(root, state, "redis2", replica_of=r1["port"])
    _save(root, state)
    log(f"redis1 primary on {HOST}:{r1['port']}, redis2 replica on {HOST}:{r2['port']}")

    switch_route("postgres", _pg_target("pg1", pg1), root)
    switch_route("redis", {"node": "redis1", "host": HOST, "port": r1["port"]}, root)
    acked_path(root).touch()
    procs.chown(acked_path(root), user)
    start_app(root, state)
    _save(root, state)
    if not pg.wait_until(lambda: read_acked(root), wait_ack, 0.1):
        raise LabError(f"the orders app acknowledged nothing within {wait_ack:g} s (see {root / 'app.log'})")
    log(f"orders app pid {state['app']['pid']} writing to pg1, admin API {app_url(state)}")
    if state.get("ssh"):
        log(f"sshd on {HOST}:{state['ssh']['port']} (user {state['ssh']['username']}): nodes reached over SSH")
    log(f"lab up in {time.monotonic() - started:.1f} s")
    return state


def _pg_target(name: str, node: dict[str, Any]) -> dict[str, Any]:
    return {"node": name, "host": HOST, "port": node["port"], "dbname": "lab", "user": "postgres"}


def _wipe(root: Path) -> None:
    if root.exists():
        for child in root.iterdir():
            if child.name == ".lock":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)


def down(*, root: Path | None = None, log: Log = print) -> dict[str, Any]:
    """Stop everything the lab started (by pid) and verify none is left. Data stays until the next up."""
    root = root or lab_dir()
    with locked(root):
        return _down(root, log=log)


def recorded_pids(state: dict[str, Any]) -> list[int]:
    """Every pid the state records or the data directories name, with the children of each (backends)."""
    pids = [int(n["pid"]) for kind in ("postgres", "redis") for n in state.get(kind, {}).values() if n.get("pid")]
    pids += [p for n in state.get("postgres", {}).values() if (p := postgres_pid(n))]
    clone = pg.postmaster_pid(Path(state["root"]) / CLONE_DIR) if state.get("root") else None
    pids += [clone] if procs.alive(clone) else []
    for process in ("app", "monitor", "ssh"):
        if (state.get(process) or {}).get("pid"):
            pids.append(int(state[process]["pid"]))
    for pid in list(pids):
        pids.extend(procs.descendants(pid))
    return sorted(set(pids))


def _down(root: Path, *, log: Log) -> dict[str, Any]:
    state = load_state(root)
    if state is None:
        log(f"lab not up ({state_path(root)} missing); nothing to stop")
        return {"stopped": [], "left": []}
    everything = recorded_pids(state)
    stopped = []
    monitor = state.get("monitor") or {}
    if monitor.get("pid"):
        procs.stop(monitor["pid"], timeout=5)
        stopped.append(f"monitor {monitor['pid']}")
    app = state.get("app") or {}
    if app.get("pid"):
        procs.stop(app["pid"], timeout=5)
        stopped.append(f"app {app['pid']}")
    clone = root / CLONE_DIR
    if clone.exists():
        stopped.append(f"clone {remove_clone(clone, state)['pids_checked']}")
    for name, node in sorted(state.get("redis", {}).items()):
        if node.get("pid"):
            procs.stop(node["pid"], timeout=5)
            stopped.append(f"{name} {node['pid']}")
    for name, node in sorted(state.get("postgres", {}).items()):
        data = Path(node["data"])
        if data.exists():
            pg.stop(data, state.get("user"), mode="fast")
        if node.get("pid"):
            procs.stop(node["pid"], timeout=5)
        stopped.append(f"{name} {node.get('pid')}")
    if state.get("ssh"):
        local_sshd.stop(local_sshd.Sshd(state["ssh"]["port"], "", state["ssh"]["pid"], root / "sshd", "", ""))
        stopped.append(f"sshd {state['ssh']['pid']}")
    left = procs.wait_gone(everything, 10)
    for pid in left:
        procs.kill(pid)
    left = procs.wait_gone(left, 5)
    if left:
        raise LabError(f"processes still running after lab down: {left}")
    state_path(root).unlink(missing_ok=True)
    log(f"lab down: stopped {', '.join(stopped) or 'nothing'}; no lab process left ({len(everything)} checked)")
    return {"stopped": stopped, "left": left, "pids": everything}


# ----------------------------------------------------------------------------- DR-test clone
def remove_clone(data: Path, state: dict[str, Any]) -> dict[str, Any]:
    """Stop the DR test's clone (lab/templates/lab-dr-test.yaml) and delete its directory; verify that no
    process and no directory is left. Only the lab's clone directory is accepted."""
    if data.name != CLONE_DIR or data.parent.resolve() != Path(state["root"]).resolve():
        raise LabError(f"{data} is not the lab's DR-test clone ({Path(state['root']) / CLONE_DIR})")
    pid = pg.postmaster_pid(data)
    pids = [pid, *procs.descendants(pid)] if procs.alive(pid) else []
    if data.exists():
        pg.stop(data, state.get("user"), mode="immediate")
    for straggler in procs.wait_gone(pids, 10):
        procs.kill(straggler)
    left = procs.wait_gone(pids, 5)
    for path in (data, data.with_name(data.name + ".drplan-new")):
        shutil.rmtree(path, ignore_errors=True)
    if left or data.exists():
        raise LabError(f"clone {data} not fully removed: pids {left}, directory exists {data.exists()}")
    return {"clone": str(data), "removed": True, "pids_checked": pids}


# ----------------------------------------------------------------------------- status
def status(root: Path | None = None) -> dict[str, Any]:
    """Roles, replication state and lag (seconds, bytes) of every node, the route and the app."""
    root = root or lab_dir()
    state = load_state(root)
    if state is None:
        return {"up": False, "dir": str(root)}
    route = read_route(root)
    result: dict[str, Any] = {"up": True, "dir": str(root), "mode": state["mode"], "route": route}
    nodes = {}
    for name, node in sorted(state["postgres"].items()):
        probe = probes.postgres_node(node["port"])
        pid = postgres_pid(node)
        nodes[name] = {"port": node["port"], "pid": pid, "running": pid is not None, **probe}
    result["postgres"] = nodes
    primaries = [n for n, v in nodes.items() if v.get("role") == "primary"]
    replication = []
    for primary in primaries:
        for standby, info in nodes.items():
            if info.get("role") == "standby":
                lag = probes.postgres_lag(nodes[primary]["port"], info["port"])
                replication.append({"primary": primary, "standby": standby, **lag})
    result["replication"] = replication
    redis_nodes = {}
    for name, node in sorted(state["redis"].items()):
        redis_nodes[name] = {"port": node["port"], "pid": node.get("pid"), "running": procs.alive(node.get("pid"))}
        redis_nodes[name].update(probes.redis_node(node["port"]))
    result["redis"] = redis_nodes
    rp = [n for n, v in redis_nodes.items() if v.get("role") == "primary"]
    rr = [n for n, v in redis_nodes.items() if v.get("role") == "replica"]
    result["redis_replication"] = (
        {"primary": rp[0], "replica": rr[0], **probes.redis_lag(redis_nodes[rp[0]]["port"], redis_nodes[rr[0]]["port"])}
        if rp and rr
        else None
    )
    app = read_json(app_status_path(root)) or {}
    acked = read_acked(root)
    result["app"] = {
        "pid": (state.get("app") or {}).get("pid"),
        "running": procs.alive((state.get("app") or {}).get("pid")),
        "acked": len(acked),
        "last_ack_seconds_ago": round(time.time() - acked[-1][2], 3) if acked else None,
        "lost_count": app.get("lost_count", 0),
        "outages": app.get("outages", []),
        "errors": app.get("errors", 0),
        "last_error": app.get("last_error", ""),
    }
    clone_pid = pg.postmaster_pid(root / CLONE_DIR)
    result["clone"] = {"pid": clone_pid, "port": state.get("clone_port")} if procs.alive(clone_pid) else None
    result["ssh"] = state.get("ssh")
    result["problems"] = health(state)
    return result


def format_status(info: dict[str, Any]) -> str:
    if not info.get("up"):
        return f"lab not up ({info['dir']}); start it with `python manage.py lab up`"
    lines = [f"DR lab in {info['dir']} — {info['mode']} replication"]
    route = info.get("route", {})
    lines.append(
        f"route: postgres -> {route.get('postgres', {}).get('node')} (epoch {route.get('postgres', {}).get('epoch')}),"
        f" redis -> {route.get('redis', {}).get('node')} (epoch {route.get('redis', {}).get('epoch')})"
    )
    for name, n in info["postgres"].items():
        role = n.get("role") if n.get("reachable") else "DOWN"
        extra = ""
        if n.get("role") == "standby":
            receiver = (n.get("receiver") or {}).get("status") or "no WAL receiver"
            extra = f", receiver {receiver}, replayed {n.get('replay_lsn')}"
        lines.append(f"  postgres {name} {HOST}:{n['port']} pid {n.get('pid')}: {role}{extra}")
    for r in info.get("replication", []):
        seconds = r.get("lag_seconds")
        lines.append(
            f"  replication {r['primary']} -> {r['standby']}: {r.get('state')}"
            f"{' (' + r['sync_state'] + ')' if r.get('sync_state') else ''},"
            f" lag {seconds if seconds is not None else '?'} s / {r.get('lag_bytes')} bytes"
        )
    for name, n in info["redis"].items():
        role = n.get("role") if n.get("reachable") else "DOWN"
        lines.append(f"  redis {name} {HOST}:{n['port']} pid {n.get('pid')}: {role}, offset {n.get('offset')}")
    rr = info.get("redis_replication")
    if rr:
        lines.append(
            f"  redis replication {rr['primary']} -> {rr['replica']}: link {rr.get('link')},"
            f" lag {rr.get('lag_bytes')} bytes"
        )
    app = info["app"]
    lines.append(
        f"  app pid {app['pid']}: {'running' if app['running'] else 'NOT RUNNING'}, {app['acked']} orders acked,"
        f" last {app['last_ack_seconds_ago']} s ago, lost (app count) {app['lost_count']}, errors {app['errors']}"
    )
    for outage in app.get("outages", [])[-3:]:
        lines.append(f"    outage epoch {outage['from_epoch']} -> {outage['to_epoch']}: {outage.get('seconds')} s")
    if info.get("clone"):
        lines.append(f"  DR-test clone running on port {info['clone']['port']}")
    if info.get("ssh"):
        lines.append(f"  sshd {HOST}:{info['ssh']['port']} (user {info['ssh']['username']}): nodes reached over SSH")
    for problem in info.get("problems", []):
        lines.append(f"  ! {problem}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- chaos
def chaos(kind: str, root: Path | None = None) -> dict[str, Any]:
    """kill-primary (SIGKILL the postgres primary), stop-replication (the standby stops
    receiving WAL), kill-redis-primary (SIGKILL the redis primary)."""
    root = root or lab_dir()
    state = load_state(root)
    if state is None:
        raise LabError("the lab is not up")
    if kind == "kill-primary":
        name, node = route_node(state, "postgres", root)
        pid = postgres_pid(node)
        if pid is None:
            raise LabError(f"the primary {name} is not running")
        procs.kill(pid)
        procs.wait_gone([pid], 5)
        return {"killed": name, "pid": pid, "at": time.time()}
    if kind == "stop-replication":
        found = next(
            (
                (n, v)
                for n, v in sorted(state["postgres"].items())
                if probes.postgres_node(v["port"]).get("role") == "standby"
            ),
            None,
        )
        if found is None:
            raise LabError("no standby to stop")
        name, node = found
        pg.set_conf(node["port"], "primary_conninfo", "")
        return {"standby": name, "stopped_at": time.time()}
    if kind == "kill-redis-primary":
        name, node = route_node(state, "redis", root)
        procs.kill(node.get("pid"))
        procs.wait_gone([node["pid"]], 5)
        return {"killed": name, "pid": node["pid"], "at": time.time()}
    raise LabError(f"unknown chaos {kind!r}: kill-primary, stop-replication or kill-redis-primary")


__all__ = ["LabError", "chaos", "down", "format_status", "route_path", "status", "up"]
