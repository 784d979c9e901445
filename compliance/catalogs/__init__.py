"""Framework catalogs as data: one YAML file per framework in this folder (sources and licences in README.md),
checked here and loaded into `Framework` / `Requirement` rows by `python manage.py compliance load`.

A file has `framework` (code, name, version, publisher, source, source_url, licence) and `requirements`, each
with `ref`, `title`, optional `text`, `parent` (a ref above it), `rules` (ids from compliance/rules.py) and
`note`. Loading is idempotent: a row is written and audited only when it is new or differs from the file; a
requirement no longer in the file is removed (reports keep their own copy of what they judged).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from core import audit
from core.choices import AuditAction, AuthMethod
from plans.choices import ComplianceFramework

CATALOG_DIR = Path(__file__).resolve().parent
FRAMEWORK_KEYS = {"code", "name", "version", "publisher", "source", "source_url", "licence"}
REQUIREMENT_KEYS = {"ref", "title", "text", "parent", "rules", "note"}


class CatalogError(ValueError):
    """A catalog file that does not hold what a catalog must (names the file and the entry)."""


def catalog_files() -> list[Path]:
    return sorted(CATALOG_DIR.glob("*.yaml"))


def read_catalog(path: Path) -> dict[str, Any]:
    """Parse and check one catalog file; returns {"framework", "requirements", "sha256", "file"}."""
    from compliance.rules import RULES

    raw = path.read_bytes()
    data = yaml.safe_load(raw)
    where = path.name
    if not isinstance(data, dict) or set(data) != {"framework", "requirements"}:
        raise CatalogError(f"{where}: needs exactly the keys framework and requirements")
    framework = data["framework"]
    if not isinstance(framework, dict) or set(framework) != FRAMEWORK_KEYS:
        raise CatalogError(f"{where}: framework needs exactly {', '.join(sorted(FRAMEWORK_KEYS))}")
    if framework["code"] not in ComplianceFramework.values:
        raise CatalogError(f"{where}: unknown framework code {framework['code']!r}")
    if path.stem != framework["code"]:
        raise CatalogError(f"{where}: the file must be named after its code ({framework['code']}.yaml)")
    seen: set[str] = set()
    requirements = []
    for position, item in enumerate(data["requirements"] or [], start=1):
        if not isinstance(item, dict) or not {"ref", "title"} <= set(item) or set(item) - REQUIREMENT_KEYS:
            raise CatalogError(
                f"{where}: requirement #{position} needs ref and title, and only {sorted(REQUIREMENT_KEYS)}"
            )
        ref = str(item["ref"])
        if ref in seen:
            raise CatalogError(f"{where}: requirement {ref} appears twice")
        parent = str(item.get("parent", "") or "")
        if parent and parent not in seen:
            raise CatalogError(f"{where}: requirement {ref} names parent {parent}, which is not listed before it")
        rules = list(item.get("rules") or [])
        unknown = [r for r in rules if r not in RULES]
        if unknown:
            raise CatalogError(f"{where}: requirement {ref} names unknown rules {', '.join(unknown)}")
        seen.add(ref)
        requirements.append(
            {
                "ref": ref,
                "title": str(item["title"]),
                "text": str(item.get("text") or "").strip(),
                "parent_ref": parent,
                "position": position,
                "rules": rules,
                "note": str(item.get("note") or "").strip(),
            }
        )
    if not any(r["rules"] for r in requirements):
        raise CatalogError(f"{where}: no requirement has an evidence rule")
    return {
        "framework": framework,
        "requirements": requirements,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "file": path.name,
    }


def load_catalogs(paths: list[Path] | None = None) -> dict[str, dict[str, int]]:
    """Load every catalog file (idempotent). Returns per framework code the rows created, updated, removed."""
    from compliance.models import Framework, Requirement

    counts: dict[str, dict[str, int]] = {}
    catalogs = [read_catalog(p) for p in (paths or catalog_files())]
    with transaction.atomic():
        for catalog in catalogs:
            spec = catalog["framework"]
            count = {"created": 0, "updated": 0, "removed": 0}
            values = {
                "name": spec["name"],
                "version": str(spec["version"]),
                "publisher": spec["publisher"],
                "source": spec["source"],
                "source_url": spec["source_url"] or "",
                "licence": spec["licence"],
                "catalog_file": catalog["file"],
                "catalog_sha256": catalog["sha256"],
            }
            framework = _upsert(Framework, {"code": spec["code"]}, values, count)
            wanted = {r["ref"] for r in catalog["requirements"]}
            for item in catalog["requirements"]:
                fields = {k: v for k, v in item.items() if k != "ref"}
                _upsert(Requirement, {"framework": framework, "ref": item["ref"]}, fields, count)
            for gone in Requirement.objects.filter(framework=framework).exclude(ref__in=wanted):
                before = audit.snapshot(gone)
                pk = gone.pk
                gone.delete()
                gone.pk = pk
                audit.record(AuditAction.DELETE, gone, auth_method=AuthMethod.CLI, before=before)
                count["removed"] += 1
            counts[spec["code"]] = count
    return counts


def _upsert(model: Any, lookup: dict[str, Any], values: dict[str, Any], count: dict[str, int]) -> Any:
    obj = model.objects.filter(**lookup).first()
    if obj is None:
        obj = model.objects.create(**lookup, **values)
        audit.record(AuditAction.CREATE, obj, auth_method=AuthMethod.CLI, after=audit.snapshot(obj))
        count["created"] += 1
    elif any(getattr(obj, k) != v for k, v in values.items()):
        before = audit.snapshot(obj)
        for key, value in values.items():
            setattr(obj, key, value)
        obj.save()
        audit.record(AuditAction.UPDATE, obj, auth_method=AuthMethod.CLI, before=before, after=audit.snapshot(obj))
        count["updated"] += 1
    return obj


def ensure_catalogs() -> None:
    """Load the catalogs if a framework is missing or its file changed since it was loaded (cheap check)."""
    from compliance.models import Framework

    stored = dict(Framework.objects.values_list("code", "catalog_sha256"))
    for path in catalog_files():
        if stored.get(path.stem) != hashlib.sha256(path.read_bytes()).hexdigest():
            load_catalogs()
            return
