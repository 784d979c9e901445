"""Page timings: every page of the web UI on the demo organisation, in process (Django's test client,
the whole request: middleware, session, views, templates), next to the bare health endpoint.

    .venv/bin/python bench/pages.py [--repeat 20]

Steps: a temporary var dir with its own SQLite database (DRPLAN_VAR_DIR), migrate, seed_demo, its runbooks
approved and one execution of each kind so the lists have rows; then, signed in as the demo approver (the
DR manager sees the most), GET each page --repeat times after one warm-up and print the median and worst
time, and the ratio to the bare endpoint against the goal "every page under 200 ms".
The temp dir is removed at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_MS = 200.0
BARE = "/api/v1/dr/health"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="drplan-bench-pages-"))
    try:
        for name in ("DATABASE_URL", "REDIS_URL", "DRPLAN_SECRET_KEY"):
            os.environ.pop(name, None)
        os.environ.update(
            DRPLAN_VAR_DIR=str(var_dir),
            DRPLAN_ENV="development",
            DRPLAN_ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
            DJANGO_SETTINGS_MODULE="drplan.settings",
        )
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.test import Client
        from django.utils import timezone

        from failover import services
        from plans.models import DRPlan
        from runbooks.choices import VersionStatus
        from runbooks.models import RunbookVersion

        call_command("migrate", verbosity=0)
        call_command("seed_demo", "--skip-reports", verbosity=0, stdout=io.StringIO())
        RunbookVersion.objects.filter(status=VersionStatus.DRAFT).update(
            status=VersionStatus.APPROVED, approved_at=timezone.now()
        )
        operator = User.objects.get(username="operator")
        core = DRPlan.objects.get(plan_id="core-commerce")
        dry = services.start_failover(core, actor=operator, dry_run=True, reason="bench")
        services.start_test(DRPlan.objects.get(plan_id="back-office"), actor=operator, reason="bench")

        client = Client()
        client.force_login(User.objects.get(username="approver"))
        pages = [
            BARE,
            "/dashboard/",
            "/plans/",
            *[f"/plans/{p}/" for p in DRPlan.objects.order_by("plan_id").values_list("plan_id", flat=True)],
            "/plans/core-commerce/run/planned/",
            "/plans/back-office/run/test/",
            "/executions/",
            "/approvals/",
            "/schedules/",
            f"/console/executions/{dry.pk}/",
        ]
        rows = []
        for path in pages:
            response = client.get(path)  # warm-up
            assert response.status_code == 200, (path, response.status_code)
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                client.get(path)
                times.append((time.perf_counter() - start) * 1000)
            rows.append((path, statistics.median(times), max(times)))
        bare = rows[0][1]
        print(
            f"# pages on the demo organisation ({platform.python_version()}, {os.cpu_count()} CPUs, "
            f"SQLite, in process, {args.repeat} requests each)"
        )
        print(f"{'page':42} {'median ms':>10} {'worst ms':>9} {'x bare':>7}")
        worst_median = 0.0
        for path, median, worst in rows:
            print(f"{path:42} {median:10.1f} {worst:9.1f} {median / bare:7.1f}")
            if path != BARE:
                worst_median = max(worst_median, median)
        verdict = "met" if worst_median < GOAL_MS else "MISSED"
        print(f"slowest page median {worst_median:.1f} ms: goal < {GOAL_MS:.0f} ms {verdict}")
        return 0 if worst_median < GOAL_MS else 1
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
