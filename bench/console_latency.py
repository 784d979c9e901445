"""Live console latency: a step event persisted by a worker process → received by websocket clients
of a real daphne server, p50/p99 with 1 and with 50 concurrent viewers, on the embedded default
(no Redis: the web process polls the table) and on Redis (channel layer).

    .venv/bin/python bench/console_latency.py [--events 200] [--rate 20] [--viewers 1,50] [--modes embedded,redis]

Steps: a temporary var dir with its own SQLite database (DRPLAN_VAR_DIR), migrate, a viewer with a
signed-in session; per mode start `python -m daphne` on a free 127.0.0.1 port (and, for Redis, a private
redis-server via scripts/with_redis.start_redis); per viewer count create a running execution, connect the
viewers (the `websockets` library, one asyncio loop, session cookie + Origin), then start a separate emitter
process that writes step events through failover.engine.events.emit at a steady rate and finishes the
execution. Latency = receive time minus the event's created_at (same machine clock). Every client must end
with every seq exactly once and the summary; lost and duplicated messages are counted.
BENCH_WORST=1 also prints the slowest deliveries and the emitter's slowest commits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench.api import configure_environment, free_port, machine, stop_server  # noqa: E402

GOAL_P99_MS = 100.0


# --- the emitter (a separate process, like a worker) -------------------------------------------


def emit_steadily(execution_id: int, step_run_id: int, events: int, rate: float) -> None:
    import django

    django.setup()
    from django.db import transaction

    from failover.engine.events import emit, wait_until_published
    from failover.engine.states import transition_execution
    from failover.models import ExecutionEvent

    period = 1.0 / rate
    commit_lag: list[tuple[float, int]] = []  # created_at -> emit() returned (committed)
    start = time.monotonic()
    for i in range(events):
        delay = start + i * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if i % 2:
            event = emit(execution_id, ExecutionEvent.Kind.LOG, f"output line {i}", step_run_id=step_run_id)
        else:
            event = emit(
                execution_id, ExecutionEvent.Kind.STEP_STATUS, "step heartbeat", {"i": i}, step_run_id=step_run_id
            )
        commit_lag.append((time.time() - event.created_at.timestamp(), event.seq))
    with transaction.atomic():
        transition_execution(execution_id, "completed")
        emit(execution_id, ExecutionEvent.Kind.SUMMARY, "execution completed", {"status": "completed"})
    if os.environ.get("BENCH_WORST"):
        print(
            "  emitter: slowest commits (ms, seq):", [(round(1000 * lag), seq) for lag, seq in sorted(commit_lag)[-5:]]
        )
    if not wait_until_published(30):
        raise SystemExit("events were not all published")


# --- the benchmark ------------------------------------------------------------------------


def start_server(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    """daphne on 127.0.0.1:port, ready when it accepts connections (the websocket routes need no HTTP URLs)."""
    log = log_path.open("wb")
    cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "drplan.asgi:application"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"daphne exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    stop_server(proc)
    raise SystemExit("daphne did not listen within 30 s")


def prepare_database() -> str:
    """Migrate; return the session cookie of a signed-in viewer."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client

    from core.roles import VIEWER, setup_roles

    call_command("migrate", verbosity=0, interactive=False)
    setup_roles()
    user = User.objects.create_user("bench-viewer", password="bench-pw", is_staff=True)
    user.groups.add(Group.objects.get(name=VIEWER))
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def new_execution() -> tuple[int, int]:
    from django.db import connection
    from django.utils import timezone

    from failover.models import FailoverExecution, StepRun

    execution = FailoverExecution.objects.create(
        execution_type="runbook", status="running", triggered_at=timezone.now()
    )
    step = StepRun.objects.create(execution=execution, step_key="step", title="Step", action="noop", status="running")
    connection.close()
    return execution.pk, step.pk


@dataclass
class Viewer:
    latencies: list[float] = field(default_factory=list)
    timed: list[tuple[int, float]] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    summary: dict | None = None
    error: str = ""


async def watch(port: int, execution_id: int, cookie: str, viewer: Viewer, ready: asyncio.Event, timeout: float):
    from websockets.asyncio.client import connect

    url = f"ws://127.0.0.1:{port}/ws/executions/{execution_id}/?after=0"
    headers = {"Cookie": f"sessionid={cookie}"}
    try:
        async with connect(url, origin=f"http://127.0.0.1:{port}", additional_headers=headers) as ws:
            ready.set()
            async with asyncio.timeout(timeout):
                async for raw in ws:
                    received = time.time()
                    message = json.loads(raw)
                    if message["type"] == "event":
                        event = message["event"]
                        viewer.seqs.append(event["seq"])
                        if event["kind"] in ("step_status", "log"):
                            created = datetime.fromisoformat(event["created_at"]).timestamp()
                            viewer.latencies.append(received - created)
                            viewer.timed.append((event["seq"], received - created))
                    elif message["type"] == "summary":
                        viewer.summary = message
                        return
                    else:
                        viewer.error = str(message)
                        return
    except Exception as exc:  # counted, never hidden
        viewer.error = f"{type(exc).__name__}: {exc}"
        ready.set()


