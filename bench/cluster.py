"""Throughput of a real cluster with one and with two worker clusters (issue 15, points 3 and 5, in part).

    .venv/bin/python bench/cluster.py [--executions 200] [--steps 20] [--step-seconds 0.02]

Starts `scripts/cluster.py up --no-ml` in a temporary directory (PostgreSQL 16, Redis, two web nodes behind
HAProxy, two django-q2 worker clusters on the Redis broker, each with DRPLAN_WORKERS=2), then runs the same
workload twice: first with one worker cluster (the other stopped), then with both. The workload: --executions
executions of a --steps-step chain whose steps are `sleep --step-seconds` (waiting on the world, as recovery
steps do: not CPU-bound), all enqueued at once. Measured per phase: the span from the first enqueue to the last
execution's end, executions per minute, steps per second; checked: every execution completed and no step ran
more than once. Printed: the scaling factor (steps per second with two clusters over one; goal ≥ 1.7).

The client is one more node: it creates the executions with the cluster's settings (Django's ORM on the
cluster's PostgreSQL) and enqueues them on its Redis.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GOAL_SCALING = 1.7


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--step-seconds", type=float, default=0.02)
    args = parser.parse_args()
    from drplan.tests.cluster_support import free_base_port

    root = Path(tempfile.mkdtemp(prefix="drplan-bench-cluster-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    cluster = [sys.executable, "scripts/cluster.py"]
    up = subprocess.run(
        [*cluster, "up", "--dir", str(root), "--port", str(free_base_port()), "--no-ml", "--no-demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if up.returncode:
        print(up.stderr + up.stdout, file=sys.stderr)
        return 1
    state = json.loads((root / "state.json").read_text())
    os.environ.update({**state["env"], "DRPLAN_VAR_DIR": str(root / "nodes" / "bench"), "DRPLAN_LOG_LEVEL": "ERROR"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "drplan.settings")
    import django

    django.setup()
    load = os.getloadavg()[0]
    results = {}
    try:
        workers2 = state["processes"]["workers2"]["pid"]
        os.killpg(workers2, signal.SIGTERM)  # phase 1: one worker cluster
        _wait_gone(workers2)
        results[1] = phase(args.executions, args.steps, args.step_seconds)
        subprocess.run([*cluster, "restart", "workers2", "--dir", str(root)], cwd=ROOT, env=env, check=True)
        time.sleep(3)  # its workers start and take from the queue
        results[2] = phase(args.executions, args.steps, args.step_seconds)
    finally:
        subprocess.run([*cluster, "down", "--dir", str(root), "--purge"], cwd=ROOT, env=env, capture_output=True)
    print(
        f"# cluster bench {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC: {os.cpu_count()} CPUs, "
        f"load average {load:.2f} at the start; PostgreSQL 16 + Redis, DRPLAN_WORKERS=2 per worker cluster"
    )
    print(f"# {args.executions} executions x {args.steps} steps of sleep {args.step_seconds} s, enqueued at once")
    print("| worker clusters | span s | executions/min | steps/s | all completed | steps run twice |")
    print("|---|---:|---:|---:|---|---:|")
    for clusters, r in results.items():
        print(
            f"| {clusters} | {r['span']:.1f} | {r['per_minute']:.0f} | {r['steps_per_second']:.1f} | "
            f"{r['completed']}/{args.executions} | {r['twice']} |"
        )
    scaling = results[2]["steps_per_second"] / results[1]["steps_per_second"]
    verdict = "holds" if scaling >= GOAL_SCALING else "MISSED"
    print(f"scaling 1 -> 2 worker clusters: {scaling:.2f}x (goal >= {GOAL_SCALING}: {verdict})")
    return 0


def phase(executions: int, steps: int, step_seconds: float) -> dict[str, Any]:
    from failover.models import FailoverExecution, StepRun
    from failover.tasks import enqueue_execution
    from failover.tests.engine_support import make_execution, shell

    chain = [shell("sleep", str(step_seconds), key=f"s{i}", needs=[f"s{i - 1}"] if i else []) for i in range(steps)]
    made = [make_execution(chain).pk for _ in range(executions)]
    started = time.monotonic()
    for pk in made:
        enqueue_execution(pk)
    deadline = started + 1800
    done = 0
    while time.monotonic() < deadline:
        done = FailoverExecution.objects.filter(pk__in=made, status__in=("completed", "failed", "paused")).count()
        if done == executions:
            break
        time.sleep(0.2)
    span = time.monotonic() - started
    completed = FailoverExecution.objects.filter(pk__in=made, status="completed").count()
    twice = StepRun.objects.filter(execution_id__in=made, attempts__gt=1).count()
    return {
        "span": span,
        "per_minute": executions / span * 60,
        "steps_per_second": executions * steps / span,
        "completed": completed,
        "twice": twice,
    }


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        status = Path(f"/proc/{pid}/stat")
        if status.exists() and status.read_text().rpartition(")")[2].split()[0] == "Z":
            return
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
