"""`manage.py runbook import FILE [--from FORMAT] [--json]`, `manage.py runbook export ID [--version X]
[--format yaml|json]` and `manage.py runbook run FILE [--from FORMAT] [--param k=v ...] [--dry-run] [--wait]
[--json]`.

`run` imports the file (idempotent: an already imported, approved version is reused) and runs it. Both take
every importable format (runbooks.importers: Rundeck, Chaos Toolkit, AWS SSM Automation, Ansible, Azure Site
Recovery), detected or given with --from: a foreign file is imported as a draft with its report, then dry-run,
or run once that version is approved (the same file imports to the same version).
Only approved versions run for real: a file that imports as a new draft can only be dry-run
(--dry-run) until it is approved — the CLI approves nothing by itself.

The command lives with executions (failover/) because `run` starts one; import and export are
runbooks' use cases (runbooks.services), which sit below and know nothing of executions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser
from django.http import Http404

from core.choices import AuthMethod
from core.exceptions import DomainError
from failover import cli as failover_cli
from failover import services as failover_services
from runbooks import selectors, services
from runbooks.choices import ImportFormat, VersionStatus
from runbooks.importers.registry import ALIASES
from runbooks.importers.service import ImportResult, import_file


def _from_option(parser: CommandParser) -> None:
    parser.add_argument(
        "--from",
        dest="source_format",
        choices=[*ImportFormat.values, *sorted(ALIASES)],
        help="The file's format (default: detected): " + ", ".join(ImportFormat.values) + ".",
    )


class Command(failover_cli.RunCommand):
    help = "Import a runbook document (YAML/JSON), export a runbook version, or import and run one."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        importer = sub.add_parser(
            "import", help="Import a runbook file: DRPlan YAML/JSON, or another tool's format (detected, or --from)."
        )
        importer.add_argument("file", help="Path to the file, or - for stdin.")
        _from_option(importer)
        importer.add_argument("--json", action="store_true", help="Print the result as JSON.")
        importer.add_argument("--user", help="Username recorded as the author and in the audit log.")
        exporter = sub.add_parser("export", help="Print a runbook version as YAML or JSON.")
        exporter.add_argument("id", help="The runbook's numeric id or slug.")
        exporter.add_argument("--version", dest="runbook_version", help="Default: latest approved, else latest.")
        exporter.add_argument("--format", choices=["yaml", "json"], default="yaml")
        runner = sub.add_parser("run", help="Import a runbook file and run it (approved versions; else --dry-run).")
        runner.add_argument("file", help="Path to a runbook file in any importable format, or - for stdin.")
        _from_option(runner)
        failover_cli.add_run_options(runner)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["subcommand"] == "import":
                self._import(options)
            elif options["subcommand"] == "run":
                self._run(options)
            else:
                self._export(options)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        except Http404 as exc:
            raise CommandError(str(exc) or "not found") from None

    def _read(self, options: dict[str, Any]) -> tuple[str, Any]:
        name = options["file"]
        try:
            text = self.stdin_text() if name == "-" else Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {name}: {exc}") from None
        actor = None
        if options.get("user"):
            actor = get_user_model().objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"no user {options['user']!r}")
        return text, actor

    def _import_file(self, options: dict[str, Any]) -> ImportResult:
        text, actor = self._read(options)
        filename = "" if options["file"] == "-" else Path(options["file"]).name
        return import_file(
            text, fmt=options.get("source_format"), filename=filename, actor=actor, auth_method=AuthMethod.CLI
        )

    def _run(self, options: dict[str, Any]) -> None:
        result = self._import_file(options)
        version = result.version
        actor = self._read_user(options)
        if result.report is not None and not options["json"]:
            self.stdout.write(self._report_line(result))
        if version.status != VersionStatus.APPROVED and not options["dry_run"]:
            raise CommandError(
                f"runbook {version} is {version.status}: only approved versions run. Submit it for approval "
                "(manage.py runbook / the API), or use --dry-run to validate and render it."
            )
        execution = failover_services.execute_runbook(
            version,
            actor=actor,
            auth_method=AuthMethod.CLI,
            reason=options["reason"],
            parameters=failover_cli.parse_params(options.get("param")),
            dry_run=options["dry_run"],
            coerce_strings=True,
        )
        if not options["json"]:
            self.stdout.write(f"execution #{execution.pk} of {version} created: {execution.status}")
        failover_cli.finish(self, execution.pk, options)

    def _import(self, options: dict[str, Any]) -> None:
        imported = self._import_file(options)
        version = imported.version
        result: dict[str, Any] = {
            "runbook": {"id": version.runbook_id, "slug": version.runbook.slug, "name": version.name},
            "version": {"id": version.pk, "version": version.version, "status": version.status},
            "created": version.was_created,
            "content_hash": version.content_hash,
        }
        if imported.report is not None:
            result.update(format=imported.format, report=imported.report)
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        verb = "Imported" if version.was_created else "Unchanged (already imported)"
        self.stdout.write(
            f"{verb}: runbook {version.runbook.slug} (id {version.runbook_id}) "
            f"version {version.version} [{version.status}]"
        )
        if imported.report is not None:
            self.stdout.write(self._report_line(imported))
            for entry in imported.report["entries"]:
                step = f" → {entry['step']}" if entry["step"] else ""
                self.stdout.write(f"  {entry['outcome']:<9} {entry['source']}{step}: {entry['detail']}")
            for note in imported.report["notes"]:
                self.stdout.write(f"  note: {note}")

    @staticmethod
    def _report_line(imported: ImportResult) -> str:
        counts = imported.report["summary"] if imported.report else {}
        return (
            f"Import report ({imported.format}): {counts.get('converted', 0)} converted, "
            f"{counts.get('manual', 0)} manual, {counts.get('dropped', 0)} dropped"
        )

    def _read_user(self, options: dict[str, Any]) -> Any:
        if not options.get("user"):
            return None
        return get_user_model().objects.filter(username=options["user"]).first()

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
