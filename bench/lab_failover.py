"""Lab benchmark: fail the real lab PostgreSQL over and back and measure it (issues 4 and 9).

    .venv/bin/python bench/lab_failover.py [--rounds 3] [--baseline REV]

In a temporary var dir with its own SQLite database and lab: seed the demo, `lab up`, start a
real django-q2 worker, then for each round a planned failover of the Lab plan (trigger →
validation passed; DRPlan's overhead = measured RTO minus the critical path of the steps' own
durations; the raw pg_promote() duration from the same run as the floor, and each median's ratio
to it) and a failback; the same rounds with `lab up --ssh` (the nodes' data reached only over SSH:
pg_waldump, pg_rewind through the lab's sshd), with their ratio to the local rounds of this run;
then an unplanned failure (kill -9 of the primary) detected by the lab monitor in automatic mode
(kill → validation passed), with asynchronous and with synchronous replication (acknowledged
orders lost: DRPlan's report vs the application's own count). The runbooks use only the
first-class actions (postgres.*, redis.*, http, sql, shell). Prints tables; stops everything.

--baseline REV (e.g. b61d1f8, before issue 9): first runs that commit's own bench/lab_failover.py
(`git archive` into a temporary directory, the same rounds) in this run, on the machine as loaded
now, and prints this code's planned-failover medians as ratios to it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
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

TARGETS = {"planned_end_to_end_s": 10.0, "overhead_s": 1.0, "unplanned_s": 15.0}


def lab(*args: str) -> str:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("lab", *args, stdout=out)
    return out.getvalue()


def critical_path_seconds(execution_id: int) -> float:
    """Longest chain of step durations (the time the actions themselves took)."""
    from failover.models import StepRun

    steps = {s.step_key: s for s in StepRun.objects.filter(execution_id=execution_id)}
    finish: dict[str, float] = {}

    def done(key: str) -> float:
        if key not in finish:
            step = steps[key]
            finish[key] = max((done(n) for n in step.needs or []), default=0.0) + (step.duration_seconds or 0.0)
        return finish[key]

    return max(done(k) for k in steps)


def step_output(execution_id: int, suffix: str) -> dict[str, Any]:
    from failover.models import StepRun

    return StepRun.objects.get(execution_id=execution_id, step_key__endswith=suffix).output or {}


def wait_terminal(execution_id: int, timeout: float = 120) -> Any:
    from failover.engine.states import TERMINAL_EXECUTION
    from failover.models import FailoverExecution

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = FailoverExecution.objects.get(pk=execution_id)
        if execution.status in TERMINAL_EXECUTION:
            return execution
        time.sleep(0.05)
    raise SystemExit(f"execution #{execution_id} did not finish within {timeout:.0f} s")


def planned_round(plan: Any, operator: Any) -> dict[str, float]:
    from failover import services

    triggered = time.monotonic()
    execution = services.start_failover(plan, execution_type="planned", actor=operator, reason="bench")
    execution = wait_terminal(execution.pk)
    end_to_end = time.monotonic() - triggered
    if execution.status != "completed":
        raise SystemExit(f"planned failover #{execution.pk} ended {execution.status}: {execution.error}")
    actions = critical_path_seconds(execution.pk)
    promote = step_output(execution.pk, "promote-standby")["promote_seconds"]
    triggered = time.monotonic()
    back = wait_terminal(services.start_failback(plan, actor=operator, reason="bench").pk)
    if back.status != "completed":
        raise SystemExit(f"failback #{back.pk} ended {back.status}: {back.error}")
    return {
        "failback": time.monotonic() - triggered,
        "end_to_end": end_to_end,
        "rto": execution.actual_rto_seconds,
        "actions": actions,
        "overhead": execution.actual_rto_seconds - actions,
        "promote": promote,
    }


def unplanned(mode: str) -> dict[str, Any]:
    """kill -9 of the primary; the monitor (automatic mode) starts the failover; the worker runs it."""
    from failover.models import FailoverExecution

    before = set(FailoverExecution.objects.values_list("pk", flat=True))
    if mode == "async":
        lab("chaos", "stop-replication")  # the standby misses the last writes: a real RPO
        time.sleep(1.0)
    killed = time.monotonic()
    lab("chaos", "kill-primary")
    deadline = killed + 60
    while not (new := FailoverExecution.objects.exclude(pk__in=before).filter(trigger_type="automatic")).exists():
        if time.monotonic() > deadline:
            raise SystemExit("the monitor did not start a failover within 60 s")
        time.sleep(0.05)
    detected = time.monotonic() - killed
    execution = wait_terminal(new.get().pk)
    total = time.monotonic() - killed
    if execution.status != "completed":
        raise SystemExit(f"unplanned failover #{execution.pk} ended {execution.status}: {execution.error}")
    # The app's own count, as its admin API reported it to the validation step.
    lost_by_app = step_output(execution.pk, "validate-orders")["json"]["switch"]["missing_count"]
    return {
        "mode": mode,
        "detected": detected,
        "kill_to_validated": total,
        "rto": execution.actual_rto_seconds,
        "rpo": execution.actual_rpo_seconds,
        "lost_reported": execution.data_loss_transactions,
        "lost_by_app": lost_by_app if lost_by_app is not None else 0,
        "bytes": execution.data_loss_bytes,
    }


def start_worker(log: Path) -> subprocess.Popen:
    from lab.monitor import process_env

    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=process_env(),
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


BASELINE_ROWS = {
    "end_to_end": "planned: trigger → validation passed (s)",
    "rto": "planned: measured RTO (s)",
    "actions": "planned: the steps' own durations, critical path (s)",
    "overhead": "planned: DRPlan overhead = RTO − steps (s)",
    "promote": "raw pg_promote() until writable (s), the floor",
}


def run_baseline(rev: str, rounds: int) -> dict[str, float]:
    """That commit's own lab bench, run now; its planned-failover medians by key."""
    tree = Path(tempfile.mkdtemp(prefix="drplan-baseline-"))
    try:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DRPLAN_VAR_DIR", "DRPLAN_LAB_DIR")}
        done = subprocess.run(
            [sys.executable, "bench/lab_failover.py", "--rounds", str(rounds)],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"baseline {rev} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    medians = {}
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for key, label in BASELINE_ROWS.items():
            if cells and cells[0] == label:
                medians[key] = float(cells[1])
    print(f"baseline {rev}: {rounds} planned failovers with its own runbooks and bench, run just before\n")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="a commit whose lab bench runs first, for ratios (e.g. b61d1f8)")
    args = parser.parse_args()
    baseline = run_baseline(args.baseline, args.rounds) if args.baseline else {}

    var_dir = Path(tempfile.mkdtemp(prefix="drplan-bench-lab-"))
    for name in ("DATABASE_URL", "REDIS_URL", "DRPLAN_SQLITE_PATH", "DRPLAN_LAB_DIR"):
        os.environ.pop(name, None)
    os.environ.update(DRPLAN_VAR_DIR=str(var_dir), DRPLAN_LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="drplan.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from plans.models import DRPlan

    started = time.monotonic()
    worker = None
    try:
        call_command("migrate", verbosity=0, interactive=False)
        call_command("seed_demo", verbosity=0)
        plan = DRPlan.objects.get(plan_id="lab")
        operator = User.objects.get(username="operator")
        worker = start_worker(var_dir / "worker.log")
        print(lab("up"), end="")
        rounds = [planned_round(plan, operator) for _ in range(args.rounds)]
        async_case = unplanned("async")
        lab("down")
        print(lab("up", "--ssh", "--no-monitor"), end="")
        ssh_rounds = [planned_round(plan, operator) for _ in range(args.rounds)]
        lab("down")
        print(lab("up", "--sync"), end="")
        sync_case = unplanned("sync")
        lab("down")
    finally:
        if worker is not None:
            stop_worker(worker)
        with contextlib.suppress(Exception):  # best effort: usually already down
            lab("down")
        shutil.rmtree(var_dir, ignore_errors=True)

    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    ssh_med = {k: statistics.median(r[k] for r in ssh_rounds) for k in ssh_rounds[0]}
    print(f"\ndate:    {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average {load}")
    print(f"planned failovers: {args.rounds} local + {args.rounds} over SSH (each followed by a failback)\n")
    print("| figure | median | min | max | × floor | over SSH: median | SSH / local | target |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for key, label, target in (
        ("end_to_end", "planned: trigger → validation passed (s)", "≤ 10"),
        ("rto", "planned: measured RTO (s)", "≤ 1.0 (issue 4)"),
        ("actions", "planned: the steps' own durations, critical path (s)", ""),
        ("overhead", "planned: DRPlan overhead = RTO − steps (s)", "≤ 0.11 (issue 4)"),
        ("failback", "failback: trigger → validation passed (s)", ""),
        ("promote", "raw pg_promote() until writable (s), the floor", ""),
    ):
        values = [r[key] for r in rounds]
        print(
            f"| {label} | {med[key]:.3f} | {min(values):.3f} | {max(values):.3f} | {med[key] / med['promote']:.1f} |"
            f" {ssh_med[key]:.3f} | {ssh_med[key] / med[key]:.2f} | {target} |"
        )
    if baseline:
        print(f"\n| planned failover, median | baseline {args.baseline} | this code | this / baseline |")
        print("|---|---:|---:|---:|")
        for key, label in BASELINE_ROWS.items():
            print(f"| {label} | {baseline[key]:.3f} | {med[key]:.3f} | {med[key] / baseline[key]:.2f} |")
    print("\n| unplanned (kill -9 of the primary, automatic mode) | async | sync | target |")
    print("|---|---:|---:|---|")
    rows = (
        ("detected by the monitor after (s)", "detected", ".2f", ""),
        ("kill → validation passed (s)", "kill_to_validated", ".2f", "≤ 15"),
        ("measured RTO from the first failed probe (s)", "rto", ".2f", ""),
        ("measured RPO (s)", "rpo", ".3f", ""),
        ("transactions lost, measured by DRPlan (the dead primary's WAL)", "lost_reported", "d", "≥ the app's"),
        ("acknowledged orders lost, counted by the application", "lost_by_app", "d", "sync: 0"),
        ("data loss (bytes of WAL)", "bytes", "d", ""),
    )
    for label, key, spec, target in rows:
        a, s = async_case[key], sync_case[key]
        print(f"| {label} | {format(a or 0, spec)} | {format(s or 0, spec)} | {target} |")
    print(f"\ntotal time: {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
