"""Chaos on a real cluster (issue 15, point 4): random kills during random executions, and what they cost.

    .venv/bin/python bench/chaos.py [--runs 50] [--seed 1]

Starts `scripts/cluster.py up --no-ml` in a temporary directory (PostgreSQL 16, Redis, two web nodes behind
HAProxy, two worker clusters), then, for each run: starts an execution of a 6-step chain (steps alternately
idempotent and not; each appends its key to a marker file, then sleeps 0.5 s), waits a random 0.3-2.5 s, and
does one random fault: kill -9 of a worker cluster (its whole process group), kill -9 of a web node, kill -9
of Redis, or an immediate stop of PostgreSQL; after 1-2 s the lost process is started again
(`scripts/cluster.py restart`). It then waits for the execution to end (completed, failed) or to pause for an
operator, and reports per run:

- stuck: the execution neither ended nor paused within 120 s;
- double runs: a non-idempotent step's key twice in the marker file;
- lost/duplicated events: the execution's event sequence numbers are not exactly 1..n;
- orphans: a process of the killed group still alive after the restart;
- recovery: from the fault to the execution's first new event after it (seconds).

This process reads the cluster's database as one more node (its DATABASE_URL and REDIS_URL, Django's ORM).
"""

from __future__ import annotations

import argparse
import json
import os
import random
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

FAULTS = ("worker", "web", "redis", "postgres")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    from drplan.tests.cluster_support import free_base_port

    root = Path(tempfile.mkdtemp(prefix="drplan-chaos-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    up = subprocess.run(
        [sys.executable, "scripts/cluster.py", "up", "--dir", str(root), "--port", str(free_base_port()), "--no-ml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if up.returncode:
        print(up.stderr + up.stdout, file=sys.stderr)
        return 1
    state = json.loads((root / "state.json").read_text())
    os.environ.update({**state["env"], "DRPLAN_VAR_DIR": str(root / "nodes" / "chaos"), "DRPLAN_LOG_LEVEL": "ERROR"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "drplan.settings")
    import django

    django.setup()
    results = []
    try:
        for number in range(1, args.runs + 1):
            result = one_run(root, state, rng, number)
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        subprocess.run([sys.executable, "scripts/cluster.py", "down", "--dir", str(root), "--purge"], cwd=ROOT, env=env)
    summarise(results)
    return 0


def one_run(root: Path, state: dict[str, Any], rng: random.Random, number: int) -> dict[str, Any]:
    from failover.tasks import enqueue_execution
    from failover.tests.engine_support import make_execution, shell

    marker = root / f"marker-{number}"
    steps = [
        shell(
            "sh",
            "-c",
            f"echo s{i} >> {marker}; sleep 0.5",
            key=f"s{i}",
            idempotent=i % 2 == 0,
            needs=[f"s{i - 1}"] if i else [],
        )
        for i in range(6)
    ]
    execution = _db(lambda: make_execution(steps))
    _db(lambda: enqueue_execution(execution.pk))
    time.sleep(rng.uniform(0.3, 2.5))
    fault = rng.choice(FAULTS)
    faulted_at = time.time()
    killed_group = inflict(root, state, fault, rng)
    time.sleep(rng.uniform(1.0, 2.0))
    restart(root, state, fault)
    orphans = [pid for pid in killed_group if _alive(pid)]
    outcome = _wait_end(execution.pk, timeout=120)
    return {"run": number, "fault": fault, **outcome, **_checks(execution.pk, marker, faulted_at), "orphans": orphans}


def inflict(root: Path, state: dict[str, Any], fault: str, rng: random.Random) -> list[int]:
    """Do the fault; returns the pids of the process group that was killed (to look for orphans)."""
    current = json.loads((root / "state.json").read_text())["processes"]
    if fault == "postgres":
        from core.localservers import postgres, procs

        postgres.stop(Path(state["postgres_data"]), procs.server_user(), mode="immediate")
        return []
    name = {"worker": rng.choice(["workers1", "workers2"]), "web": rng.choice(["web1", "web2"]), "redis": "redis"}[
        fault
    ]
    state["last_killed"] = name
    pid = current[name]["pid"]
    group = _group(pid)
    os.killpg(pid, signal.SIGKILL)
    return group


def restart(root: Path, state: dict[str, Any], fault: str) -> None:
    name = "postgres" if fault == "postgres" else state["last_killed"]
    subprocess.run(
        [sys.executable, "scripts/cluster.py", "restart", name, "--dir", str(root)],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )


def _wait_end(pk: int, timeout: float) -> dict[str, Any]:
    from failover.models import FailoverExecution

    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = _db(lambda: FailoverExecution.objects.get(pk=pk).status)
        if status in ("completed", "failed", "cancelled", "paused"):
            return {"status": status, "stuck": False}
        time.sleep(0.3)
    return {"status": status, "stuck": True}


def _checks(pk: int, marker: Path, faulted_at: float) -> dict[str, Any]:
    from failover.models import ExecutionEvent

    ran = marker.read_text().split() if marker.exists() else []
    double = sorted({key for key in ran if int(key[1:]) % 2 == 1 and ran.count(key) > 1})
    events = _db(
        lambda: list(ExecutionEvent.objects.filter(execution_id=pk).order_by("seq").values("seq", "created_at"))
    )
    seqs = [event["seq"] for event in events]
    after = [event["created_at"].timestamp() for event in events if event["created_at"].timestamp() > faulted_at]
    return {
        "double_runs": double,
        "events_ok": seqs == list(range(1, len(seqs) + 1)),
        "recovery_s": round(min(after) - faulted_at, 2) if after else None,
    }


def _db(function):
    """Run an ORM call, riding out the database restarts this benchmark causes."""
    from django.db import close_old_connections, connection
    from django.db.utils import InterfaceError, OperationalError

    deadline = time.monotonic() + 60
    while True:
        try:
            return function()
        except (OperationalError, InterfaceError):
            if time.monotonic() > deadline:
                raise
            connection.close()
            close_old_connections()
            time.sleep(0.5)


def _group(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(os.getpgid(pid))], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def summarise(results: list[dict[str, Any]]) -> None:
    print(f"\nchaos: {len(results)} runs")
    for fault in FAULTS:
        runs = [r for r in results if r["fault"] == fault]
        if not runs:
            continue
        outcomes = {status: sum(1 for r in runs if r["status"] == status) for status in {r["status"] for r in runs}}
        recoveries = [r["recovery_s"] for r in runs if r["recovery_s"] is not None]
        median = f"{statistics.median(recoveries):.2f} s" if recoveries else "-"
        print(f"  {fault:<8} {len(runs):>3} runs  outcomes {outcomes}  recovery median {median}")
    print(f"  stuck: {sum(r['stuck'] for r in results)}")
    print(f"  double runs of non-idempotent steps: {sum(len(r['double_runs']) for r in results)}")
    print(f"  runs with lost or duplicated events: {sum(not r['events_ok'] for r in results)}")
    print(f"  orphaned processes: {sum(len(r['orphans']) for r in results)}")


if __name__ == "__main__":
    sys.exit(main())
