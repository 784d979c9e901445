"""The import use case: a foreign document → a draft runbook version with its provenance and report, in one
transaction (all or nothing: a refused import stores nothing)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from core import audit
from core.choices import AuditAction, AuthMethod
from core.exceptions import InvalidInput
from core.roles import require_permission
from plans.models import Application
from runbooks import library, services
from runbooks.importers import registry
from runbooks.importers.base import MAX_SOURCE_BYTES, Conversion, ImportFailed
from runbooks.models import RunbookImport, RunbookVersion


@dataclass
class ImportResult:
    version: RunbookVersion
    format: str
    created: bool
    report: dict[str, Any] | None  # None for a native DRPlan document


def convert(text: str, fmt: str | None = None) -> tuple[str, Conversion | None]:
    """Parse and convert without storing anything: (format name, conversion; None for a native document)."""
    if not isinstance(text, str) or not text.strip():
        raise ImportFailed("content", "the document is empty")
    if "\x00" in text:
        raise ImportFailed("content", "the document contains a NUL character; it is not a text document")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise ImportFailed("content", f"the document is larger than {MAX_SOURCE_BYTES} bytes")
    chosen = registry.resolve(fmt) if fmt else None
    xml = registry.is_xml(text)
    if xml and chosen is not None and chosen.name != "rundeck":
        raise ImportFailed("format", f"an XML document cannot be {chosen.name}; XML is read as a Rundeck job list")
    parsed = None if xml else registry.parse(text)
    name = chosen.name if chosen is not None else registry.detect(text, parsed)
    spec = registry.FORMATS[name]
    if spec.convert is None:
        return name, None
    return name, spec.convert(text, parsed)


def import_file(
    text: str,
    *,
    fmt: str | None = None,
    filename: str = "",
    actor: Any = None,
    auth_method: str = AuthMethod.SYSTEM,
) -> ImportResult:
    """Import `text` in format `fmt` (detected when None) as a draft version (never approved by the import).

    The same file imported again finds its version (idempotent: its version number carries the file's
    hash). Applications a recovery plan names are matched by name or slug, else created (which needs
    plans.add_application). Who may import at all is the caller's rule (the API: runbooks.add_runbook)."""
    name, conversion = convert(text, fmt)
    if conversion is None:
        text = text.lstrip("\ufeff")
        template = library.library_document(text, filename)  # a library file: its `template:` block is not imported
        if template is not None:
            version = services.import_runbook_document(template, actor=actor, auth_method=auth_method)
        else:
            version = services.import_runbook_text(text, actor=actor, auth_method=auth_method)
        return ImportResult(version, name, version.was_created, None)
    with transaction.atomic():
        _applications(conversion, actor, auth_method)
        version = services.import_runbook_document(conversion.document, actor=actor, auth_method=auth_method)
        if version.was_created:
            record = RunbookImport.objects.create(
                version=version,
                source_format=name,
                filename=filename[:255],
                original=text,
                original_sha256=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
                report=conversion.report.as_dict(),
            )
            audit.record(
                AuditAction.IMPORT,
                record,
                actor=actor,
                auth_method=auth_method,
                after={
                    "version": str(version),
                    "format": name,
                    "filename": record.filename,
                    "original_sha256": record.original_sha256,
                    "summary": record.report["summary"],
                },
            )
            report = record.report
        else:
            found = RunbookImport.objects.filter(version=version).first()
            report = found.report if found is not None else conversion.report.as_dict()
    return ImportResult(version, name, version.was_created, report)


def _applications(conversion: Conversion, actor: Any, auth_method: str) -> None:
    """Match each application a conversion names by name (case-insensitive) or slug; create the others."""
    for wanted in conversion.applications:
        found = (
            Application.objects.filter(slug=wanted["slug"]).first()
            or Application.objects.filter(name__iexact=wanted["name"]).first()
        )
        if found is not None:
            conversion.report.converted(wanted["source"], None, f"application {found.slug!r} matched by name")
            continue
        require_permission(actor, "plans.add_application", "create the applications a recovery plan names")
        created = Application.objects.create(
            slug=wanted["slug"],
            name=wanted["name"][:200],
            tier=wanted["tier"],
            description="Created by a runbook import.",
        )
        audit.record(
            AuditAction.CREATE,
            created,
            actor=actor,
            auth_method=auth_method,
            after=audit.snapshot(created),
            comment="created by a runbook import",
        )
        conversion.report.converted(
            wanted["source"], None, f"application {created.slug!r} created (tier {created.tier})"
        )


def import_record(version: RunbookVersion) -> RunbookImport | None:
    return RunbookImport.objects.filter(version=version).first()


__all__ = ["ImportResult", "InvalidInput", "convert", "import_file", "import_record"]
