"""The console and the API of a real cluster under load (issue 15, point 5): p99 against a baseline of one.

    .venv/bin/python bench/cluster_load.py [--viewers 200] [--events 200] [--rate 20]
                                           [--users 50] [--duration 40] [--baseline-duration 30] [--only console,api]

--viewers and --users take lists (e.g. --viewers 50,200 --users 10,50): each level is measured after the
baseline of one, on the same cluster, in that order.

Starts `scripts/cluster.py up --no-ml` (demo organisation loaded) in a temporary directory: PostgreSQL 16,
Redis, two daphne web nodes behind HAProxy, two django-q2 worker clusters. Everything goes through the proxy.

Console: a running execution; 1 then --viewers websocket viewers (one asyncio loop, the `websockets` library,
a signed-in viewer's session), all connected through HAProxy, which spreads them over both web nodes (its
runtime API tells how many each node holds); then a separate process, like a worker, emits --events step
events at --rate per second through the engine's `emit` (Redis channel layer to both nodes) and ends the
execution. Latency = arrival at a viewer minus the event's created_at (one machine clock). Every viewer must end
with every event exactly once; lost and duplicated events are counted. Printed: p50/p99 and the ratio of the
p99 at --viewers to the p99 at one viewer measured in the same run.

API: locust, headless, through HAProxy, with `bench/locustfile_cluster.py` (80 % reads of plans, executions
and RTO/RPO; 20 % dry-run DR tests and dry-run failovers, which may collide and get the documented 409):
first one user for --baseline-duration seconds (the baseline), then --users users for --duration seconds.
Printed: p50/p99 overall, the worst p99 of the reads and of the triggers, the ratio of the p99 to the
baseline's, the failures. For each step, what the web nodes logged meanwhile: connections PostgreSQL refused
("too many clients") and reads from Redis that timed out, so a failure can be told from a slow answer.

The cluster is stopped and its directory deleted at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api import machine  # noqa: E402
from bench.console_latency import Result, Viewer, new_execution, watch  # noqa: E402
from drplan.tests.cluster_support import free_base_port, haproxy_command, sign_in_token  # noqa: E402

PLANS = "back-office,core-commerce,payments-pci"  # the demo plans that need no lab
TEST_PLANS = "back-office"  # the one of them with a test runbook


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", default="200", help="viewer counts after the baseline of one, e.g. 50,200")
    parser.add_argument("--events", type=int, default=200, help="step events emitted during the execution")
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--users", default="50", help="locust user counts after the baseline of one, e.g. 10,50")
    parser.add_argument("--duration", type=int, default=40, help="seconds of each loaded API run")
    parser.add_argument("--baseline-duration", type=int, default=30, help="seconds of the one-user API run")
    parser.add_argument("--only", default="console,api", help="console, api or both")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    viewer_levels = [1, *(int(n) for n in args.viewers.split(","))]
    user_levels = [(1, args.baseline_duration), *((int(n), args.duration) for n in args.users.split(","))]

    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="drplan-bench-cluster-load-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    cluster_cmd = [sys.executable, "scripts/cluster.py"]
    load_start = "/".join(f"{x:.2f}" for x in os.getloadavg())
    up = subprocess.run(
        [*cluster_cmd, "up", "--dir", str(root), "--port", str(free_base_port()), "--no-ml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if up.returncode:
        print(up.stderr + up.stdout, file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)
        return 1
    state = json.loads((root / "state.json").read_text())
    node_env = {
        **env,
        **state["env"],
        "DRPLAN_VAR_DIR": str(root / "nodes" / "bench"),
        "DRPLAN_LOG_LEVEL": "ERROR",
        "DJANGO_SETTINGS_MODULE": "drplan.settings",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(node_env)
    console: list[tuple[Result, dict[str, int], dict[str, int]]] = []  # result, viewers per node, server errors
    api: list[tuple[int, dict[str, Any], dict[str, int]]] = []  # users, locust stats, server errors
    try:
        if "console" in parts:
            cookie = viewer_session()
            for n in viewer_levels:
                errors = server_errors(root)
                result, spread = asyncio.run(scenario(state, cookie, node_env, n, args.events, args.rate))
                console.append((result, spread, _minus(server_errors(root), errors)))
                print(f"console, {n} viewers: p99 {result.percentile_ms(0.99):.1f} ms {spread}", flush=True)
        if "api" in parts:
            token = sign_in_token(state, "operator")
            for users, seconds in user_levels:
                errors = server_errors(root)
                stats = locust(state, env, token, users, seconds, root)
                api.append((users, stats, _minus(server_errors(root), errors)))
                print(f"api, {users} users: p99 {stats['Aggregated']['p99']:.0f} ms", flush=True)
    finally:
        subprocess.run([*cluster_cmd, "down", "--dir", str(root), "--purge"], cwd=ROOT, env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)

    print()
    print(f"date:    {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average at the start {load_start}")
    print(f"machine: {machine()}")
    print("cluster: PostgreSQL 16 + Redis, 2 daphne web nodes behind HAProxy, 2 worker clusters (DRPLAN_WORKERS=2)")
    clean = True
    if console:
        print()
        print(f"Console: {args.events} step events at {args.rate:g}/s during a running execution, viewers via HAProxy")
        print(
            "| viewers | on web1 / web2 | messages | p50 ms | p99 ms | p99 / p99 at 1 | lost | duplicated "
            "| incomplete viewers | server: PG refused / Redis timeouts |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
        base = console[0][0].percentile_ms(0.99)
        for r, nodes, errors in console:
            print(
                f"| {r.viewers} | {nodes.get('web1', 0)} / {nodes.get('web2', 0)} | {r.received} | "
                f"{r.percentile_ms(0.5):.1f} | {r.percentile_ms(0.99):.1f} | {r.percentile_ms(0.99) / base:.2f} | "
                f"{r.lost} | {r.duplicated} | {r.incomplete} | {errors['pg']} / {errors['redis']} |"
            )
            clean &= r.lost == r.duplicated == r.incomplete == 0
    if api:
        print()
        print(f"API through HAProxy (locust: 80 % reads, 20 % dry-run triggers; loaded runs of {args.duration} s)")
        print(
            "| users | requests | req/s | p50 ms | p99 ms | p99 / p99 at 1 | p99 reads ms | p99 triggers ms "
            "| failed (5xx) | server: PG refused / Redis timeouts |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
        base = api[0][1]["Aggregated"]["p99"]
        for users, stats, errors in api:
            total = stats["Aggregated"]
            reads = max(v["p99"] for k, v in stats.items() if k.startswith("read:"))
            triggers = max((v["p99"] for k, v in stats.items() if k.startswith("trigger:")), default=float("nan"))
            print(
                f"| {users} | {total['count']} | {total['rps']:.1f} | {total['p50']:.0f} | {total['p99']:.0f} | "
                f"{total['p99'] / base:.1f} | {reads:.0f} | {triggers:.0f} | {total['failures']} ({stats['5xx']}) | "
                f"{errors['pg']} / {errors['redis']} |"
            )
            clean &= total["failures"] == 0
            for error, count in stats["errors"].items():
                print(f"  failures with {users} user(s): {count} x {error}")
    print(f"total time: {time.monotonic() - started:.0f} s; load average now {os.getloadavg()[0]:.2f}")
    return 0 if clean else 1


def server_errors(root: Path) -> dict[str, int]:
    """What the web nodes logged so far: connections PostgreSQL refused, reads from Redis that timed out."""
    text = "".join((root / f"{node}.log").read_text(errors="replace") for node in ("web1", "web2"))
    return {"pg": text.count("FATAL:  sorry, too many clients already\n"), "redis": text.count("redis.exceptions.Ti")}


def _minus(now: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: now[key] - before[key] for key in now}


# ------------------------------------------------------------------------------------------- console
def viewer_session() -> str:
    """A session of the demo's viewer, made as one more node of the cluster (sessions live in PostgreSQL)."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="viewer"))
    connection.close()
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def scenario(
    state: dict[str, Any], cookie: str, env: dict[str, str], n: int, events: int, rate: float
) -> tuple[Result, dict[str, int]]:
    port = state["ports"]["proxy"]
    execution_id, step_id = await asyncio.to_thread(new_execution)
    viewers = [Viewer() for _ in range(n)]
    readies = [asyncio.Event() for _ in viewers]
    timeout = events / rate + 60
    tasks = [
        asyncio.create_task(watch(port, execution_id, cookie, v, r, timeout))
        for v, r in zip(viewers, readies, strict=True)
    ]
    await asyncio.gather(*(r.wait() for r in readies))
    await asyncio.sleep(2)  # every consumer has caught up (?after=0) and subscribed on its node
    spread = proxied_sessions(state)
    emitter = [sys.executable, str(ROOT / "bench" / "console_latency.py"), "--emit"]
    process = await asyncio.create_subprocess_exec(
        *emitter, str(execution_id), str(step_id), str(events), str(rate), cwd=ROOT, env=env
    )
    await asyncio.gather(*tasks)
    if await process.wait() != 0:
        raise SystemExit(f"the emitter exited with {process.returncode}")
    expected = list(range(1, events + 3))  # the step events, the terminal status and the summary
    lost = duplicated = incomplete = 0
    latencies: list[float] = []
    errors: dict[str, int] = {}
    for viewer in viewers:
        lost += len(set(expected) - set(viewer.seqs))
        duplicated += len(viewer.seqs) - len(set(viewer.seqs))
        incomplete += viewer.summary is None or viewer.seqs != expected
        latencies += viewer.latencies
        if viewer.error:
            errors[viewer.error[:120]] = errors.get(viewer.error[:120], 0) + 1
    for error, count in errors.items():
        print(f"  {count} viewer(s): {error}", flush=True)
    received = sum(len(v.seqs) for v in viewers)
    return Result("redis", n, latencies, received, lost, duplicated, incomplete), spread


