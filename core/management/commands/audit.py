"""`manage.py audit verify` checks the hash chain; `manage.py audit tail -n 20` shows recent entries."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.audit import verify_chain
from core.models import AuditEntry


class Command(BaseCommand):
    help = "Inspect the audit log: `verify` the hash chain (exit 1 if broken) or `tail` recent entries."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        sub.add_parser("verify", help="Walk the whole chain; exit 1 naming the first broken entry.")
        tail = sub.add_parser("tail", help="Print the most recent entries, oldest first.")
        tail.add_argument("-n", "--lines", type=int, default=20, help="How many entries (default 20).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "verify":
            self.verify()
        else:
            self.tail(options["lines"])

    def verify(self) -> None:
        broken = verify_chain()
        if broken is not None:
            raise CommandError(f"audit chain BROKEN at entry #{broken.seq}: {broken.reason}", returncode=1)
        self.stdout.write(f"audit chain intact: {AuditEntry.objects.count()} entries")

    def tail(self, lines: int) -> None:
        if lines < 1:
            raise CommandError("-n must be at least 1")
        entries = list(AuditEntry.objects.order_by("-seq")[:lines])
        for entry in reversed(entries):
            self.stdout.write(
                f"#{entry.seq} {entry.at:%Y-%m-%d %H:%M:%S} {entry.actor_username or 'system'} "
                f"({entry.auth_method}) {entry.action} {entry.object_type}:{entry.object_id} {entry.object_repr}"
                + (f" — {entry.comment}" if entry.comment else "")
            )
