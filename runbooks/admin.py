"""Runbooks in the admin: a read-only view of runbooks, versions and their content, plus approvals.

Runbook content is written in one place, the document services behind the builder, the API and the
CLI (runbooks.services): they validate the whole document and record who contributed to a version,
which the separation-of-duties rule needs (nobody approves a version they created, edited or
submitted). The admin therefore never edits steps, parameters or approval levels. Status changes and
approval decisions go through the same services: the version's "approval" page (and the list
actions "submit" / "approve") call them, so the rules hold here too, each decision audited by the
service in its transaction.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from core.admin_mixins import AuditedModelAdmin, ReadOnlyAdminMixin, ReadOnlyInlineMixin, human_duration
from core.choices import AuthMethod
from core.exceptions import DomainError, InvalidInput
from runbooks import selectors, services
from runbooks.choices import FROZEN_STATUSES, Decision, VersionStatus
from runbooks.models import (
    ApprovalLevel,
    Runbook,
    RunbookApproval,
    RunbookImport,
    RunbookParameter,
    RunbookStep,
    RunbookVersion,
)

SUBMIT_PERMISSION = "runbooks.change_runbook"  # as the API's submit action


class RunbookVersionInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = RunbookVersion
    fields = ("version", "status", "name", "category", "application", "created_by", "created_at", "approved_at")
    readonly_fields = fields
    ordering = ("-created_at",)


@admin.register(Runbook)
class RunbookAdmin(AuditedModelAdmin):
    """Runbooks are created by importing or building a document; here they are listed, and a runbook
    whose versions were never submitted can be deleted."""

    list_display = ("slug", "current_name", "current_category", "application_slug", "version_count")
    search_fields = ("slug", "name", "application_slug")
    readonly_fields = ("slug", "created_by", "created_at", "updated_at")
    inlines = (RunbookVersionInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.with_current_version(super().get_queryset(request)).annotate(
            _versions=Count("versions", distinct=True)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Runbook | None = None) -> bool:
        return False

    @admin.display(description="name", ordering="name")
    def current_name(self, runbook: Runbook) -> str:
        return runbook.name or "—"

    @admin.display(description="category", ordering="category")
    def current_category(self, runbook: Runbook) -> str:
        return runbook.category or "—"

    @admin.display(description="application", ordering="application_slug")
    def application_slug(self, runbook: Runbook) -> str:
        return runbook.application_slug or "—"

    @admin.display(description="versions", ordering="_versions")
    def version_count(self, runbook: Runbook) -> int:
        return runbook._versions


class RunbookParameterInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = RunbookParameter
    fields = ("order", "name", "type", "default", "secret", "description")
    readonly_fields = fields
    show_change_link = False


class RunbookStepInline(ReadOnlyInlineMixin, admin.StackedInline):
    model = RunbookStep
    fields = (
        ("number", "step_id", "title"),
        ("action", "timeout_seconds", "retries", "estimated_duration_seconds"),
        "description",
        "params",
        ("rollback", "approval"),
        ("responsible_role", "automated", "idempotent", "continue_on_failure"),
    )
    readonly_fields = (
        "number",
        "step_id",
        "title",
        "action",
        "timeout_seconds",
        "retries",
        "estimated_duration_seconds",
        "description",
        "params",
        "rollback",
        "approval",
        "responsible_role",
        "automated",
        "idempotent",
        "continue_on_failure",
    )
    show_change_link = False


class ApprovalLevelInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = ApprovalLevel
    fields = ("level", "role", "min_approvers", "required")
    readonly_fields = fields
    show_change_link = False


class RunbookApprovalInline(ReadOnlyInlineMixin, admin.TabularInline):
    """Decisions are made through the approval service, never typed into a form."""

    model = RunbookApproval
    fields = ("level", "user", "decision", "comment", "decided_at")
    readonly_fields = fields
    show_change_link = False
    verbose_name = "decision"
    verbose_name_plural = "approval decisions"


@admin.register(RunbookVersion)
class RunbookVersionAdmin(AuditedModelAdmin):
    """Versions are read-only here (edit them in the builder or through the API); drafts can be deleted."""

    list_display = ("__str__", "name", "category", "application", "status", "step_count", "created_by", "approved_at")
    list_filter = ("status", "category")
    list_select_related = ("runbook", "application", "created_by")
    search_fields = ("version", "name", "description", "runbook__slug")
    date_hierarchy = "created_at"
    fields = (
        "runbook",
        "version",
        "name",
        "category",
        "application",
        "description",
        "parallelism",
        "status",
        "approval",
        "builder",
        "content_hash",
        "created_by",
        "contributor_names",
        "created_at",
        "submitted_at",
        "approved_at",
    )
    readonly_fields = fields
    inlines = (RunbookParameterInline, RunbookStepInline, ApprovalLevelInline, RunbookApprovalInline)
    actions = ("submit_selected", "approve_selected")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(_steps=Count("steps"))

    @admin.display(description="steps", ordering="_steps")
    def step_count(self, version: RunbookVersion) -> int:
        return version._steps

    @admin.display(description="contributors (may not approve)")
    def contributor_names(self, version: RunbookVersion) -> str:
        return ", ".join(sorted(u.get_username() for u in version.contributors.all())) or "—"

    @admin.display(description="edit")
    def builder(self, version: RunbookVersion) -> str:
        url = reverse("runbook-builder", args=[version.runbook.slug]) + f"?version={version.version}"
        return format_html('<a href="{}">Open in the runbook builder →</a>', url)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RunbookVersion | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RunbookVersion | None = None) -> bool:
        return (obj is None or _deletable(obj)) and super().has_delete_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        # Bulk delete from the list must not remove frozen or decided versions either.
        super().delete_queryset(request, queryset.exclude(status__in=FROZEN_STATUSES).filter(decisions__isnull=True))

    # --- Approvals through runbooks.services ------------------------------------------------

    @admin.display(description="approval")
    def approval(self, version: RunbookVersion) -> str:
        if version.pk is None:
            return "—"
        url = reverse("admin:runbooks_runbookversion_approval", args=[version.pk])
        return format_html('<a href="{}">Approval levels, decisions, submit / approve / reject →</a>', url)

    def has_submit_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(SUBMIT_PERMISSION)

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.APPROVE_PERMISSION)

    @admin.action(description="Submit selected drafts for approval", permissions=["submit"])
    def submit_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for version in queryset.select_related("runbook"):
            self._apply(request, version, "submit", "")

    @admin.action(description="Approve the current level of selected versions", permissions=["approve"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for version in queryset.select_related("runbook"):
            self._apply(request, version, Decision.APPROVE, "")

    def _apply(self, request: HttpRequest, version: RunbookVersion, what: str, comment: str) -> bool:
        """Submit, approve or reject one version through the services; report the outcome as a message."""
        try:
            if what == "submit":
                if not request.user.has_perm(SUBMIT_PERMISSION):
                    raise PermissionDenied
                services.submit_for_approval(version, request.user, auth_method=AuthMethod.SESSION)
            elif what in Decision.values:
                services.decide(version, request.user, what, comment, auth_method=AuthMethod.SESSION)
            else:
                raise InvalidInput(f"unknown decision {what!r}", field="decision")
        except DomainError as exc:
            self.message_user(request, f"{version}: {exc.message}", messages.ERROR)
            return False
        except PermissionDenied:
            self.message_user(request, f"{version}: you may not submit runbook versions.", messages.ERROR)
            return False
        version.refresh_from_db()
        verb = {"submit": "submitted for approval", Decision.APPROVE: "approved", Decision.REJECT: "rejected"}[what]
        self.message_user(
            request, f"{version}: {verb}; it is now {version.get_status_display().lower()}.", messages.SUCCESS
        )
        return True

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<path:object_id>/approval/",
                self.admin_site.admin_view(self.approval_view),
                name="runbooks_runbookversion_approval",
            )
        ]
        return custom + super().get_urls()

    def approval_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Levels and decisions of a version; POST decision=submit|approve|reject (+ comment)."""
        version = get_object_or_404(RunbookVersion.objects.select_related("runbook", "created_by"), pk=object_id)
        if not self.has_view_or_change_permission(request, version):
            raise PermissionDenied
        if request.method == "POST":
            self._apply(request, version, request.POST.get("decision", ""), request.POST.get("comment", ""))
            return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Approval of {version}",
            "version": version,
            "original": version,
            "approvals": selectors.approval_overview(version, request.user),
            "can_submit": version.status == VersionStatus.DRAFT and request.user.has_perm(SUBMIT_PERMISSION),
            "builder_url": reverse("runbook-builder", args=[version.runbook.slug]) + f"?version={version.version}",
        }
        return TemplateResponse(request, "runbooks/admin_approval.html", context)