@dataclass
class Result:
    mode: str
    viewers: int
    latencies: list[float]
    received: int
    lost: int
    duplicated: int
    incomplete: int

    def percentile_ms(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[max(0, math.ceil(p * len(ordered)) - 1)] if ordered else float("nan")


async def run_scenario(
    mode: str, port: int, cookie: str, env: dict[str, str], n_viewers: int, events: int, rate: float
) -> Result:
    execution_id, step_id = await asyncio.to_thread(new_execution)
    viewers = [Viewer() for _ in range(n_viewers)]
    readies = [asyncio.Event() for _ in viewers]
    timeout = events / rate + 60
    tasks = [
        asyncio.create_task(watch(port, execution_id, cookie, v, r, timeout))
        for v, r in zip(viewers, readies, strict=True)
    ]
    await asyncio.gather(*(r.wait() for r in readies))
    await asyncio.sleep(0.5)  # every consumer subscribed
    argv = [sys.executable, __file__, "--emit", str(execution_id), str(step_id), str(events), str(rate)]
    emitter = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, env=env)
    await asyncio.gather(*tasks)
    if await emitter.wait() != 0:
        raise SystemExit(f"the emitter exited with {emitter.returncode}")

    expected = list(range(1, events + 3))  # the step events, the terminal status and the summary event
    lost = duplicated = incomplete = 0
    latencies: list[float] = []
    for viewer in viewers:
        lost += len(set(expected) - set(viewer.seqs))
        duplicated += len(viewer.seqs) - len(set(viewer.seqs))
        incomplete += viewer.summary is None or viewer.seqs != expected
        latencies += viewer.latencies
        if viewer.error:
            print(f"  viewer error: {viewer.error}", flush=True)
    if os.environ.get("BENCH_WORST"):
        worst = sorted((lat, seq) for v in viewers for seq, lat in v.timed)[-20:]
        print("  worst (ms, seq):", [(round(1000 * lat), seq) for lat, seq in worst])
    return Result(mode, n_viewers, latencies, sum(len(v.seqs) for v in viewers), lost, duplicated, incomplete)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200, help="step events per scenario")
    parser.add_argument("--rate", type=float, default=20.0, help="events per second from the emitter process")
    parser.add_argument("--viewers", default="1,50")
    parser.add_argument("--modes", default="embedded,redis")
    parser.add_argument("--emit", nargs=4, metavar=("EXECUTION", "STEP", "EVENTS", "RATE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emit:
        execution, step, events, rate = args.emit
        emit_steadily(int(execution), int(step), int(events), float(rate))
        return

    import websockets
    from with_redis import start_redis, stop_redis

    started = time.monotonic()
    var_dir = Path(tempfile.mkdtemp(prefix="drplan-bench-console-"))
    results: list[Result] = []
    try:
        env = configure_environment(var_dir)
        print(f"date:    {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
        print(f"machine: {machine()}")
        print(f"setup:   SQLite in {var_dir}; websockets {websockets.__version__}; {args.events} events/scenario")
        cookie = prepare_database()
        for mode in args.modes.split(","):
            redis_proc = None
            mode_env = dict(env)
            if mode == "redis":
                redis_dir = var_dir / "redis"
                redis_dir.mkdir()
                redis_proc, mode_env["REDIS_URL"] = start_redis(redis_dir)
            port = free_port()
            server = start_server(mode_env, port, var_dir / f"daphne-{mode}.log")
            poll = "Redis channel layer" if mode == "redis" else "table polled by the web process"
            print(f"server:  {mode}: daphne pid {server.pid} on 127.0.0.1:{port}; live events via {poll}", flush=True)
            try:
                for n in (int(v) for v in args.viewers.split(",")):
                    result = asyncio.run(run_scenario(mode, port, cookie, mode_env, n, args.events, args.rate))
                    results.append(result)
                    print(
                        f"  {mode} {n} viewers: p50 {result.percentile_ms(0.5):.1f} ms, "
                        f"p99 {result.percentile_ms(0.99):.1f} ms, lost {result.lost}, dup {result.duplicated}",
                        flush=True,
                    )
            finally:
                stop_server(server)
                if redis_proc is not None:
                    stop_redis(redis_proc)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)

    print()
    print("| channel | viewers | messages | p50 ms | p99 ms | max ms | lost | duplicated | incomplete viewers |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.mode} | {r.viewers} | {r.received} | {r.percentile_ms(0.5):.1f} | {r.percentile_ms(0.99):.1f} | "
            f"{r.percentile_ms(1.0):.1f} | {r.lost} | {r.duplicated} | {r.incomplete} |"
        )
    worst = max((r.percentile_ms(0.99) for r in results if r.viewers >= 50), default=float("nan"))
    clean = all(r.lost == r.duplicated == r.incomplete == 0 for r in results)
    verdict = "met" if worst <= GOAL_P99_MS and clean else "NOT met"
    print()
    print(f"goal: p99 <= {GOAL_P99_MS:.0f} ms with 50 viewers, no message lost: {verdict} (worst p99 {worst:.1f} ms)")
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total time: {time.monotonic() - started:.1f} s; load average now {load}")
    if not clean:
        sys.exit(1)


if __name__ == "__main__":
    main()
