"""`manage.py compliance load` loads the framework catalogs (compliance/catalogs/*.yaml), idempotently;
`manage.py compliance import-oscal PATH` rewrites the NIST CP catalog's titles and texts from an OSCAL catalog
(JSON), keeping its evidence rules and notes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.catalogs import CATALOG_DIR, CatalogError, load_catalogs, read_catalog
from compliance.catalogs.oscal import cp_controls


class Command(BaseCommand):
    help = "Framework catalogs: `load` them into the database (idempotent), or `import-oscal` the NIST CP text."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        sub.add_parser("load", help="Load every catalog file; writes (and audits) only what changed.")
        oscal = sub.add_parser("import-oscal", help="Refresh nist_800_53.yaml from a NIST OSCAL catalog (JSON).")
        oscal.add_argument("path", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "load":
            try:
                counts = load_catalogs()
            except CatalogError as exc:
                raise CommandError(str(exc)) from exc
            for code, count in counts.items():
                self.stdout.write(
                    f"{code}: {count['created']} rows created, {count['updated']} updated, {count['removed']} removed"
                )
        else:
            self.import_oscal(options["path"])

    def import_oscal(self, path: Path) -> None:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        target = CATALOG_DIR / "nist_800_53.yaml"
        current = read_catalog(target)
        kept = {r["ref"]: r for r in current["requirements"]}
        _, controls = cp_controls(path)
        lines = target.read_text().split("requirements:\n", 1)[0] + "requirements:\n"
        entries = []
        for control in controls:
            old = kept.get(control["ref"], {})
            if control["withdrawn"]:  # listed, so a reader looking for it learns why it is not assessed
                note = old.get("note") or "Withdrawn in revision 5."
                entries.append({"ref": control["ref"], "title": control["title"], "note": note})
                continue
            entry: dict[str, Any] = {"ref": control["ref"], "title": control["title"], "text": control["text"]}
            if old.get("rules"):
                entry["rules"] = old["rules"]
            if old.get("note"):
                entry["note"] = old["note"]
            entries.append(entry)
        target.write_text(lines + yaml.dump(entries, sort_keys=False, allow_unicode=True, width=120))
        read_catalog(target)
        self.stdout.write(f"{target.name}: {len(entries)} controls from {path.name}")
