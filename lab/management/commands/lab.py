"""`manage.py lab up [--sync] [--ssh] | status [--json] | down | chaos KIND | monitor | clone-remove`.

The DR lab: a real PostgreSQL primary/standby, a Redis primary/replica and an orders application
on 127.0.0.1 under var/lab/ (lab/). `up` also connects the lab to the database when the Lab plan
is loaded (seed_demo): the secrets its runbooks reach the servers with, and the lab's versions of
the runbooks approved by the demo approver (see lab/setup.py); `--no-approve` skips the approval.
`clone-remove` is the DR test's teardown step (lab/templates/lab-dr-test.yaml).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.utils import DatabaseError

from lab import cluster, setup
from lab import monitor as monitor_module
from lab.cluster import LabError
from lab.state import lab_dir, require_state
from plans.models import DRPlan

CHAOS = ["kill-primary", "stop-replication", "kill-redis-primary"]


class Command(BaseCommand):
    help = "Run the DR lab: real PostgreSQL and Redis pairs and an orders application on 127.0.0.1."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        up = sub.add_parser("up", help="Start the lab (nothing to do if it runs).")
        up.add_argument("--sync", action="store_true", help="Synchronous replication (default asynchronous).")
        up.add_argument(
            "--ssh", action="store_true", help="Reach the nodes' data over SSH (an sshd on 127.0.0.1, user drplan-ssh)."
        )
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
        clone = sub.add_parser("clone-remove", help="Stop and remove the DR test's clone (prints JSON).")
        clone.add_argument("--dir", help="The lab's directory (default: var/lab or $DRPLAN_LAB_DIR).")
        clone.add_argument("--data-dir", required=True, help="The clone's data directory.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['subcommand'].replace('-', '_')}")(options)
        except LabError as exc:
            raise CommandError(str(exc)) from None
        except RuntimeError as exc:
            raise CommandError(f"lab {options['subcommand']}: {exc}") from None

    def _up(self, options: dict[str, Any]) -> None:
        state = cluster.up(sync=options["sync"], ssh=options["ssh"], log=self.stdout.write)
        try:
            for line in setup.connect_database(state, approve_runbooks=not options["no_approve"]):
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

    def _clone_remove(self, options: dict[str, Any]) -> None:
        root = Path(options["dir"]) if options["dir"] else lab_dir()
        result = cluster.remove_clone(Path(options["data_dir"]), require_state(root))
        self.stdout.write(json.dumps(result))

    def _chaos(self, options: dict[str, Any]) -> None:
        result = cluster.chaos(options["kind"])
        self.stdout.write(f"chaos {options['kind']}: {json.dumps(result, default=str)}")
