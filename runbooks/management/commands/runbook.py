"""`manage.py runbook import FILE [--json]` and `manage.py runbook export ID [--version X] [--format yaml|json]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.http import Http404

from core.choices import AuthMethod
from core.exceptions import DomainError
from runbooks import selectors, services


class Command(BaseCommand):
    help = "Import a runbook document (YAML/JSON) or export a runbook version."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        importer = sub.add_parser("import", help="Import a runbook file (format from the extension, else detected).")
        importer.add_argument("file", help="Path to a .yaml/.yml/.json file, or - for stdin.")
        importer.add_argument("--json", action="store_true", help="Print the result as JSON.")
        importer.add_argument("--user", help="Username recorded as the author and in the audit log.")
        exporter = sub.add_parser("export", help="Print a runbook version as YAML or JSON.")
        exporter.add_argument("id", help="The runbook's numeric id or slug.")
        exporter.add_argument("--version", dest="runbook_version", help="Default: latest approved, else latest.")
        exporter.add_argument("--format", choices=["yaml", "json"], default="yaml")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["subcommand"] == "import":
                self._import(options)
            else:
                self._export(options)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        except Http404 as exc:
            raise CommandError(str(exc) or "not found") from None

    def _import(self, options: dict[str, Any]) -> None:
        name = options["file"]
        try:
            text = self.stdin_text() if name == "-" else Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {name}: {exc}") from None
        suffix = Path(name).suffix.lower()
        fmt = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}.get(suffix)
        actor = None
        if options.get("user"):
            actor = get_user_model().objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"no user {options['user']!r}")
        version = services.import_runbook_text(text, fmt=fmt, actor=actor, auth_method=AuthMethod.CLI)
        result = {
            "runbook": {"id": version.runbook_id, "slug": version.runbook.slug, "name": version.runbook.name},
            "version": {"id": version.pk, "version": version.version, "status": version.status},
            "created": version.was_created,
            "content_hash": version.content_hash,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
        else:
            verb = "Imported" if version.was_created else "Unchanged (already imported)"
            self.stdout.write(
                f"{verb}: runbook {version.runbook.slug} (id {version.runbook_id}) "
                f"version {version.version} [{version.status}]"
            )

    def _export(self, options: dict[str, Any]) -> None:
        runbook = selectors.get_runbook(options["id"])
        wanted = options.get("runbook_version")
        version = selectors.get_version(runbook, wanted) if wanted else selectors.default_export_version(runbook)
        if version is None:
            raise CommandError(f"runbook {runbook.slug} has no versions")
        self.stdout.write(services.export_version(version, options["format"]), ending="")

    def stdin_text(self) -> str:
        import sys

        return sys.stdin.read()
