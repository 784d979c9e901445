"""Alerts and notifications housekeeping.

python manage.py notifications schedule   create the every-minute django-q2 schedule (idempotent)
python manage.py notifications evaluate   evaluate the alert rules and the RTO forecasts now
python manage.py notifications deliver    attempt every delivery that is due, in this process
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from analytics.notifications import delivery, services, tasks


class Command(BaseCommand):
    help = "Alerts and notifications: the schedule, an evaluation now, or the due deliveries in the foreground."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="command", required=True)
        sub.add_parser("schedule", help="create the every-minute schedule if missing")
        sub.add_parser("evaluate", help="evaluate the alert rules and RTO forecasts now (deliveries are queued)")
        sub.add_parser("deliver", help="attempt the deliveries that are due here")

    def handle(self, *args: Any, **options: Any) -> None:
        command = options["command"]
        if command == "schedule":
            created = tasks.ensure_schedule()
            self.stdout.write(f"notifications schedule {'created' if created else 'already present'}")
        elif command == "evaluate":
            counts = services.evaluate_alert_rules()
            forecasts = services.check_rto_forecasts()
            self.stdout.write(
                f"alerts fired {counts['fired']}, repeated {counts['repeated']}, resolved {counts['resolved']}; "
                f"RTO forecasts {forecasts}"
            )
        else:
            delivery.release_stale_claims()
            for delivery_id in services.pending_due():
                self.stdout.write(delivery.deliver(delivery_id))
