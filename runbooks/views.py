"""The visual runbook builder pages (/builder/runbooks/new/ and /builder/runbooks/<slug>/).

Server-rendered shell plus static JS (runbooks/static/runbooks/). Every change the page makes goes
through the REST API with the session cookie and CSRF token, so the API's permissions and rules
apply: these views only decide what to show (editable or read-only) and hand the page its data.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from core.admin_mixins import human_duration
from core.exceptions import InvalidInput
from runbooks import documents, selectors, services
from runbooks.choices import ImportFormat, RunbookCategory, VersionStatus
from runbooks.models import Runbook, RunbookImport, RunbookVersion

ADD = "runbooks.add_runbook"  # POST …/runbooks/import and …/runbooks/{id}/versions
CHANGE = "runbooks.change_runbook"  # POST …/versions/{version}/submit
VIEW = "runbooks.view_runbook"

STARTER_DOCUMENT: dict[str, Any] = {
    "name": "",
    "slug": "",
    "version": "1.0.0",
    "category": RunbookCategory.FAILOVER,
    "description": "",
    "application": None,
    "parameters": {},
    "parallelism": None,
    "approvals": [{"level": 1, "role": "approver", "required": True, "approvers": 1}],
    "steps": [],
}


def _next_version(runbook: Runbook) -> str:
    """The patch after the highest version, skipping numbers already taken."""
    versions = list(runbook.versions.all())
    taken = {v.version for v in versions}
    highest = selectors.latest(versions)
    if highest is None:
        return "1.0.0"
    try:
        candidate = services.bump_patch(highest.version)
        while candidate in taken:
            candidate = services.bump_patch(candidate)
    except InvalidInput:
        return ""
    return candidate


def _config(request: HttpRequest, runbook: Runbook | None, version: RunbookVersion | None) -> dict[str, Any]:
    user = request.user
    doc = documents.document_from_version(version) if version is not None else dict(STARTER_DOCUMENT)
    steps, seconds = selectors.critical_path(doc)
    api = "/api/v1/dr/runbooks"
    key = runbook.slug if runbook is not None else ""
    return {
        "mode": "edit" if runbook is not None else "new",
        "runbook": (
            {"id": runbook.pk, "slug": runbook.slug, "name": version.name if version is not None else runbook.slug}
            if runbook is not None
            else None
        ),
        "version": (
            {"version": version.version, "status": version.status, "status_display": version.get_status_display()}
            if version is not None
            else None
        ),
        "next_version": _next_version(runbook) if runbook is not None else "1.0.0",
        "doc": doc,
        "can_edit": user.has_perm(ADD),
        "can_submit": user.has_perm(CHANGE),
        "actions": selectors.action_catalogue(),
        "categories": [{"value": value, "label": label} for value, label in RunbookCategory.choices],
        "import_formats": [[value, label] for value, label in ImportFormat.choices if value != ImportFormat.DRPLAN],
        "server_critical_path": {"steps": steps, "seconds": seconds, "human": human_duration(seconds)},
        "urls": {
            "import": f"{api}/import",
            "versions": f"{api}/{key}/versions" if key else "",
            "version_base": f"{api}/{key}/versions/" if key else "",
            "export": f"{api}/{key}/export" if key else "",
            "builder": "/builder/runbooks/",
        },
    }


@login_required
def builder_new(request: HttpRequest) -> HttpResponse:
    """An empty builder; only for users who may create runbooks."""
    if not request.user.has_perm(ADD):
        raise PermissionDenied("You need the runbooks.add_runbook permission to create runbooks.")
    context = {"config": _config(request, None, None), "runbook": None, "version": None, "versions": []}
    return render(request, "runbooks/builder.html", context)


@login_required
def builder_edit(request: HttpRequest, slug: str) -> HttpResponse:
    """A runbook's latest version (or ?version=X) in the builder: editable for authors, read-only otherwise."""
    if not request.user.has_perm(VIEW):
        raise PermissionDenied("You need the runbooks.view_runbook permission.")
    runbook = Runbook.objects.filter(slug=slug).first()
    if runbook is None:
        raise Http404(f"No runbook {slug!r}.")
    versions = sorted(runbook.versions.all(), key=lambda v: (selectors.semver_key(v.version), v.pk), reverse=True)
    wanted = request.GET.get("version")
    shown = [v for v in versions if v.version == wanted] if wanted else versions
    version = shown[0] if shown else None
    if wanted and version is None:
        raise Http404(f"Runbook {slug!r} has no version {wanted!r}.")
    approvals = selectors.approval_overview(version, request.user) if version is not None else None
    context = {
        "config": _config(request, runbook, version),
        "runbook": runbook,
        "version": version,
        "versions": versions,
        "approvals": approvals,
        "import_record": RunbookImport.objects.filter(version=version).first() if version is not None else None,
        "can_edit": request.user.has_perm(ADD),
        "can_submit": request.user.has_perm(CHANGE) and version is not None and version.status == VersionStatus.DRAFT,
    }
    return render(request, "runbooks/builder.html", context)
