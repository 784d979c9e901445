"""Execution engine housekeeping.

python manage.py engine schedule     create the reaper's django-q2 schedule (idempotent)
python manage.py engine reap         resolve stale executions now; prints what it did
python manage.py engine run ID       run the coordinator of execution ID in this process
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from failover import tasks
from failover.engine.runner import run_execution


class Command(BaseCommand):
    help = "Execution engine housekeeping: the reaper schedule, a reap now, or a coordinator in the foreground."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="command", required=True)
        sub.add_parser("schedule", help="create the reaper schedule (every 30 s) if missing")
        sub.add_parser("reap", help="re-enqueue executions whose coordinator died; expire approvals")
        run = sub.add_parser("run", help="run one execution's coordinator here until it ends or pauses")
        run.add_argument("execution_id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        command = options["command"]
        if command == "schedule":
            created = tasks.ensure_reap_schedule()
            self.stdout.write(f"reaper schedule {'created' if created else 'already present'}")
        elif command == "reap":
            lines = tasks.reap()
            for line in lines:
                self.stdout.write(line)
            if not lines:
                self.stdout.write("nothing to do")
        elif command == "run":
            self.stdout.write(run_execution(options["execution_id"]))
