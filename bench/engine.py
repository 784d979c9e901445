"""Engine benchmark: DRPlan's coordinator against a plain asyncio runner of the same DAGs.

    .venv/bin/python bench/engine.py [--modes inline,orm,redis,pg] [--repeat 5]

Workloads (issue 3):
  W1  a chain of 50 no-op shell steps (`true`)                  -> orchestration overhead per step
  W2  start -> 100 parallel `sleep 0.2` -> join, parallelism 20  -> efficiency (ideal span 1.0 s)
  W3  a 30-step, four-tier DR plan, sleeps 0.05-0.5 s           -> efficiency against its critical path

Runners, each in the same run:
  floor   plain asyncio + subprocess, no database (the floor), run right before every DRPlan run of the
          same workload in the same process, so both see the machine at the same moment
  inline  DRPlan's coordinator in this process (every state change durable in SQLite)
  orm     a real `manage.py qcluster` worker, django-q2 ORM broker (the embedded default)
  redis   a real worker with the Redis broker (a private redis-server on 127.0.0.1)
  pg      the coordinator in this process on a throw-away PostgreSQL 16 (pgserver)

Figures: executed span (first step start -> last step end), ms per step (W1), efficiency =
ideal or critical-path span / executed span (W2, W3), trigger -> first step started (from the
execution's trigger time to the first step's start, both stored by DRPlan), and peak resident
memory of the process running the coordinator. Medians over --repeat runs. Then the goals of issue 15,
point 6 that are the engine's, each with PASS or FAIL: W1 per step <= 3x the floor's, W2 efficiency within
0.03 of the floor's, trigger -> first step <= 100 ms on both brokers, W1 on PostgreSQL <= 1.5x SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# --- workloads -------------------------------------------------------------------


def w1() -> dict[str, Any]:
    steps = [{"id": f"s{i:02d}", "action": "shell", "with": {"argv": ["true"]}} for i in range(50)]
    for i in range(1, 50):
        steps[i]["needs"] = [f"s{i - 1:02d}"]
    return {"name": "W1 chain of 50 true", "slug": "bench-w1", "version": "1.0.0", "category": "test", "steps": steps}


def w2() -> dict[str, Any]:
    steps = [{"id": "start", "action": "shell", "with": {"argv": ["true"]}}]
    steps += [
        {"id": f"p{i:03d}", "action": "shell", "with": {"argv": ["sleep", "0.2"]}, "needs": ["start"]}
        for i in range(100)
    ]
    steps.append(
        {"id": "join", "action": "shell", "with": {"argv": ["true"]}, "needs": [f"p{i:03d}" for i in range(100)]}
    )
    return {
        "name": "W2 fan-out 100 x sleep 0.2",
        "slug": "bench-w2",
        "version": "1.0.0",
        "category": "test",
        "parallelism": 20,
        "steps": steps,
    }


W3_TIERS = (6, 8, 8, 8)


def _w3_duration(tier: int, index: int) -> float:
    return round(0.05 + ((tier * 7 + index * 3) % 10) * 0.05, 2)  # 0.05 .. 0.5 s


def w3() -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    previous: list[str] = []
    for tier, count in enumerate(W3_TIERS, start=1):
        current = []
        for index in range(count):
            step_id = f"t{tier}-{index}"
            step: dict[str, Any] = {
                "id": step_id,
                "action": "shell",
                "with": {"argv": ["sleep", str(_w3_duration(tier, index))]},
            }
            if previous:
                step["needs"] = sorted({previous[index % len(previous)], previous[(index + 1) % len(previous)]})
            steps.append(step)
            current.append(step_id)
        previous = current
    return {"name": "W3 four-tier DR plan", "slug": "bench-w3", "version": "1.0.0", "category": "test", "steps": steps}


def sleep_of(step: dict[str, Any]) -> float:
    argv = step["with"]["argv"]
    return float(argv[1]) if argv[0] == "sleep" else 0.0


def critical_path(doc: dict[str, Any]) -> float:
    finish: dict[str, float] = {}
    for step in doc["steps"]:  # documents list steps after their needs
        finish[step["id"]] = max((finish[n] for n in step.get("needs", [])), default=0.0) + sleep_of(step)
    return max(finish.values())


WORKLOADS = {"W1": w1, "W2": w2, "W3": w3}
IDEAL_SPAN = {"W2": 1.0}  # 100 x 0.2 s over 20 slots


# --- the floor: plain asyncio ---------------------------------------------------


async def _floor_run(doc: dict[str, Any]) -> dict[str, float]:
    limit = asyncio.Semaphore(doc.get("parallelism") or 10_000)
    done: dict[str, asyncio.Event] = {s["id"]: asyncio.Event() for s in doc["steps"]}
    starts: list[float] = []
    ends: list[float] = []

    async def run(step: dict[str, Any]) -> None:
        for need in step.get("needs", []):
            await done[need].wait()
        async with limit:
            starts.append(time.perf_counter())
            proc = await asyncio.create_subprocess_exec(*step["with"]["argv"])
            await proc.wait()
            ends.append(time.perf_counter())
        done[step["id"]].set()

    await asyncio.gather(*(run(s) for s in doc["steps"]))
    return {"span": max(ends) - min(starts), "trigger_to_first_ms": None}


def floor_run(doc: dict[str, Any]) -> dict[str, Any]:
    result = asyncio.run(_floor_run(doc))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


# --- DRPlan runs (child process per mode: settings are read at start-up) ------------


def _setup_django() -> None:
    import django

    django.setup()


def prepare() -> None:
    """Migrate, create the bench user and import + approve the three workloads."""
    _setup_django()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from core.roles import setup_roles
    from runbooks.choices import VersionStatus
    from runbooks.models import RunbookVersion
    from runbooks.services import import_runbook_document

    call_command("migrate", verbosity=0, interactive=False)
    setup_roles()
    User.objects.create_superuser("bench", password="bench-pw-not-secret")
    for make in WORKLOADS.values():
        version = import_runbook_document(make())
        RunbookVersion.objects.filter(pk=version.pk).update(status=VersionStatus.APPROVED)


def _execution_figures(execution_id: int) -> dict[str, Any]:
    from failover.models import FailoverExecution, StepRun

    execution = FailoverExecution.objects.get(pk=execution_id)
    steps = list(StepRun.objects.filter(execution_id=execution_id).values("started_at", "finished_at", "status"))
    first = min(s["started_at"] for s in steps)
    last = max(s["finished_at"] for s in steps)
    return {
        "status": execution.status,
        "span": (last - first).total_seconds(),
        "trigger_to_first_ms": (first - execution.triggered_at).total_seconds() * 1000,
        "not_succeeded": sum(1 for s in steps if s["status"] != "succeeded"),
    }


def _trigger(workload: str) -> int:
    from django.contrib.auth.models import User

    from failover.services import execute_runbook
    from runbooks.models import Runbook

    runbook = Runbook.objects.get(slug=f"bench-{workload.lower()}")
    return execute_runbook(runbook, actor=User.objects.get(username="bench")).pk


def run_inline(workload: str) -> dict[str, Any]:
    from failover.engine.runner import run_execution

    execution_id = _trigger(workload)
    run_execution(execution_id)
    figures = _execution_figures(execution_id)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def _tree_peak_rss_mb(pid: int) -> float:
    """Largest VmHWM (peak RSS) among a process and its descendants."""
    peak = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            pending += [int(c) for c in children]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return peak


def run_with_worker(workload: str, worker_pid: int, timeout: float = 120) -> dict[str, Any]:
    from failover.engine.states import TERMINAL_EXECUTION
    from failover.models import FailoverExecution

    execution_id = _trigger(workload)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = FailoverExecution.objects.filter(pk=execution_id).values_list("status", flat=True).get()
        if status in TERMINAL_EXECUTION:
            break
        time.sleep(0.05)
    else:
        raise SystemExit(f"{workload}: execution #{execution_id} not finished after {timeout:.0f} s")
    figures = _execution_figures(execution_id)
    figures["peak_rss_mb"] = _tree_peak_rss_mb(worker_pid)
    return figures


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def child(mode: str, repeat: int) -> None:
    """Run every workload `repeat` times in one mode, each DRPlan run right after a floor run of the same
    workload in this process (so both see the same machine at the same moment); print one JSON line."""
    if mode == "prepare":
        prepare()
        return
    _setup_django()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in WORKLOADS}
    worker = None
    try:
        if mode in ("orm", "redis"):
            worker = start_worker(dict(os.environ), Path(os.environ["DRPLAN_VAR_DIR"]) / f"worker-{mode}.log")
            run_with_worker("W1", worker.pid, timeout=180)  # warm-up: the worker is up and serving
        else:
            from failover.tasks import freeze_start_up_objects

            run_inline("W1")  # warm-up: imports, connection
            freeze_start_up_objects()  # as a worker process does once started
        for _ in range(repeat):
            for name, make in WORKLOADS.items():
                floor = floor_run(make())
                figures = run_inline(name) if worker is None else run_with_worker(name, worker.pid)
                figures["floor_span"] = floor["span"]
                results[name].append(figures)
    finally:
        if worker is not None:
            stop_worker(worker)
    print(json.dumps(results))


# --- orchestration ----------------------------------------------------------------


def summarise(runner: str, name: str, runs: list[dict[str, Any]], doc: dict[str, Any]) -> dict[str, Any]:
    span = statistics.median(r["span"] for r in runs)
    steps = len(doc["steps"])
    ideal = IDEAL_SPAN.get(name, critical_path(doc))
    first = [r["trigger_to_first_ms"] for r in runs if r.get("trigger_to_first_ms") is not None]
    failed = [r for r in runs if r.get("status", "completed") != "completed" or r.get("not_succeeded")]
    floors = [r["floor_span"] for r in runs if "floor_span" in r]
    return {
        "runner": runner,
        "workload": name,
        "span_s": span,
        "ms_per_step": span / steps * 1000 if name == "W1" else None,
        "efficiency": ideal / span if name != "W1" else None,
        "trigger_to_first_ms": statistics.median(first) if first else None,
        "all_trigger_to_first_ms": first,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "failed_runs": len(failed),
        # Against the floor run just before each run (same process, same moment): W1 the median of the
        # per-run ratios of span, W2/W3 the median of (floor efficiency - this efficiency).
        "x_floor": statistics.median(r["span"] / r["floor_span"] for r in runs) if floors else None,
        "floor_efficiency": statistics.median(ideal / f for f in floors) if floors else None,
        "efficiency_gap": statistics.median(ideal / r["floor_span"] - ideal / r["span"] for r in runs)
        if floors
        else None,
    }


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


RUNNERS = ["floor", "inline", "orm", "redis", "pg"]


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        "| workload | runner | span s | ms/step | efficiency | × floor (W1) / floor eff. − eff. | "
        "trigger→first step ms | peak RSS MB | failed |"
    )
    print(header)
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: (r["workload"], RUNNERS.index(r["runner"]))):
        against = _fmt(r["x_floor"], ".2f") if r["workload"] == "W1" else _fmt(r["efficiency_gap"], "+.3f")
        print(
            f"| {r['workload']} | {r['runner']} | {r['span_s']:.3f} | {_fmt(r['ms_per_step'], '.2f')} | "
            f"{_fmt(r['efficiency'], '.3f')} | {against} | {_fmt(r['trigger_to_first_ms'], '.1f')} | "
            f"{r['peak_rss_mb']:.0f} | {r['failed_runs']} |"
        )


def goals(rows: list[dict[str, Any]], pg_commit_ms: float | None = None) -> list[tuple[str, str, str, bool]]:
    """Issue 15 point 6, the engine's part: (goal, what, measured, holds)."""
    by = {(r["runner"], r["workload"]): r for r in rows}
    out: list[tuple[str, str, str, bool]] = []
    for runner in ("inline", "orm", "redis", "pg"):
        w1, w2 = by.get((runner, "W1")), by.get((runner, "W2"))
        if w1 is None or w2 is None:
            continue
        out.append(("W1 per step <= 3x the floor's", runner, f"{w1['x_floor']:.2f}x", w1["x_floor"] <= 3))
        out.append(
            (
                "W2 efficiency within 0.03 of the floor's",
                runner,
                f"{w2['efficiency']:.3f} vs floor {w2['floor_efficiency']:.3f} (gap {w2['efficiency_gap']:+.3f})",
                w2["efficiency_gap"] <= 0.03,
            )
        )
        if runner in ("orm", "redis"):
            every = by[(runner, "W1")]["all_trigger_to_first_ms"] + by[(runner, "W2")]["all_trigger_to_first_ms"]
            every += by[(runner, "W3")]["all_trigger_to_first_ms"]
            median = statistics.median(every)
            out.append(
                (
                    "trigger -> first step <= 100 ms (median of every run)",
                    runner,
                    f"{median:.1f} ms (worst {max(every):.1f})",
                    median <= 100,
                )
            )
    if ("pg", "W1") in by and ("inline", "W1") in by:
        pg, sqlite = by[("pg", "W1")], by[("inline", "W1")]
        ratio = pg["x_floor"] / sqlite["x_floor"]
        fsync = f"; a durable commit on this PostgreSQL {pg_commit_ms:.2f} ms" if pg_commit_ms else ""
        out.append(
            (
                "W1 on PostgreSQL <= 1.5x SQLite (each against its own floor)",
                "pg/inline",
                f"{ratio:.2f}x ({pg['ms_per_step']:.2f} vs {sqlite['ms_per_step']:.2f} ms/step{fsync})",
                ratio <= 1.5,
            )
        )
    return out


