"""Template runs: each library template with a target (runbooks/tests/template_targets.py, and
template_targets_more.py when present) run once end to end against its real servers, as the test suite runs it
(use template → draft → approved by someone else → the engine, for real), its measured RTO printed with the
ratio to the fastest template of the same run.

    .venv/bin/python bench/templates.py [--only SLUG ...] [--write-record]

--write-record writes runbooks/templates/RECORD.json (slug → {rto_seconds, ran_at, run_against}): the
"reference run" the API and the catalogue page show for each template. A temporary var dir with its own
SQLite database (DRPLAN_VAR_DIR; any DATABASE_URL is ignored), removed at the end; every server a target
starts is stopped by pid when it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="template slugs (default: every template with a target)")
    parser.add_argument("--write-record", action="store_true", help="write runbooks/templates/RECORD.json")
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="drplan-bench-templates-"))
    try:
        sys.path.insert(0, str(ROOT))
        from bench.api import configure_environment

        configure_environment(var_dir)  # a private SQLite database, development mode
        import django

        django.setup()
        from django.contrib.auth.models import Group, User
        from django.core.management import call_command

        from core.roles import ROLES, setup_roles
        from failover import common
        from runbooks import library
        from runbooks.tests.test_template_runs import ALL_TARGETS, run_template

        call_command("migrate", verbosity=0)
        setup_roles()
        common._enqueue = lambda pk: None  # the bench runs each execution itself, in this process

        def make_user(username: str, role: str | None = None) -> User:
            user = User.objects.create_user(username=username, password=None, is_superuser=role == "admin")
            if role:
                user.groups.add(Group.objects.get(name=role))
            return user

        users = {role: make_user(role, role) for role in ROLES}
        slugs = args.only or sorted(ALL_TARGETS)
        load = os.getloadavg()
        print(
            f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, load {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}, {len(slugs)} templates"
        )
        results: dict[str, dict] = {}
        for slug in slugs:
            started = time.monotonic()
            root = var_dir / slug  # each target's servers keep their files here
            root.mkdir(parents=True, exist_ok=True)
            execution, _ = run_template(slug, root, users, make_user)
            template = library.get_template(slug)
            results[slug] = {
                "rto_seconds": round(execution.actual_rto_seconds, 3),
                "rpo_seconds": execution.actual_rpo_seconds,
                "ran_at": execution.finished_at.astimezone(UTC).isoformat(timespec="seconds"),
                "run_against": template.run_against,
                "strategy": template.strategy,
                "wall_seconds": time.monotonic() - started,
            }
        fastest = min(r["rto_seconds"] for r in results.values())
        print("| template | strategy | measured RTO s | × fastest | RPO s | whole run with servers s |")
        print("|---|---|---:|---:|---:|---:|")
        for slug, r in results.items():
            rpo = "" if r["rpo_seconds"] is None else f"{r['rpo_seconds']:.1f}"
            print(
                f"| {slug} | {r['strategy']} | {r['rto_seconds']:.2f} | {r['rto_seconds'] / fastest:.1f} | {rpo} | "
                f"{r['wall_seconds']:.1f} |"
            )
        if args.write_record:
            record = library.shipped_record()
            record.update(
                {
                    slug: {"rto_seconds": r["rto_seconds"], "ran_at": r["ran_at"], "run_against": r["run_against"]}
                    for slug, r in results.items()
                }
            )
            library.RECORD_FILE.write_text(json.dumps(dict(sorted(record.items())), indent=2) + "\n")
            print(f"\nwrote {library.RECORD_FILE.relative_to(ROOT)} ({len(results)} templates)")
        print(f"\nfinished {datetime.now(UTC):%H:%M:%S} UTC")
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
