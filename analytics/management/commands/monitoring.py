"""Continuous monitoring housekeeping (analytics/monitoring/).

python manage.py monitoring run [--all]   run the due probes now (--all: every enabled probe), print samples
python manage.py monitoring compact       roll raw samples into hours and hours into days, drop what is past retention
python manage.py monitoring evaluate      record missed test cadences and RTO breaches of DR test results
python manage.py monitoring schedule      create the ticker and compaction schedules (django-q2) if missing
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from analytics.monitoring import retention, services, tasks, violations
from analytics.monitoring.models import Probe


class Command(BaseCommand):
    help = "Monitoring: run due probes, compact history, evaluate SLA violations, ensure the schedules."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="command", required=True)
        run = sub.add_parser("run", help="run the due probes now")
        run.add_argument("--all", action="store_true", help="every probe of an enabled monitor, due or not")
        sub.add_parser("compact", help="roll up and apply retention")
        sub.add_parser("evaluate", help="record missed test cadences and RTO breaches of test results")
        sub.add_parser("schedule", help="create the django-q2 schedules if missing")

    def handle(self, *args: Any, **options: Any) -> None:
        command = options["command"]
        if command == "run":
            if options["all"]:
                probes = Probe.objects.filter(monitor__enabled=True).select_related("monitor").order_by("pk")
                samples = [services.run_probe(probe) for probe in probes]
            else:
                samples = services.run_due()
            for s in samples:
                values = f"rpo {s.rpo_seconds} s, lag {s.lag_bytes} bytes, up {s.up}, {s.latency_ms} ms"
                self.stdout.write(f"{s.probe}: {s.status}: {values}" + (f" ({s.error})" if s.error else ""))
            if not samples:
                self.stdout.write("no probe was due")
        elif command == "compact":
            self.stdout.write(str(retention.compact()))
        elif command == "evaluate":
            self.stdout.write(str(violations.evaluate()))
        elif command == "schedule":
            created = tasks.ensure_schedules()
            self.stdout.write(f"created: {', '.join(created)}" if created else "schedules already present")
