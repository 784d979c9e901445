"""CLI benchmark: what `manage.py runbook run FILE --wait --json` costs around its steps (issue 15, point 6).

    .venv/bin/python bench/cli.py [--repeat 5] [--steps 3]

Two figures, each timed from outside on the whole process:
  start -> first step   from launching the process to the first step's `started_at` (stored by DRPlan,
                        printed in the JSON summary; same clock: one machine)
  summary -> exit       from the moment the JSON summary line reaches the pipe to the process's exit

Baselines measured in the same run (whole processes, same interpreter and environment):
  python -c pass        the interpreter alone
  django.setup()        `python -c "import django; django.setup()"` with DRPlan's settings

Steps: a temporary var dir with its own SQLite database (DRPLAN_VAR_DIR; DATABASE_URL and REDIS_URL are
ignored), migrate, import a chain of `--steps` `true` shell steps (category validation, so the CLI may run
it) and approve it; a warm-up run of each command fills a private bytecode cache (PYTHONPYCACHEPREFIX in
the temp dir: an installed DRPlan has its .pyc files, whatever PYTHONDONTWRITEBYTECODE says here); then
`--repeat` runs of each baseline and of the CLI, interleaved. Medians. One extra CLI run without any
bytecode cache is shown for information (what a first run, or PYTHONDONTWRITEBYTECODE=1, costs).
The CLI's stdout is unbuffered (PYTHONUNBUFFERED=1), as on a terminal, so a line is timed when printed.
Also shown: the CPU time of the django.setup() process and of the whole CLI process (from wait4), which a
busy machine stretches far less than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GOAL_START_S = 1.0  # start -> first step
GOAL_EXIT_S = 0.1  # summary printed -> process exit
SETUP_SNIPPET = "import django; django.setup()"


def environment(var_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DRPLAN_SQLITE_PATH", "PYTHONDONTWRITEBYTECODE")
    }
    env.update(
        DRPLAN_VAR_DIR=str(var_dir),
        DRPLAN_ENV="development",
        DRPLAN_LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="drplan.settings",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        PYTHONPYCACHEPREFIX=str(var_dir / "pycache"),
    )
    return env


def runbook_document(steps: int) -> dict[str, Any]:
    chain = [{"id": f"s{i:02d}", "action": "shell", "with": {"argv": ["true"]}} for i in range(steps)]
    for i in range(1, steps):
        chain[i]["needs"] = [f"s{i - 1:02d}"]
    return {"name": "CLI bench", "slug": "bench-cli", "version": "1.0.0", "category": "validation", "steps": chain}


PREPARE = """
import json, sys
import django
django.setup()
from django.core.management import call_command
from runbooks.choices import VersionStatus
from runbooks.models import RunbookVersion
from runbooks.services import import_runbook_document
call_command("migrate", verbosity=0, interactive=False)
version = import_runbook_document(json.loads(sys.argv[1]))
RunbookVersion.objects.filter(pk=version.pk).update(status=VersionStatus.APPROVED)
"""


def prepare(env: dict[str, str], doc: dict[str, Any], path: Path) -> None:
    """Migrate, import and approve the runbook, and write it where the CLI reads it."""
    out = subprocess.run(
        [sys.executable, "-c", PREPARE, json.dumps(doc)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"preparing the database failed:\n{out.stderr[-3000:]}")
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")


def wait_cpu(proc: subprocess.Popen) -> float:
    """Wait for `proc`; return the CPU seconds (user + system) it used, its threads included."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def time_process(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds of a whole process (launch to exit), and its CPU seconds."""
    began = time.time()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read() if proc.stderr else b""
    cpu = wait_cpu(proc)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed:\n{stderr.decode()[-2000:]}")
    return time.time() - began, cpu


