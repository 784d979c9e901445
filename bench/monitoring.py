"""Monitoring benchmark: GET /rto-rpo, a one-year history query over 100 applications, and the probe cycle's
overhead, each next to a baseline measured in the same run (goal: each under 100 ms on the embedded SQLite).

    .venv/bin/python bench/monitoring.py [--applications 100] [--repeat 15]

Steps: a temporary var dir with its own SQLite database (any DATABASE_URL is ignored); migrate; 100 applications
in 10 plans (RTO targets, one monitor with one `postgres.replication_status` probe each); then a year of
1-minute samples of every probe **in the form retention keeps it** (analytics/monitoring/retention.py): hourly
rollups for the whole year (8,760 per probe: 876,000 rows), daily rollups for the year (36,500 rows) and the last
2 days as raw samples (2,880 per probe: 288,000 rows), with the watermarks compaction would leave. 52.6 million
raw rows are never written: retention never keeps them, so timing a query over them would measure a store
DRPlan does not have.

Timed in process (Django test client, token auth, JSON rendered), median of --repeat runs after a warm-up, as
wall-clock ms and as this process's CPU ms (on a machine loaded by other work the wall clock also counts the
time other processes held the cores; the CPU time is what the request costs, the wall time on a quiet machine):
- baseline: GET /api/v1/dr/health (a bare DRF endpoint);
- GET /api/v1/dr/rto-rpo (10 plans, 100 applications, current RPO, availability over 30 days, trend, RTO
  estimate per plan; the ML service is not running: "prediction unavailable", a refused connection);
- GET /rto-rpo/history?metric=rpo_seconds&period=1y (all 100 applications, daily: 36,500 points);
- GET /rto-rpo/history?application=…&metric=rpo_seconds&period=1y&resolution=hour (one application, 8,760 points);
- the probe cycle: `services.run_due()` of 100 `tcp` probes to a local listening socket, against the same 100
  actions run through `run_action` on the same thread pool without recording: the difference per probe is what
  monitoring adds (the sample, the RTO target's current values, the RPO violation check).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_MS = 100.0


def configure(var_dir: Path) -> None:
    for name in ("DATABASE_URL", "DRPLAN_SQLITE_PATH", "REDIS_URL", "DRPLAN_DEBUG", "DRPLAN_SECRET_KEY"):
        os.environ.pop(name, None)
    os.environ.update(
        DRPLAN_VAR_DIR=str(var_dir),
        DRPLAN_ENV="development",
        DRPLAN_LOG_LEVEL="ERROR",
        DRPLAN_ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        DJANGO_SETTINGS_MODULE="drplan.settings",
        DRPLAN_ML_URL="http://127.0.0.1:9",  # nothing listens: "prediction unavailable" at once
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def build(n_apps: int) -> tuple[str, list[int], float]:
    """The organisation and its year of retained history; returns (token, probe ids, seconds to build)."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from analytics.models import RTOTarget
    from analytics.monitoring import retention
    from analytics.monitoring.models import Monitor, Probe, ProbeSample, RollupState, SampleRollup
    from core.roles import VIEWER, setup_roles
    from plans.models import Application, DRPlan

    started = time.monotonic()
    call_command("migrate", verbosity=0, interactive=False)
    setup_roles()
    user = User.objects.create_user("bench-viewer", password="bench-pw", is_staff=True)
    user.groups.add(Group.objects.get(name=VIEWER))
    token = Token.objects.create(user=user).key
    apps = Application.objects.bulk_create(
        [Application(slug=f"app-{i:03d}", name=f"App {i}", tier=1 + i % 3) for i in range(n_apps)]
    )
    for p in range(max(1, n_apps // 10)):
        plan = DRPlan.objects.create(
            plan_id=f"plan-{p:02d}", name=f"Plan {p}", rto_seconds=3600, rpo_seconds=300, status="active"
        )
        plan.applications.set(apps[p * 10 : p * 10 + 10])
    RTOTarget.objects.bulk_create(
        [
            RTOTarget(
                application=a,
                tier=a.tier,
                rto_target_seconds=900,
                rpo_target_seconds=60,
                sla_breach_threshold_seconds=1800,
            )
            for a in apps
        ]
    )
    monitors = Monitor.objects.bulk_create([Monitor(slug=f"{a.slug}-replication", application=a) for a in apps])
    probes = Probe.objects.bulk_create(
        [
            Probe(
                monitor=m,
                key="standby",
                action="postgres.replication_status",
                params={"dsn_secret": "x"},
                interval_seconds=60,
            )
            for m in monitors
        ]
    )
    now = datetime.now(tz=UTC)
    hour_end = retention.floor(retention.epoch(now), retention.HOUR)
    day_end = retention.floor(hour_end, retention.DAY)
    start = hour_end - 365 * retention.DAY
    rng = random.Random(11)
    for probe in probes:
        hours, days = [], {}
        for bucket in range(start, hour_end, retention.HOUR):
            level = 10 + 5 * rng.random()
            row = SampleRollup(
                probe_id=probe.pk,
                application_id=probe.monitor.application_id,
                resolution="hour",
                bucket=bucket,
                samples=60,
                up_count=60,
                known_count=60,
                rpo_count=60,
                rpo_sum=level * 60,
                rpo_min=level / 2,
                rpo_max=level * 2,
                lag_count=60,
                lag_sum=level * 6e5,
                lag_min=int(level * 5e3),
                lag_max=int(level * 2e4),
                latency_count=60,
                latency_sum=600.0,
                latency_min=5.0,
                latency_max=20.0,
            )
            hours.append(row)
            if bucket < day_end:
                day = days.setdefault(retention.floor(bucket, retention.DAY), [])
                day.append(row)
        SampleRollup.objects.bulk_create(hours, batch_size=2000)
        SampleRollup.objects.bulk_create(
            [
                SampleRollup(
                    probe_id=probe.pk,
                    application_id=probe.monitor.application_id,
                    resolution="day",
                    bucket=day,
                    samples=sum(r.samples for r in rows),
                    up_count=sum(r.up_count for r in rows),
                    known_count=sum(r.known_count for r in rows),
                    rpo_count=sum(r.rpo_count for r in rows),
                    rpo_sum=sum(r.rpo_sum for r in rows),
                    rpo_min=min(r.rpo_min for r in rows),
                    rpo_max=max(r.rpo_max for r in rows),
                    lag_count=sum(r.lag_count for r in rows),
                    lag_sum=sum(r.lag_sum for r in rows),
                    lag_min=min(r.lag_min for r in rows),
                    lag_max=max(r.lag_max for r in rows),
                    latency_count=sum(r.latency_count for r in rows),
                    latency_sum=sum(r.latency_sum for r in rows),
                    latency_min=5.0,
                    latency_max=20.0,
                )
                for day, rows in days.items()
            ],
            batch_size=2000,
        )
        raw_start = datetime.fromtimestamp(hour_end - 2 * retention.DAY, tz=UTC)
        ProbeSample.objects.bulk_create(
            [
                ProbeSample(
                    probe_id=probe.pk,
                    application_id=probe.monitor.application_id,
                    at=raw_start + timedelta(minutes=m),
                    status="ok",
                    up=True,
                    rpo_seconds=10 + 5 * rng.random(),
                    lag_bytes=rng.randrange(10**6),
                    latency_ms=8.0,
                )
                for m in range(int((now - raw_start).total_seconds() // 60))
            ],
            batch_size=2000,
        )
    RollupState.objects.update_or_create(
        pk=1,
        defaults={
            "hours_until": datetime.fromtimestamp(hour_end, tz=UTC),
            "days_until": datetime.fromtimestamp(day_end, tz=UTC),
        },
    )
    return token, [p.pk for p in probes], time.monotonic() - started


def timed(call, repeat: int) -> tuple[float, float]:
    """(median wall-clock ms, median CPU ms of this process) after a warm-up. On a loaded machine the wall clock
    also counts the time other processes held the cores; the CPU time is what the request itself costs."""
    call()  # warm-up
    runs, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        call()
        runs.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return statistics.median(runs), statistics.median(cpu)


def get(client, url: str, token: str) -> None:
    response = client.get(url, HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    response.content  # noqa: B018 (rendered)


def probe_cycle(probe_ids: list[int], repeat: int) -> tuple[float, float]:
    """(ms for the actions alone, ms for run_due) for tcp probes to a listening local socket."""
    from analytics.monitoring import services
    from analytics.monitoring.models import Probe
    from failover.engine.actions import StepContext, run_action

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]

    def accept() -> None:  # a real server: takes each connection and closes it (a full backlog would hang)
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    params = {"host": "127.0.0.1", "port": port, "connect_timeout": 2}
    Probe.objects.filter(pk__in=probe_ids).update(action="tcp", params=params, next_run_at=None)
    workers = min(services.MAX_PARALLEL_PROBES, len(probe_ids))

    def actions_alone() -> None:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda _: run_action("tcp", params, StepContext(0, "p", timeout=5)), probe_ids))

    def cycle() -> None:
        Probe.objects.filter(pk__in=probe_ids).update(next_run_at=None)
        assert len(services.run_due()) == len(probe_ids)

    try:
        return timed(actions_alone, repeat)[0], timed(cycle, max(3, repeat // 3))[0]
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="drplan-bench-monitoring-"))
    try:
        configure(var_dir)
        from django.test import Client

        load = os.getloadavg()[0]
        token, probe_ids, build_seconds = build(args.applications)
        from analytics.monitoring.models import ProbeSample, SampleRollup

        client = Client()
        base, base_cpu = timed(lambda: get(client, "/api/v1/dr/health", token), args.repeat)
        rows = [
            ("GET /rto-rpo", timed(lambda: get(client, "/api/v1/dr/rto-rpo", token), args.repeat)),
            (
                f"GET /rto-rpo/history 1 year, {args.applications} applications, daily",
                timed(
                    lambda: get(client, "/api/v1/dr/rto-rpo/history?metric=rpo_seconds&period=1y", token), args.repeat
                ),
            ),
            (
                "GET /rto-rpo/history 1 year, 1 application, hourly",
                timed(
                    lambda: get(
                        client,
                        "/api/v1/dr/rto-rpo/history?application=app-000&metric=rpo_seconds&period=1y&resolution=hour",
                        token,
                    ),
                    args.repeat,
                ),
            ),
        ]
        alone, cycle = probe_cycle(probe_ids, args.repeat)
        n = len(probe_ids)
        print(
            f"# monitoring bench {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC: Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, {platform.machine()}, load average {load:.2f} at the start; SQLite"
        )
        print(
            f"# retained history: {SampleRollup.objects.filter(resolution='hour').count():,} hourly and "
            f"{SampleRollup.objects.filter(resolution='day').count():,} daily rollups, "
            f"{ProbeSample.objects.count():,} raw samples (built in {build_seconds:.0f} s)"
        )
        header = f"| what | median ms | × baseline | median CPU ms | < {GOAL_MS:g} ms: wall / CPU |"
        print(f"\n{header}\n|---|---:|---:|---:|---|")
        print(f"| baseline: GET /health (bare DRF) | {base:.1f} | 1.0 | {base_cpu:.1f} | |")
        for name, (ms, cpu_ms) in rows:
            verdict = " / ".join("met" if value < GOAL_MS else "not met" for value in (ms, cpu_ms))
            print(f"| {name} | {ms:.1f} | {ms / base:.1f} | {cpu_ms:.1f} | {verdict} |")
        overhead = (cycle - alone) / n
        print(f"| {n} tcp actions alone (8 threads): baseline of the cycle | {alone:.1f} | | |")
        print(f"| probe cycle: run_due of {n} tcp probes | {cycle:.1f} | {cycle / alone:.1f} × actions alone | |")
        print(
            f"| monitoring's overhead per probe (cycle − actions) / {n} | {overhead:.2f} | | "
            f"{'met' if overhead < GOAL_MS else 'not met'} |"
        )
        return 0
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
