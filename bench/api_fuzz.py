"""API contract fuzzing: schemathesis against the real ASGI server (daphne), longer than `make test`.

    .venv/bin/python bench/api_fuzz.py [--examples 100] [--roles admin,operator] [--phases ...]

The in-process run of `make test` (drplan/tests/test_api_contract.py) uses 25 examples per operation
and the examples and fuzzing phases. This one goes over HTTP, adds the coverage phase (boundary
values of every property) and the stateful phase (chains of calls linked by their responses), and
takes more examples: all checks, each role, the settings of schemathesis.toml otherwise.

Steps: a temporary var dir (DRPLAN_VAR_DIR) with its own SQLite database; migrate, roles, seed_demo,
two dry-run executions (drplan/tests/contract.py, as in the test); tokens for the demo users of the
roles; a copy of that database per role, so each role starts from the same data (the admin run
deletes and changes things for real); per role: start `python -m daphne` on a free loopback port,
run `python -m schemathesis.cli run` with the test's positive-data hook (SCHEMATHESIS_HOOKS) and a
JSON report, stop the server by pid. Then print, per role, operations, test cases, failures and
time, and every failure by check and operation. Exit 1 if there was a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api import configure_environment, free_port, machine, start_server, stop_server  # noqa: E402

DEMO_PASSWORDS = {"admin": "admin-demo-pw", "operator": "operator-demo-pw"}  # drplan/demo/organisation.yaml
ALL_PHASES = "examples,coverage,fuzzing,stateful"


def prepare_database(var_dir: Path, roles: list[str]) -> dict[str, dict[str, Any]]:
    """Migrate, seed, queue two dry runs; per role, its token and the catalogue of existing objects."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connections
    from rest_framework.authtoken.models import Token

    from core.roles import setup_roles
    from drplan.tests import contract

    call_command("migrate", verbosity=0, interactive=False)
    setup_roles()
    call_command("seed_demo", verbosity=0, stdout=StringIO())
    contract.add_executions()
    out = {}
    for role in roles:
        token, _ = Token.objects.get_or_create(user=User.objects.get(username=role))
        catalogue_path = var_dir / f"catalogue-{role}.json"
        catalogue_path.write_text(json.dumps(contract.catalogue(role, DEMO_PASSWORDS[role])))
        out[role] = {"token": token.key, "catalogue": catalogue_path}
    connections.close_all()
    return out


def fuzz(
    role: str, token: str, catalogue: Path, port: int, args: argparse.Namespace, env: dict[str, str], report: Path
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"http://127.0.0.1:{port}/api/schema/",
        "--header",
        f"Authorization: Token {token}",
        "--checks",
        "all",
        "--max-examples",
        str(args.examples),
        "--phases",
        args.phases,
        "--workers",
        str(args.workers),
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    run_env = {**env, "SCHEMATHESIS_HOOKS": "drplan.tests.contract", "DRPLAN_CONTRACT_CATALOGUE": str(catalogue)}
    log = report.with_suffix(".log")
    with log.open("w") as out:
        subprocess.run(cmd, cwd=ROOT, env=run_env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if not report.exists():
        raise SystemExit(f"schemathesis wrote no report for {role}; its output:\n{log.read_text()[-3000:]}")
    data = json.loads(report.read_text())
    data["log"] = log.read_text()
    return data


def failures_by_operation(log: str) -> Counter:
    """(check title, operation) -> count, from the CLI's failure sections."""
    found: Counter = Counter()
    operation = None
    for line in log.splitlines():
        stripped = line.strip("_ ").strip()
        if (
            line.startswith("____")
            and stripped
            and stripped.split(" ", 1)[0]
            in (
                "GET",
                "POST",
                "PUT",
                "PATCH",
                "DELETE",
                "Stateful",
            )
        ):
            operation = stripped
        elif line.startswith("- ST") and operation:
            found[(line[2:].strip(), operation)] += 1
        elif line.startswith("===") and "SUMMARY" in line:
            break
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100, help="max examples per operation and phase")
    parser.add_argument("--roles", default="admin,operator", help="demo users to run as (comma-separated)")
    parser.add_argument("--phases", default=ALL_PHASES, help=f"schemathesis phases (default {ALL_PHASES})")
    parser.add_argument("--workers", type=int, default=1, help="schemathesis workers (the server is one process)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary dir (reports, CLI output, logs)")
    args = parser.parse_args()
    roles = [role.strip() for role in args.roles.split(",") if role.strip()]

    started = time.monotonic()
    var_dir = Path(tempfile.mkdtemp(prefix="drplan-fuzz-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        env = configure_environment(var_dir)
        print(f"date:    {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
        print(f"machine: {machine()}")
        print(f"setup:   demo organisation in SQLite at {var_dir} ...", flush=True)
        prepared = prepare_database(var_dir, roles)
        database = var_dir / "drplan.sqlite3"
        pristine = var_dir / "pristine.sqlite3"
        shutil.copy(database, pristine)
        for role in roles:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
            shutil.copy(pristine, database)
            port = free_port()
            proc = start_server(env, port, var_dir / f"daphne-{role}.log")
            print(f"run:     {role} against daphne pid {proc.pid} on 127.0.0.1:{port} ...", flush=True)
            try:
                report = var_dir / f"report-{role}.json"
                results[role] = fuzz(
                    role, prepared[role]["token"], prepared[role]["catalogue"], port, args, env, report
                )
            finally:
                stop_server(proc)
    finally:
        if args.keep:
            print(f"kept:    {var_dir} (report-<role>.json, report-<role>.log: the CLI's output)")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)

    print()
    print(
        f"schemathesis {next(iter(results.values()))['schemathesis_version']}, checks: all, phases: {args.phases}, "
        f"max examples: {args.examples}"
    )
    print()
    print("| role | operations | test cases | failures | time s |")
    print("|---|---:|---:|---:|---:|")
    total_failures = 0
    for role, data in results.items():
        failures = sum(item["count"] for item in data["failures"])
        total_failures += failures
        print(
            f"| {role} | {data['operations']['tested']}/{data['operations']['total']} | "
            f"{data['test_cases']['generated']} | {failures} | {data['running_time']:.0f} |"
        )
    for role, data in results.items():
        if not data["failures"]:
            continue
        print(f"\nfailures as {role}, by check:")
        for item in data["failures"]:
            print(f"  {item['code']} {item['title']}: {item['count']}")
        print(f"failures as {role}, by check and operation:")
        for (check, operation), count in sorted(failures_by_operation(data["log"]).items()):
            print(f"  {count:3d}  {check:<45} {operation}")
        errors = data.get("errors") or []
        if errors:
            print(f"errors as {role}: {len(errors)} (see the CLI output)")
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\ntotal time: {time.monotonic() - started:.0f} s; load average now {load}")
    if total_failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