def time_cli(path: Path, env: dict[str, str]) -> dict[str, float]:
    """Run the CLI once; return start->first step and summary->exit in seconds, and its CPU seconds."""
    argv = [sys.executable, "manage.py", "runbook", "run", str(path), "--wait", "--json"]
    launched = time.time()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    summary: dict[str, Any] | None = None
    summary_at = 0.0
    assert proc.stdout is not None
    for line in proc.stdout:  # readline-based: each line as soon as it reaches the pipe
        now = time.time()
        if line.startswith(b"{"):
            summary, summary_at = json.loads(line), now
    stderr = proc.stderr.read() if proc.stderr else b""
    cpu = wait_cpu(proc)
    exited = time.time()
    if proc.returncode != 0 or summary is None or summary["status"] != "completed":
        raise SystemExit(f"the CLI failed ({proc.returncode}): {summary}\n{stderr.decode()[-2000:]}")
    first = min(datetime.fromisoformat(s["started_at"]).timestamp() for s in summary["steps"])
    return {"start_to_first": first - launched, "summary_to_exit": exited - summary_at, "cli_cpu": cpu}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="steps in the benchmark's chain of `true`")
    args = parser.parse_args()

    started = time.monotonic()
    var_dir = Path(tempfile.mkdtemp(prefix="drplan-bench-cli-"))
    try:
        env = environment(var_dir)
        doc = runbook_document(args.steps)
        path = var_dir / "chain.json"
        prepare(env, doc, path)
        bare = [sys.executable, "-c", "pass"]
        setup = [sys.executable, "-c", SETUP_SNIPPET]
        cold_env = {k: v for k, v in env.items() if k != "PYTHONPYCACHEPREFIX"}
        cold_env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=str(var_dir / "no-pycache"))
        cold = time_cli(path, cold_env)  # nothing cached yet: every module compiled
        time_process(bare, env), time_process(setup, env), time_cli(path, env)  # warm-up: fill the cache
        runs: dict[str, list[float]] = {
            "bare": [], "setup": [], "start_to_first": [], "summary_to_exit": [], "setup_cpu": [], "cli_cpu": []
        }  # fmt: skip
        for _ in range(args.repeat):
            runs["bare"].append(time_process(bare, env)[0])
            wall, cpu = time_process(setup, env)
            runs["setup"].append(wall)
            runs["setup_cpu"].append(cpu)
            for name, value in time_cli(path, env).items():
                runs[name].append(value)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)

    med = {name: statistics.median(values) for name, values in runs.items()}
    print(f"date:    {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(
        f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"load average {'/'.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"runs:    median of {args.repeat}; `runbook run --wait --json` of a chain of {args.steps} `true` steps\n")
    print("| figure | median s | runs s |")
    print("|---|---:|---|")
    labels = {
        "bare": "baseline: `python -c pass`",
        "setup": "baseline: `django.setup()` process",
        "start_to_first": "CLI: start → first step",
        "summary_to_exit": "CLI: summary → exit",
        "setup_cpu": "CPU time (user + system) of the `django.setup()` process",
        "cli_cpu": "CPU time of the whole CLI process (its steps included)",
    }
    for name, label in labels.items():
        print(f"| {label} | {med[name]:.3f} | {', '.join(f'{v:.3f}' for v in runs[name])} |")
    print(f"| CLI without bytecode cache (info): start → first step | {cold['start_to_first']:.3f} | 1 run |")
    start_ok = med["start_to_first"] <= GOAL_START_S
    exit_ok = med["summary_to_exit"] <= GOAL_EXIT_S
    print()
    print(
        f"start → first step: {med['start_to_first']:.3f} s = {med['start_to_first'] / med['setup']:.2f}x "
        f"the django.setup() process, {med['start_to_first'] / med['bare']:.0f}x `python -c pass` "
        f"(goal <= {GOAL_START_S:g} s): {verdict(start_ok)}"
    )
    print(
        f"summary → exit:     {med['summary_to_exit']:.3f} s = {med['summary_to_exit'] / med['bare']:.2f}x "
        f"`python -c pass` (goal <= {GOAL_EXIT_S:g} s): {verdict(exit_ok)}"
    )
    print(f"total time: {time.monotonic() - started:.1f} s")
    if not (start_ok and exit_ok):
        sys.exit(1)


if __name__ == "__main__":
    main()
