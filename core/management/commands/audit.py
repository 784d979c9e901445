"""`manage.py audit verify` checks the hash chain (`--checkpoints`: also against the signed checkpoints kept
outside the database, which finds a truncated or rewritten chain); `manage.py audit checkpoint` signs the
current head; `manage.py audit tail -n 20` shows recent entries."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core import checkpoints
from core.audit import verify_chain
from core.models import AuditEntry


class Command(BaseCommand):
    help = "Inspect the audit log: `verify` the hash chain (exit 1 if broken) or `tail` recent entries."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        verify = sub.add_parser("verify", help="Walk the whole chain; exit 1 naming the first broken entry.")
        verify.add_argument(
            "--checkpoints",
            action="store_true",
            help="Also check the chain against the signed checkpoints (DRPLAN_CHECKPOINT_FILE).",
        )
        verify.add_argument("--checkpoint-file", help="Another checkpoint file than DRPLAN_CHECKPOINT_FILE.")
        sub.add_parser("checkpoint", help="Sign the chain head and append it to the checkpoint file.")
        tail = sub.add_parser("tail", help="Print the most recent entries, oldest first.")
        tail.add_argument("-n", "--lines", type=int, default=20, help="How many entries (default 20).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "verify":
            self.verify(options["checkpoints"] or bool(options["checkpoint_file"]), options["checkpoint_file"])
        elif options["subcommand"] == "checkpoint":
            made = checkpoints.sign_head(reason="manage.py audit checkpoint")
            self.stdout.write(
                f"checkpoint signed: entry #{made.seq}, hash {made.hash} -> {checkpoints.default_store().path}"
            )
        else:
            self.tail(options["lines"])

    def verify(self, with_checkpoints: bool, checkpoint_file: str | None) -> None:
        broken = verify_chain()
        if broken is not None:
            raise CommandError(f"audit chain BROKEN at entry #{broken.seq}: {broken.reason}", returncode=1)
        self.stdout.write(f"audit chain intact: {AuditEntry.objects.count()} entries")
        if not with_checkpoints:
            return
        store = checkpoints.CheckpointStore(checkpoint_file) if checkpoint_file else checkpoints.default_store()
        problems = checkpoints.verify_against_chain(store)
        if problems:
            lines = "\n".join(f"  - {p.reason}" for p in problems)
            raise CommandError(
                f"audit chain does NOT match its signed checkpoints ({store.path}):\n{lines}", returncode=1
            )
        found, _ = store.read()
        if not found:
            raise CommandError(f"no signed checkpoint in {store.path}: nothing to compare the chain with", returncode=1)
        latest = max(found, key=lambda c: c.seq)
        self.stdout.write(
            f"checkpoints agree: {len(found)} signed checkpoints in {store.path}, "
            f"latest at entry #{latest.seq} ({latest.at})"
        )

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