def start_postgres(var_dir: Path) -> tuple[Any, str]:
    """A throw-away PostgreSQL 16 (pgserver, as scripts/with_postgres.py); returns (server, DATABASE_URL)."""
    from urllib.parse import quote

    import pgserver

    server = pgserver.get_server(Path(tempfile.mkdtemp(prefix="pg-", dir=var_dir)), cleanup_mode="delete")
    socket_dir = server.get_postmaster_info().socket_dir
    return server, f"postgres://postgres@{quote(str(socket_dir), safe='')}/postgres"


def durable_commit_ms(url: str, count: int = 200) -> float:
    """Median time of a committed one-row UPDATE on the PostgreSQL server (synchronous_commit on, its default):
    the WAL flush every durable transaction waits for, the cost per step SQLite in WAL mode with
    synchronous=NORMAL does not pay (it syncs at checkpoints)."""
    from urllib.parse import unquote, urlparse

    import psycopg

    host = unquote(urlparse(url).netloc.split("@", 1)[1])
    with psycopg.connect(host=host, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_durable (id int PRIMARY KEY, n int)")
        conn.execute("INSERT INTO bench_commit_durable VALUES (1, 0) ON CONFLICT DO NOTHING")
        times = []
        for _ in range(count):
            started = time.perf_counter()
            with conn.transaction():
                conn.execute("UPDATE bench_commit_durable SET n = n + 1 WHERE id = 1")
            times.append((time.perf_counter() - started) * 1000)
        conn.execute("DROP TABLE bench_commit_durable")
    return statistics.median(times)


def run_child(mode: str, env: dict[str, str], repeat: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--repeat", str(repeat)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if out.returncode != 0:
        raise SystemExit(f"mode {mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]) if mode != "prepare" else {}


def main() -> None:
    parser = argparse.ArgumentParser(description="DRPlan engine benchmark")
    parser.add_argument("--modes", default="inline,orm,redis,pg", help="inline, orm, redis, pg (inline on PostgreSQL)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeat)
        return

    modes = [m for m in args.modes.split(",") if m]
    var_dir = Path(tempfile.mkdtemp(prefix="drplan-bench-engine-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DRPLAN_SQLITE_PATH")}
    env.update(
        DRPLAN_VAR_DIR=str(var_dir),
        DRPLAN_ENV="development",
        DRPLAN_LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="drplan.settings",
        PYTHONPATH=str(ROOT),
    )
    redis_proc = pg_server = None
    pg_commit_ms: float | None = None
    rows: list[dict[str, Any]] = []
    floors: dict[str, list[dict[str, Any]]] = {name: [] for name in WORKLOADS}
    started = time.monotonic()
    load_start = os.getloadavg()
    try:
        run_child("prepare", env, args.repeat)
        for mode in modes:
            mode_env = dict(env)
            if mode == "redis":
                from scripts.with_redis import start_redis

                redis_proc, url = start_redis(var_dir)
                mode_env["REDIS_URL"] = url
            if mode == "pg":
                pg_server, url = start_postgres(var_dir)
                mode_env["DATABASE_URL"] = url
                run_child("prepare", mode_env, args.repeat)
                pg_commit_ms = durable_commit_ms(url)
            raw = run_child("inline" if mode == "pg" else mode, mode_env, args.repeat)
            for name, runs in raw.items():
                rows.append(summarise(mode, name, runs, WORKLOADS[name]()))
                floors[name] += [{"span": r["floor_span"], "peak_rss_mb": 0} for r in runs]
            if redis_proc is not None:
                from scripts.with_redis import stop_redis

                stop_redis(redis_proc)
                redis_proc = None
            if pg_server is not None:
                pg_server.cleanup()
                pg_server = None
        for name, runs in floors.items():
            if runs:
                rows.append(summarise("floor", name, runs, WORKLOADS[name]()))
    finally:
        if redis_proc is not None:
            from scripts.with_redis import stop_redis

            stop_redis(redis_proc)
        if pg_server is not None:
            pg_server.cleanup()
        shutil.rmtree(var_dir, ignore_errors=True)

    load = os.getloadavg()
    print(f"date:    {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(
        f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average "
        f"{load_start[0]:.2f} at the start, {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f} at the end"
    )
    print(
        f"runs:    median of {args.repeat} per workload and runner, each right after a floor run of the same "
        f"workload in the same process; W3 critical path {critical_path(w3()):.2f} s\n"
    )
    print_table(rows)
    print("\nissue 15 point 6 (the engine's part):\n")
    print("| goal | runner | measured | holds |")
    print("|---|---|---|---|")
    for goal, runner, measured, holds in goals(rows, pg_commit_ms):
        print(f"| {goal} | {runner} | {measured} | {'PASS' if holds else 'FAIL'} |")
    print(f"\ntotal time: {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