def proxied_sessions(state: dict[str, Any]) -> dict[str, int]:
    """Connections HAProxy holds open to each web node now (its runtime API, `show stat`)."""
    lines = haproxy_command(state, "show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
    return {r["svname"]: int(r["scur"] or 0) for r in rows if r["pxname"] == "web" and r["svname"] in ("web1", "web2")}


# ----------------------------------------------------------------------------------------------- api
def locust(state: dict[str, Any], env: dict[str, str], token: str, users: int, seconds: int, root: Path) -> dict:
    """One headless locust run through the proxy; per request name: count, failures, p50, p99 (ms), req/s."""
    prefix = root / f"locust-{users}"
    argv = [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile_cluster.py"), "--headless"]
    argv += ["-u", str(users), "-r", str(max(1, users // 5)), "-t", f"{seconds}s", "--stop-timeout", "10"]
    argv += ["-H", f"http://127.0.0.1:{state['ports']['proxy']}", "--csv", str(prefix), "--only-summary"]
    argv += ["--loglevel", "ERROR"]
    run_env = {**env, "DRPLAN_BENCH_TOKEN": token, "DRPLAN_BENCH_PLANS": PLANS, "DRPLAN_BENCH_TEST_PLANS": TEST_PLANS}
    subprocess.run(argv, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=seconds + 120)
    stats: dict[str, Any] = {}
    with open(f"{prefix}_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            stats[row["Name"]] = {
                "count": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p50": float(row["50%"] or "nan"),
                "p99": float(row["99%"] or "nan"),
                "rps": float(row["Requests/s"] or 0),
            }
    errors: dict[str, int] = {}
    with open(f"{prefix}_failures.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            errors[f"{row['Name']}: {row['Error'][:160]}"] = int(row["Occurrences"])
    stats["errors"] = errors
    stats["5xx"] = sum(count for error, count in errors.items() if "500" in error or "502" in error or "503" in error)
    return stats


if __name__ == "__main__":
    sys.exit(main())
