"""The template library: the runbook documents of runbooks/templates/, each with a `template:` block.

A library template is a runbook document (runbooks/schema/runbook.schema.json) plus one top-level block the
runbook document parser never sees (`split` takes it off first):

    template:
      strategy: backup_restore | pilot_light | active_passive | active_active | replication
      systems: [PostgreSQL 16]                      # what it recovers, as people say it
      run_against: "PostgreSQL 16 (pgserver) …"     # what the suite has run it against, in words
      tested_by: runbooks/tests/test_template_runs.py::test_…[slug]   # the pytest node id that runs it
      secrets: {pg_primary: "DSN of the primary …"}  # every secret the document references, with what it holds

A template only ever dry-run (the demo organisation's, for example hosts) says so in run_against ("dry run
only …"); the catalogue marks it. The block is checked strictly (`TemplateError`, naming the file and the
key): exactly these keys, a known strategy, and `secrets` naming exactly the secrets the document
references (`secret_references`).

"Use template" (`use_template`) makes a DRAFT runbook version from a template, with the template's secret
names replaced by the user's own (`rebind_secrets`) and its provenance (template slug, version, file hash and
the binding) kept as the version's import record.

RECORD.json beside the templates is the shipped record of the last verified run of each template
(bench/templates.py writes it): slug → {rto_seconds, ran_at, run_against}.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from django.db import transaction

from core import audit
from core.choices import AuditAction, AuthMethod
from core.exceptions import Conflict, InvalidInput, NotFound
from core.secrets import missing_secrets
from runbooks import documents, services
from runbooks.models import Runbook, RunbookImport, RunbookVersion

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
RECORD_FILE = TEMPLATES_DIR / "RECORD.json"
SOURCE_FORMAT = "template"  # RunbookImport.source_format of a version made by use_template

STRATEGIES: dict[str, str] = {
    "backup_restore": "Backup and restore",
    "pilot_light": "Pilot light",
    "active_passive": "Active-passive",
    "active_active": "Active-active",
    "replication": "Replication failover",
}
BLOCK_KEYS = ("strategy", "systems", "run_against", "tested_by", "secrets")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_TESTED_BY = re.compile(r"^[\w./-]+\.py::\S+$")
# {{ secrets.NAME }} and {{ secrets['NAME'] }} (whole references only: the templating rules allow no other use)
_SECRET_ATTR = re.compile(r"(\{\{\s*secrets\.)([A-Za-z_][A-Za-z0-9_]*)(\s*\}\})")
_SECRET_ITEM = re.compile(r"""(\{\{\s*secrets\[\s*)(['"])([^'"]+)\2(\s*\]\s*\}\})""")


class TemplateError(InvalidInput):
    """A library file whose `template:` block (or document) is bad: the message names the file and the key."""

    default_code = "invalid_template"


@dataclass(frozen=True)
class Template:
    """One template of the library: its block and its runbook document (without the block)."""

    slug: str
    path: Path
    sha256: str
    strategy: str
    systems: list[str]
    run_against: str
    tested_by: str
    secrets: dict[str, str]
    document: dict[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return self.document["name"]

    @property
    def version(self) -> str:
        return self.document["version"]

    @property
    def strategy_label(self) -> str:
        return STRATEGIES[self.strategy]

    @property
    def dry_run_only(self) -> bool:
        return "dry run" in self.run_against.lower()

    def parameters(self) -> list[dict[str, Any]]:
        """[{name, type, default, description}] in document order."""
        return [
            {
                "name": name,
                "type": spec.get("type", "string"),
                "default": spec.get("default"),
                "description": spec.get("description", ""),
            }
            for name, spec in (self.document.get("parameters") or {}).items()
        ]


# --- Reading ---------------------------------------------------------------------


def split(text: str, filename: str = "template") -> tuple[dict[str, Any], dict[str, Any]]:
    """(runbook document without the block, the block) of a library file's text; TemplateError if either is bad."""
    try:
        doc = documents.parse_document(text, "yaml")
    except InvalidInput as exc:
        raise TemplateError(f"{filename}: {exc.message}", field=filename) from None
    if not isinstance(doc, dict):
        raise TemplateError(f"{filename}: a template is a YAML mapping (a runbook document)", field=filename)
    doc = dict(doc)
    if "template" not in doc:
        raise TemplateError(f"{filename}: no `template:` block (strategy, systems, …)", field=f"{filename}: template")
    block = doc.pop("template")
    return doc, block


def library_document(text: str, filename: str = "document") -> dict[str, Any] | None:
    """A native runbook document that carries a library `template:` block (a file of runbooks/templates/ imported
    or run as it is): the document without the block, the block checked like the library's own; None when the
    text is not such a document (it is then imported as it is)."""
    try:
        doc = documents.parse_document(text, None)
    except InvalidInput:
        return None  # the import reports the document's own error
    if not isinstance(doc, dict) or "template" not in doc:
        return None
    doc, block = split(text, filename or "document")
    validate_block(block, doc, filename or "document")
    return doc


def document_of(path: Path) -> dict[str, Any]:
    """The runbook document of a library file, without its `template:` block (for import)."""
    return split(path.read_text(), path.name)[0]


def document_text(path: Path) -> str:
    """The library file as a plain runbook document (YAML), without its `template:` block."""
    return documents.dump_document(document_of(path), "yaml")


def _bad(filename: str, key: str, message: str) -> TemplateError:
    return TemplateError(f"{filename}: template.{key}: {message}", field=f"{filename}: template.{key}")


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def validate_block(block: Any, doc: dict[str, Any], filename: str) -> dict[str, Any]:
    """The block checked strictly against the document; returns it. TemplateError names file and key."""
    if not isinstance(block, dict):
        raise TemplateError(f"{filename}: template: expected a mapping of {', '.join(BLOCK_KEYS)}", field=filename)
    unknown = sorted(set(block) - set(BLOCK_KEYS), key=str)
    if unknown:
        raise _bad(filename, str(unknown[0]), f"unknown key (allowed: {', '.join(BLOCK_KEYS)})")
    for key in BLOCK_KEYS:
        if key not in block:
            raise _bad(filename, key, "missing")
    if block["strategy"] not in STRATEGIES:
        raise _bad(filename, "strategy", f"must be one of {', '.join(STRATEGIES)}, not {block['strategy']!r}")
    systems = block["systems"]
    if not isinstance(systems, list) or not systems or not all(_text(s) for s in systems):
        raise _bad(filename, "systems", "must be a non-empty list of names, e.g. [PostgreSQL 16]")
    if not _text(block["run_against"]):
        raise _bad(filename, "run_against", "must say, in words, what the template has been run against")
    if not _text(block["tested_by"]) or not _TESTED_BY.match(block["tested_by"]):
        raise _bad(filename, "tested_by", "must be the pytest node id of its test (path/to/test_x.py::test_name)")
    secrets = block["secrets"]
    if not isinstance(secrets, dict) or not all(
        isinstance(name, str) and _SECRET_NAME.match(name) and _text(what) for name, what in secrets.items()
    ):
        raise _bad(filename, "secrets", "must map each secret name to what the secret holds")
    referenced = secret_references(doc)
    if set(secrets) != referenced:
        missing, extra = sorted(referenced - set(secrets)), sorted(set(secrets) - referenced)
        parts = [f"the document references {', '.join(missing)} (not listed)"] if missing else []
        parts += [f"{', '.join(extra)} listed but never referenced"] if extra else []
        raise _bad(filename, "secrets", "; ".join(parts))
    return block


def load(path: Path) -> Template:
    """One library file, its block and its document validated (TemplateError / the document's InvalidInput)."""
    text = path.read_text()
    doc, block = split(text, path.name)
    validate_block(block, doc, path.name)
    try:
        canonical = documents.normalise(doc)
    except InvalidInput as exc:
        raise TemplateError(f"{path.name}: {exc.message}", field=path.name) from None
    return Template(
        slug=canonical["slug"],
        path=path,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        strategy=block["strategy"],
        systems=[str(s) for s in block["systems"]],
        run_against=block["run_against"].strip(),
        tested_by=block["tested_by"].strip(),
        secrets=dict(block["secrets"]),
        document=doc,
    )


def _mtimes(directory: Path) -> tuple[tuple[str, float], ...]:
    return tuple((p.name, p.stat().st_mtime) for p in sorted(directory.glob("*.yaml")))


@cache
def _load_all(directory: Path, _stamp: tuple[tuple[str, float], ...]) -> dict[str, Template]:
    found: dict[str, Template] = {}
    for path in sorted(directory.glob("*.yaml")):
        template = load(path)
        if template.slug in found:
            raise TemplateError(f"{path.name}: slug {template.slug!r} is also {found[template.slug].path.name}'s")
        found[template.slug] = template
    return found


def all_templates(directory: Path = TEMPLATES_DIR) -> list[Template]:
    """Every template of the library, by slug (read again when a file changed)."""
    return list(_load_all(directory, _mtimes(directory)).values())


def get_template(slug: str, directory: Path = TEMPLATES_DIR) -> Template:
    found = _load_all(directory, _mtimes(directory)).get(slug)
    if found is None:
        raise NotFound(f"no runbook template {slug!r}")
    return found


def shipped_record(path: Path = RECORD_FILE) -> dict[str, dict[str, Any]]:
    """slug → {rto_seconds, ran_at, run_against} of the last verified run shipped with the library."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


# --- Secrets ---------------------------------------------------------------------


def _walk_secrets(value: Any, rename: dict[str, str] | None, found: set[str]) -> Any:
    """Collect (and, with `rename`, replace) secret names: values of `*_secret` keys and {{ secrets.X }}."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str) and key.endswith("_secret") and isinstance(item, str) and "{{" not in item:
                found.add(item)
                out[key] = rename.get(item, item) if rename else item
            else:
                out[key] = _walk_secrets(item, rename, found)
        return out
    if isinstance(value, list):
        return [_walk_secrets(item, rename, found) for item in value]
    if isinstance(value, str) and "secrets" in value:
        for match in _SECRET_ATTR.finditer(value):
            found.add(match.group(2))
        for match in _SECRET_ITEM.finditer(value):
            found.add(match.group(3))
        if rename:

            def attr(m: re.Match) -> str:
                new = rename.get(m.group(2), m.group(2))
                return f"{m.group(1)}{new}{m.group(3)}" if new.isidentifier() else f"{{{{ secrets[{new!r}] }}}}"

            value = _SECRET_ATTR.sub(attr, value)
            value = _SECRET_ITEM.sub(
                lambda m: f"{m.group(1)}{m.group(2)}{rename.get(m.group(3), m.group(3))}{m.group(2)}{m.group(4)}", value
            )
        return value
    return value


def _step_bodies(doc: dict[str, Any]) -> list[tuple[int, str, Any]]:
    out = []
    for index, step in enumerate(doc.get("steps") or []):
        if isinstance(step, dict):
            out.append((index, "with", step.get("with")))
            rollback = step.get("rollback")
            if isinstance(rollback, dict):
                out.append((index, "rollback", rollback.get("with")))
    return out


def secret_references(doc: dict[str, Any]) -> set[str]:
    """The secret names a runbook document's steps (and rollbacks) reference."""
    found: set[str] = set()
    for _, _, body in _step_bodies(doc):
        _walk_secrets(body, None, found)
    return found


def rebind_secrets(doc: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """A copy of `doc` whose steps reference mapping[name] wherever they referenced name."""
    out = copy.deepcopy(doc)
    for index, where, body in _step_bodies(out):
        if body is None:
            continue
        rebound = _walk_secrets(body, mapping, set())
        if where == "with":
            out["steps"][index]["with"] = rebound
        else:
            out["steps"][index]["rollback"]["with"] = rebound
    return out


# --- Use template ----------------------------------------------------------------


def _check_mapping(template: Template, secrets: Any) -> dict[str, str]:
    if secrets is None:
        secrets = {}
    if not isinstance(secrets, dict):
        raise InvalidInput("secrets must be an object mapping the template's secret names to yours", field="secrets")
    for name, target in secrets.items():
        if name not in template.secrets:
            raise InvalidInput(
                f"{name!r} is not a secret of template {template.slug!r} "
                f"(it has: {', '.join(sorted(template.secrets)) or 'none'})",
                field=f"secrets.{name}",
            )
        if not isinstance(target, str) or not target.strip():
            raise InvalidInput("must be the name of one of your secrets", field=f"secrets.{name}")
    unmapped = sorted(set(template.secrets) - set(secrets))
    if unmapped:
        raise InvalidInput(
            f"map every secret of the template to one of yours: {', '.join(unmapped)} not mapped",
            field=f"secrets.{unmapped[0]}",
        )
    for name in sorted(secrets):
        if missing_secrets([secrets[name]]):
            raise InvalidInput(
                f"no secret named {secrets[name]!r}: create it first (/api/v1/dr/secrets)", field=f"secrets.{name}"
            )
    return dict(secrets)


def use_template(
    slug: str,
    *,
    runbook_slug: Any,
    application: Any = None,
    secrets: Any = None,
    actor: Any = None,
    auth_method: str = AuthMethod.SYSTEM,
) -> RunbookVersion:
    """A new runbook `runbook_slug` whose first version — a DRAFT, never approved here — is the template's
    document with its secrets bound to the user's (`secrets`: template name → your secret's name) and, if
    given, for `application` (a slug). Provenance (template, its version and file hash, the binding) is the
    version's import record. All or nothing: a bad input (InvalidInput naming the field) stores nothing.
    Who may do it is the caller's rule (the API: runbooks.add_runbook)."""
    template = get_template(slug) if isinstance(slug, str) else None
    if template is None:
        raise NotFound(f"no runbook template {slug!r}")
    if not isinstance(runbook_slug, str) or not runbook_slug.strip():
        raise InvalidInput("the new runbook's slug is required (letters, digits, hyphens)", field="slug")
    if application is not None and not isinstance(application, str):
        raise InvalidInput("application must be an application's slug", field="application")
    mapping = _check_mapping(template, secrets)
    doc = rebind_secrets(template.document, mapping)
    doc["slug"] = runbook_slug
    doc["application"] = application or None
    doc["description"] = (
        f"{str(doc.get('description') or '').strip()} (From template {template.slug} {template.version}.)"
    ).strip()
    with transaction.atomic():
        if Runbook.objects.filter(slug=runbook_slug).exists():
            raise Conflict(f"a runbook with slug {runbook_slug!r} exists already; choose another", field="slug")
        version = services.import_runbook_document(doc, actor=actor, auth_method=auth_method)
        text = template.path.read_text()
        record = RunbookImport.objects.create(
            version=version,
            source_format=SOURCE_FORMAT,
            filename=template.path.name,
            original=text,
            original_sha256=template.sha256,
            report={
                "format": SOURCE_FORMAT,
                "template": {"slug": template.slug, "version": template.version, "strategy": template.strategy},
                "secrets": mapping,
                "summary": {"converted": len(doc["steps"]), "manual": 0, "dropped": 0},
                "entries": [
                    {"source": step["id"], "outcome": "converted", "step": step["id"], "detail": "from the template"}
                    for step in doc["steps"]
                ],
                "notes": [
                    f"Created from template {template.slug} {template.version} ({template.strategy_label}); "
                    f"run against: {template.run_against}.",
                    *(f"secret {theirs} bound to your {ours}" for theirs, ours in sorted(mapping.items())),
                ],
            },
        )
        audit.record(
            AuditAction.CREATE,
            record,
            actor=actor,
            auth_method=auth_method,
            after={
                "version": str(version),
                "template": template.slug,
                "template_version": template.version,
                "secrets": mapping,
            },
            comment=f"from template {template.slug}",
        )
    return version


def provenance(version: RunbookVersion) -> dict[str, Any] | None:
    """{slug, version, strategy} of the template a version was made from, else None."""
    record = RunbookImport.objects.filter(version=version, source_format=SOURCE_FORMAT).first()
    return (record.report or {}).get("template") if record is not None else None


RunFinder = Callable[[list[int]], dict[str, Any] | None]
_run_finder: RunFinder | None = None


def install_run_finder(finder: RunFinder | None) -> None:
    """The seam drplan/wiring.py fills: version ids → their last completed real execution (runbooks does not
    import failover): failover.selectors.last_completed_real_run."""
    global _run_finder
    _run_finder = finder


def last_verified_run(slug: str) -> dict[str, Any] | None:
    """{rto_seconds, finished_at, execution} of the last completed real (not dry-run) execution, in this
    installation, of a runbook version made from template `slug` (alone or in a plan); None when there is none
    (or no finder is installed)."""
    versions = list(
        RunbookVersion.objects.filter(
            import_record__source_format=SOURCE_FORMAT, import_record__report__template__slug=slug
        ).values_list("pk", flat=True)
    )
    if _run_finder is None or not versions:
        return None
    return _run_finder(versions)
