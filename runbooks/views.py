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
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

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


# --- The template library (/runbooks/templates/) -------------------------------------


def _catalogue(request: HttpRequest, *, error: Any = None, form: dict[str, Any] | None = None, status: int = 200):
    from core.models import Secret
    from plans.models import Application
    from runbooks import library
    from runbooks.api.template_views import template_data

    can_use = request.user.has_perm(ADD)
    groups: dict[str, list[dict[str, Any]]] = {label: [] for label in library.STRATEGIES.values()}
    for template in library.all_templates():
        groups[template.strategy_label].append(template_data(template))
    context = {
        "groups": [(label, items) for label, items in groups.items() if items],
        "can_use": can_use,
        "secret_names": list(Secret.objects.order_by("name").values_list("name", flat=True)) if can_use else [],
        "applications": list(Application.objects.order_by("slug").values_list("slug", "name")) if can_use else [],
        "error": error,
        "form": form or {},
    }
    return render(request, "runbooks/templates.html", context, status=status)


@login_required
def template_catalogue(request: HttpRequest) -> HttpResponse:
    """Every template of the library: its strategy, what it ran against, its last verified run; authors get a
    "use template" form (new runbook slug, application, the template's secrets bound to their own)."""
    if not request.user.has_perm(VIEW):
        raise PermissionDenied("You need the runbooks.view_runbook permission.")
    return _catalogue(request)


@login_required
@require_POST
def template_use(request: HttpRequest, slug: str) -> HttpResponse:
    """POST from the catalogue: a draft runbook from the template (runbooks.library.use_template), then its
    builder page. A refused input re-renders the catalogue with the message naming the field (400)."""
    from core import audit
    from core.exceptions import DomainError
    from runbooks import library

    if not request.user.has_perm(ADD):
        raise PermissionDenied("You need the runbooks.add_runbook permission to create runbooks.")
    template = library.get_template(slug) if slug in {t.slug for t in library.all_templates()} else None
    if template is None:
        raise Http404(f"No runbook template {slug!r}.")
    secrets = {name: request.POST.get(f"secret-{name}", "") for name in template.secrets}
    form = {"template": slug, "slug": request.POST.get("slug", ""), "application": request.POST.get("application", "")}
    try:
        version = library.use_template(
            slug,
            runbook_slug=form["slug"].strip(),
            application=form["application"] or None,
            secrets={name: value for name, value in secrets.items() if value},
            actor=request.user,
            auth_method=audit.auth_method_of(request),
        )
    except DomainError as exc:
        return _catalogue(
            request,
            error={"template": slug, "message": exc.message, "field": exc.field},
            form=form,
            status=409 if exc.status_code == 409 else 400,
        )
    return redirect("runbook-builder", slug=version.runbook.slug)
