"""`manage.py lab up [--sync] | status [--json] | down | chaos kill-primary|stop-replication|kill-redis-primary`.

The DR lab: a real PostgreSQL primary/standby, a Redis primary/replica and an orders application
on 127.0.0.1 under var/lab/ (failover/lab/). `up` also connects the lab to the database when the
Lab plan is loaded (seed_demo): the DSN secret of its validation check, and the lab runbooks
approved by the demo approver (see failover/lab/setup.py); `--no-approve` skips the approval.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.utils import DatabaseError

from failover.lab import cluster, setup
from failover.lab import monitor as monitor_module
from failover.lab.cluster import LabError
from plans.models import DRPlan

CHAOS = ["kill-primary", "stop-replication", "kill-redis-primary"]


class Command(BaseCommand):
    help = "Run the DR lab: real PostgreSQL and Redis pairs and an orders application on 127.0.0.1."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        up = sub.add_parser("up", help="Start the lab (nothing to do if it runs).")
        up.add_argument("--sync", action="store_true", help="Synchronous replication (default asynchronous).")
        up.add_argument("--no-approve", action="store_true", help="Do not approve the lab runbooks.")
        up.add_argument("--no-monitor", action="store_true", help="Do not start the failure-detection monitor.")
        monitor = sub.add_parser("monitor", help="Watch the primary; act per the Lab plan's failover mode.")
        monitor.add_argument("--plan", default=monitor_module.PLAN_ID)
        monitor.add_argument("--interval", type=float, default=1.0)
        status = sub.add_parser("status", help="Roles, replication state and lag, the route, the app.")
        status.add_argument("--json", action="store_true")
        sub.add_parser("down", help="Stop everything the lab started (verified by pid).")
        chaos = sub.add_parser("chaos", help="Inject a failure.")
        chaos.add_argument("kind", choices=CHAOS)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['subcommand']}")(options)
        except LabError as exc:
            raise CommandError(str(exc)) from None
        except RuntimeError as exc:
            raise CommandError(f"lab {options['subcommand']}: {exc}") from None

    def _up(self, options: dict[str, Any]) -> None:
        state = cluster.up(sync=options["sync"], log=self.stdout.write)
        try:
            for line in setup.connect_database(state, approve=not options["no_approve"]):
                self.stdout.write(line)
        except DatabaseError as exc:
            self.stdout.write(f"database not ready ({exc}); run `python manage.py migrate` and `seed_demo`")
            return
        if options["no_monitor"] or (state.get("monitor") or {}).get("pid"):
            return
        if DRPlan.objects.filter(plan_id=monitor_module.PLAN_ID).exists():
            pid = monitor_module.start()
            self.stdout.write(f"monitor pid {pid} watching the primary for plan '{monitor_module.PLAN_ID}'")

    def _monitor(self, options: dict[str, Any]) -> None:
        self.stdout.write(f"monitoring plan '{options['plan']}' every {options['interval']:g} s; Ctrl-C stops")
        monitor_module.run(options["plan"], interval=options["interval"])

    def _status(self, options: dict[str, Any]) -> None:
        info = cluster.status()
        self.stdout.write(json.dumps(info, indent=2, default=str) if options["json"] else cluster.format_status(info))

    def _down(self, options: dict[str, Any]) -> None:
        cluster.down(log=self.stdout.write)

    def _chaos(self, options: dict[str, Any]) -> None:
        result = cluster.chaos(options["kind"])
        self.stdout.write(f"chaos {options['kind']}: {json.dumps(result, default=str)}")
