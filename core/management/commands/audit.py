"""`manage.py audit verify` checks the hash chain (`--checkpoints`: also against the signed checkpoints kept
outside the database, which finds a truncated or rewritten chain; `--checkpoint-file` / `--checkpoint-url`: against
checkpoints kept elsewhere, e.g. by the webhook's receiver); `manage.py audit checkpoint` signs the current head;
`manage.py audit tail -n 20` shows recent entries."""

from __future__ import annotations

from typing import Any

from django.conf import settings
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
        source = verify.add_mutually_exclusive_group()
        source.add_argument(
            "--checkpoint-file",
            help="Another checkpoint file than DRPLAN_CHECKPOINT_FILE, e.g. one the webhook's receiver exported "
            '(JSON Lines, a JSON array or {"checkpoints": [...]}).',
        )
        source.add_argument(
            "--checkpoint-url",
            help="A URL that serves the checkpoints kept outside the machine (same formats); "
            "DRPLAN_AUDIT_CHECKPOINT_WEBHOOK_TOKEN is sent as a bearer token.",
        )
        sub.add_parser("checkpoint", help="Sign the chain head and append it to the checkpoint file.")
        tail = sub.add_parser("tail", help="Print the most recent entries, oldest first.")
        tail.add_argument("-n", "--lines", type=int, default=20, help="How many entries (default 20).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "verify":
            store = self.source(options["checkpoint_file"], options["checkpoint_url"])
            self.verify(options["checkpoints"] or store is not None, store)
        elif options["subcommand"] == "checkpoint":
            made = checkpoints.sign_head(reason="manage.py audit checkpoint", wait=True)
            sink = checkpoints.webhook_sink()
            self.stdout.write(
                f"checkpoint signed: entry #{made.seq}, hash {made.hash} -> {checkpoints.default_store().path}"
                + (f" and {sink.url}" if sink else "")
            )
        else:
            self.tail(options["lines"])

    def source(self, file: str | None, url: str | None) -> checkpoints.CheckpointStore | checkpoints.UrlSource | None:
        if file:
            return checkpoints.CheckpointStore(file)
        if url:
            try:
                return checkpoints.UrlSource(url, token=settings.CHECKPOINT_WEBHOOK_TOKEN)
            except checkpoints.SourceUnavailable as error:
                raise CommandError(str(error)) from error
        return None

    def verify(self, with_checkpoints: bool, store: checkpoints.CheckpointStore | checkpoints.UrlSource | None) -> None:
        broken = verify_chain()
        if broken is not None:
            raise CommandError(f"audit chain BROKEN at entry #{broken.seq}: {broken.reason}", returncode=1)
        self.stdout.write(f"audit chain intact: {AuditEntry.objects.count()} entries")
        if not with_checkpoints:
            return
        store = store or checkpoints.default_store()
        try:
            problems = checkpoints.verify_against_chain(store)
            found, _ = store.read()
        except checkpoints.SourceUnavailable as error:
            raise CommandError(f"the checkpoints could not be read: {error}", returncode=1) from error
        if problems:
            lines = "\n".join(f"  - {p.reason}" for p in problems)
            raise CommandError(
                f"audit chain does NOT match its signed checkpoints ({store.name}):\n{lines}", returncode=1
            )
        if not found:
            raise CommandError(f"no signed checkpoint in {store.name}: nothing to compare the chain with", returncode=1)
        latest = max(found, key=lambda c: c.seq)
        self.stdout.write(
            f"checkpoints agree: {len(found)} signed checkpoints in {store.name}, "
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