def _deletable(version: RunbookVersion) -> bool:
    """A draft nobody decided on: it may be deleted (with its content rows)."""
    return version.status not in FROZEN_STATUSES and not version.decisions.exists()


class VersionContentAdmin(AuditedModelAdmin):
    """Rows of a version's content: viewed here, written only by the document services; deleted with a
    draft version (the delete confirmation asks for permission on every row it removes)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return (obj is None or _deletable(obj.version)) and super().has_delete_permission(request, obj)


@admin.register(RunbookParameter)
class RunbookParameterAdmin(VersionContentAdmin):
    list_display = ("name", "version", "type", "secret", "order")
    list_filter = ("type", "secret")
    list_select_related = ("version__runbook",)
    search_fields = ("name", "description", "version__runbook__slug")


@admin.register(RunbookStep)
class RunbookStepAdmin(VersionContentAdmin):
    list_display = ("step_id", "number", "title", "version", "action", "automated", "estimated")
    list_filter = ("action", "automated", "idempotent", "continue_on_failure")
    list_select_related = ("version__runbook",)
    search_fields = ("step_id", "title", "description", "version__runbook__slug")

    @admin.display(description="estimated duration", ordering="estimated_duration_seconds")
    def estimated(self, step: RunbookStep) -> str:
        return human_duration(step.estimated_duration_seconds)


@admin.register(ApprovalLevel)
class ApprovalLevelAdmin(VersionContentAdmin):
    list_display = ("version", "level", "role", "min_approvers", "required")
    list_filter = ("role", "required")
    list_select_related = ("version__runbook",)
    search_fields = ("role", "version__runbook__slug")


@admin.register(RunbookApproval)
class RunbookApprovalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Approval decisions are evidence: view only."""

    list_display = ("version", "level", "user", "decision", "decided_at")
    list_filter = ("decision", "level")
    list_select_related = ("version__runbook", "user")
    search_fields = ("version__runbook__slug", "user__username", "comment")
    date_hierarchy = "decided_at"


@admin.register(RunbookImport)
class RunbookImportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Where an imported version came from (the original document and the import report): provenance, view only."""

    list_display = ("version", "source_format", "filename", "original_sha256", "created_at")
    list_filter = ("source_format",)
    list_select_related = ("version__runbook",)
    search_fields = ("version__runbook__slug", "filename", "original_sha256")
    date_hierarchy = "created_at"
