"""API benchmark: GET /api/v1/dr/plans (1,000 plans, default page size) next to the bare
DRF endpoint GET /api/v1/dr/health, served by the real ASGI server (daphne) in one run.

    .venv/bin/python bench/api.py [--plans 1000] [--requests 2000] [--concurrency 8]
    DRPLAN_HTTP_SLOTS=0 .venv/bin/python bench/api.py    # the same without the request gate (core/requestgate.py)

Steps: make a temporary var dir with its own SQLite database (DRPLAN_VAR_DIR), migrate,
create the plans (applications and sites in scope, test results so the derived statistics
are computed) and a token user with the approver role; count the SQL queries of the list
endpoint in process; start `python -m daphne` on a free port; warm up; drive each endpoint
with N keep-alive clients (threads, http.client) for a fixed number of requests (capped by
--max-seconds), alternating the two endpoints in --rounds rounds; print a table and the list/bare
throughput ratio (the median of the rounds') against the goal "list keeps >= 50% of bare throughput"
with PASS/FAIL, and the server process's CPU time per request of each endpoint (Linux /proc: the server is
one process, so its CPU per request is what bounds its throughput); stop the server by pid and remove the
temp dir.
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LIST_PATH = "/api/v1/dr/plans"
BARE_PATH = "/api/v1/dr/health"
GOAL_RATIO = 0.5


def configure_environment(var_dir: Path) -> dict[str, str]:
    """Environment for this process and the server: a private SQLite DB, development mode."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "DRPLAN_SQLITE_PATH", "REDIS_URL", "DRPLAN_DEBUG", "DRPLAN_SECRET_KEY"):
        env.pop(name, None)
    env.update(
        DRPLAN_VAR_DIR=str(var_dir),
        DRPLAN_ENV="development",
        DRPLAN_LOG_LEVEL="WARNING",
        DRPLAN_ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        DJANGO_SETTINGS_MODULE="drplan.settings",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    os.environ.clear()
    os.environ.update(env)
    return env


def prepare_database(n_plans: int) -> str:
    """Migrate and create the benchmark data; return the approver's API token."""
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from analytics.models import DRTestResult
    from core.roles import APPROVER, setup_roles
    from plans.models import Application, DRPlan, Site

    call_command("migrate", verbosity=0, interactive=False)
    setup_roles()
    user = User.objects.create_user("bench-approver", password="bench-pw", is_staff=True)
    user.groups.add(Group.objects.get(name=APPROVER))
    token = Token.objects.create(user=user)

    sites = Site.objects.bulk_create([Site(code=f"site{i}", name=f"Site {i}") for i in range(4)])
    apps = Application.objects.bulk_create(
        [Application(slug=f"app-{i:02d}", name=f"App {i}", tier=1 + i % 3, site=sites[i % 2]) for i in range(20)]
    )
    strategies = ["active_active", "active_passive", "pilot_light", "backup_restore"]
    frequencies = ["monthly", "quarterly", "semi_annual", "annual"]
    plans = DRPlan.objects.bulk_create(
        [
            DRPlan(
                plan_id=f"plan-{i:05d}",
                name=f"Benchmark plan {i}",
                description="Benchmark data.",
                status="active" if i % 5 else "draft",
                rto_seconds=300 + 60 * (i % 30),
                rpo_seconds=60 * (i % 10),
                strategy=strategies[i % 4],
                test_frequency=frequencies[i % 4],
                primary_site=sites[0],
                dr_site=sites[1],
                compliance_frameworks=["sox"] if i % 2 else ["pci_dss", "sox"],
                created_by=user,
            )
            for i in range(n_plans)
        ]
    )
    app_links, site_links, results = [], [], []
    now = datetime.now(UTC)
    for i, plan in enumerate(plans):
        app_links += [DRPlan.applications.through(drplan=plan, application=apps[(i + k) % 20]) for k in range(3)]
        site_links += [DRPlan.sites.through(drplan=plan, site=sites[k]) for k in range(2)]
        if i % 3 == 0:  # a third of the plans have test results
            for k, outcome in enumerate(("passed", "partial", "failed")[: 1 + (i // 3) % 3]):
                results.append(
                    DRTestResult(
                        plan=plan,
                        test_date=now - timedelta(days=30 * (k + 1) + i % 20),
                        outcome=outcome,
                        target_rto_seconds=plan.rto_seconds,
                        target_rpo_seconds=plan.rpo_seconds,
                        actual_rto_seconds=plan.rto_seconds * (0.8 + 0.2 * k),
                        actual_rpo_seconds=plan.rpo_seconds * 0.5,
                    )
                )
    DRPlan.applications.through.objects.bulk_create(app_links)
    DRPlan.sites.through.objects.bulk_create(site_links)
    DRTestResult.objects.bulk_create(results)
    return token.key


def count_list_queries(token: str, page_sizes: tuple[int, ...] = (10, 50)) -> dict[int, int]:
    """SQL queries one GET of the list endpoint makes, per page size (in process, test Client)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(headers={"authorization": f"Token {token}"})
    out = {}
    for size in page_sizes:
        client.get(LIST_PATH, {"page_size": size})  # warm caches (content types, url resolver)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(LIST_PATH, {"page_size": size})
        if response.status_code != 200:
            raise SystemExit(
                f"{LIST_PATH}?page_size={size} answered {response.status_code}: {response.content[:300]!r}"
            )
        if len(response.json()["results"]) != size:
            raise SystemExit(f"{LIST_PATH}?page_size={size} returned {len(response.json()['results'])} rows")
        out[size] = len(ctx.captured_queries)
    connection.close()
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    log = log_path.open("wb")
    cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "drplan.asgi:application"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"daphne exited with {proc.returncode}; see {log_path}:\n{log_path.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", BARE_PATH)
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            time.sleep(0.2)
    stop_server(proc)
    raise SystemExit("daphne did not answer within 30 s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    path: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # CPU seconds the server process used during the run

    def server_cpu_ms(self) -> float:
        """The server's CPU time per answered request, ms."""
        return 1000 * self.server_cpu / self.requests if self.requests else float("nan")

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[max(0, math.ceil(p * len(ordered)) - 1)] if ordered else float("nan")


def drive(
    port: int, path: str, token: str, total: int, concurrency: int, max_seconds: float, server_pid: int = 0
) -> Result:
    """`concurrency` keep-alive clients share `total` requests; stop early after `max_seconds`."""
    result = Result(path)
    cpu_before = process_cpu_seconds(server_pid) if server_pid else 0.0
    lock = threading.Lock()
    remaining = [total]
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    deadline = time.perf_counter() + max_seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        errors = 0
        while time.perf_counter() < deadline:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            start = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            if ok:
                mine.append(time.perf_counter() - start)
            else:
                errors += 1
        conn.close()
        with lock:
            result.latencies.extend(mine)
            result.errors += errors

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - began
    result.server_cpu = process_cpu_seconds(server_pid) - cpu_before if server_pid else 0.0
    return result


def merge(results: Any) -> Result:
    """One Result from several runs of the same endpoint (their requests and their time added)."""
    merged = None
    for r in results:
        merged = merged or Result(r.path)
        merged.latencies += r.latencies
        merged.errors += r.errors
        merged.seconds += r.seconds
        merged.server_cpu += r.server_cpu
    assert merged is not None
    return merged


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        mem = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        mem = "unknown"
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem} RAM, Python {platform.python_version()}, {platform.system()}; "
        f"load average {load}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per endpoint")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests per endpoint first")
    parser.add_argument("--max-seconds", type=float, default=80.0, help="cap on each endpoint's measured run")
    parser.add_argument("--rounds", type=int, default=4, help="alternate the endpoints this many times (median)")
    args = parser.parse_args()

    started = time.monotonic()
    var_dir = Path(tempfile.mkdtemp(prefix="drplan-bench-"))
    proc = None
    try:
        env = configure_environment(var_dir)
        print(f"date:    {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
        print(f"machine: {machine()}")
        print(f"setup:   {args.plans} plans in SQLite at {var_dir} ...", flush=True)
        token = prepare_database(args.plans)
        queries = count_list_queries(token)
        port = free_port()
        proc = start_server(env, port, var_dir / "daphne.log")
        from django.conf import settings

        slots = f"{settings.HTTP_SLOTS} request(s) in Django at once" if settings.HTTP_SLOTS else "no request gate"
        print(
            f"server:  daphne pid {proc.pid} on 127.0.0.1:{port}; {args.concurrency} keep-alive clients; {slots} "
            "(DRPLAN_HTTP_SLOTS)",
            flush=True,
        )

        for path in (BARE_PATH, LIST_PATH):
            drive(port, path, token, args.warmup, args.concurrency, args.max_seconds)
        # Alternate the endpoints in rounds, so that a change of the machine's load during the run weighs on
        # both; each round's ratio compares two runs a few seconds apart.
        per_round = max(1, args.requests // args.rounds)
        rounds = [
            tuple(
                drive(port, path, token, per_round, args.concurrency, args.max_seconds / args.rounds, proc.pid)
                for path in (BARE_PATH, LIST_PATH)
            )
            for _ in range(args.rounds)
        ]
    finally:
        if proc is not None:
            stop_server(proc)
        shutil.rmtree(var_dir, ignore_errors=True)

    bare, listing = (merge(r[i] for r in rounds) for i in (0, 1))
    print()
    print(
        f"| {'endpoint':<34} | {'requests':>8} | {'errors':>6} | {'req/s':>8} | {'p50 ms':>8} | {'p99 ms':>8} "
        f"| {'server CPU ms/req':>17} |"
    )
    print(f"|{'-' * 36}|{'-' * 9}:|{'-' * 7}:|{'-' * 9}:|{'-' * 9}:|{'-' * 9}:|{'-' * 18}:|")
    for label, r in (("GET " + BARE_PATH + " (bare DRF)", bare), ("GET " + LIST_PATH + " (page 50)", listing)):
        print(
            f"| {label:<34} | {r.requests:>8} | {r.errors:>6} | {r.rps:>8.1f} | "
            f"{r.percentile_ms(0.50):>8.2f} | {r.percentile_ms(0.99):>8.2f} | {r.server_cpu_ms():>17.2f} |"
        )
    ratios = [lst.rps / b.rps if b.rps else 0.0 for b, lst in rounds]
    ratio = statistics.median(ratios)
    verdict = "PASS" if ratio >= GOAL_RATIO else "FAIL"
    print()
    print("list/bare throughput per round: " + ", ".join(f"{r:.1%}" for r in ratios))
    print(
        f"list/bare throughput: {ratio:.1%}, median of {len(rounds)} rounds "
        f"(goal: list keeps >= {GOAL_RATIO:.0%} of bare throughput): {verdict}"
    )
    print("SQL queries per list request: " + ", ".join(f"page_size={k}: {v}" for k, v in queries.items()))
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total time: {time.monotonic() - started:.1f} s; load average now {load}")
    if bare.errors or listing.errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
