"""Reused reads for runbooks and their versions."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from runbooks.choices import VersionStatus
from runbooks.models import Runbook, RunbookStep, RunbookVersion

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?")


def semver_key(version: str) -> tuple:
    """Sort key: 1.2.0-rc1 < 1.2.0 < 1.10.0. Unparseable strings sort first."""
    match = _SEMVER.match(version)
    if not match:
        return (-1, -1, -1, 0, version)
    major, minor, patch, pre = match.groups()
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre or "")


def latest(versions: Iterable[RunbookVersion]) -> RunbookVersion | None:
    """The highest semantic version (ties: the most recently created)."""
    return max(versions, key=lambda v: (semver_key(v.version), v.pk), default=None)


def latest_version(runbook: Runbook) -> RunbookVersion | None:
    return latest(runbook.versions.all())


def default_export_version(runbook: Runbook) -> RunbookVersion | None:
    """The latest approved version, else the latest version."""
    versions = list(runbook.versions.all())
    return latest(v for v in versions if v.status == VersionStatus.APPROVED) or latest(versions)


def get_version(runbook: Runbook, version: str) -> RunbookVersion:
    found = (
        RunbookVersion.objects.filter(runbook=runbook, version=version)
        .select_related("runbook", "runbook__application")
        .first()
    )
    if found is None:
        raise Http404(f"Runbook {runbook.slug} has no version {version!r}.")
    return found


def get_runbook(id_or_slug: str | int) -> Runbook:
    """By numeric id or slug."""
    text = str(id_or_slug)
    lookup = {"pk": int(text)} if text.isdigit() else {"slug": text}
    found = Runbook.objects.filter(**lookup).select_related("application").first()
    if found is None:
        raise Http404(f"No runbook {text!r}.")
    return found


def runbooks_with_versions() -> QuerySet[Runbook]:
    return Runbook.objects.select_related("application").prefetch_related(
        Prefetch("versions", queryset=RunbookVersion.objects.only("id", "runbook_id", "version", "status"))
    )


def version_detail_queryset() -> QuerySet[RunbookVersion]:
    return RunbookVersion.objects.select_related("runbook", "runbook__application", "created_by").prefetch_related(
        "parameters",
        "approval_levels",
        "decisions__user",
        Prefetch("steps", queryset=RunbookStep.objects.order_by("number").prefetch_related("needs")),
    )
