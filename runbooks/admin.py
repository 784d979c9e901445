"""Runbooks in the admin.

Versions pending approval, approved or superseded are frozen: their content is
evidence of what was approved, so the admin shows them (and their parameters,
steps and approval levels) read-only. Status changes and approval decisions go
through runbooks.services, never through admin forms: the version's "approval" page
(and the list actions "submit" / "approve") call the same service functions as the API,
so the rules hold here too (distinct approvers, never the author, levels in order) and
each decision is audited by the service in its transaction.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Field, QuerySet
from django.forms import BaseModelForm
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
from runbooks.models import ApprovalLevel, Runbook, RunbookApproval, RunbookParameter, RunbookStep, RunbookVersion

SUBMIT_PERMISSION = "runbooks.change_runbook"  # as the API's submit action


def is_frozen(version: RunbookVersion | None) -> bool:
    return version is not None and version.status in FROZEN_STATUSES


class FrozenVersionInlineMixin:
    """Inline rows of a version: editable only while the version is a draft (or rejected)."""

    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: RunbookVersion | None = None) -> bool:
        return not is_frozen(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: RunbookVersion | None = None) -> bool:
        return not is_frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: RunbookVersion | None = None) -> bool:
        return not is_frozen(obj) and super().has_delete_permission(request, obj)


class FrozenChildAdmin(AuditedModelAdmin):
    """Standalone admin for a row belonging to a version: read-only once the version is frozen."""

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return not (obj is not None and is_frozen(obj.version)) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return not (obj is not None and is_frozen(obj.version)) and super().has_delete_permission(request, obj)

    def formfield_for_foreignkey(self, db_field: Field, request: HttpRequest, **kwargs: Any) -> forms.Field | None:
        if db_field.name == "version":
            kwargs["queryset"] = RunbookVersion.objects.exclude(status__in=FROZEN_STATUSES).select_related("runbook")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class RunbookVersionInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = RunbookVersion
    fields = ("version", "status", "created_by", "created_at", "approved_at")
    readonly_fields = fields
    ordering = ("-created_at",)


@admin.register(Runbook)
class RunbookAdmin(AuditedModelAdmin):
    list_display = ("slug", "name", "category", "application", "version_count", "updated_at")
    list_filter = ("category",)
    list_select_related = ("application",)
    search_fields = ("slug", "name", "application__slug", "application__name")
    autocomplete_fields = ("application",)
    readonly_fields = ("created_by", "created_at", "updated_at")
    inlines = (RunbookVersionInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(_versions=Count("versions"))

    @admin.display(description="versions", ordering="_versions")
    def version_count(self, runbook: Runbook) -> int:
        return runbook._versions

    def save_model(self, request: HttpRequest, obj: Runbook, form: BaseModelForm, change: bool) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class RunbookParameterInline(FrozenVersionInlineMixin, admin.TabularInline):
    model = RunbookParameter
    fields = ("order", "name", "type", "default", "secret", "description")


class RunbookStepInline(FrozenVersionInlineMixin, admin.StackedInline):
    model = RunbookStep
    fields = (
        ("number", "step_id", "title"),
        ("action", "timeout_seconds", "retries", "estimated_duration_seconds"),
        "description",
        "params",
        "needs",
        ("rollback", "approval"),
        ("responsible_role", "automated", "idempotent", "continue_on_failure"),
    )
    filter_horizontal = ("needs",)

    def get_formset(self, request: HttpRequest, obj: RunbookVersion | None = None, **kwargs: Any) -> type:
        formset = super().get_formset(request, obj, **kwargs)
        needs = formset.form.base_fields.get("needs")
        if needs is not None:
            # A step may only need steps of the same version.
            needs.queryset = RunbookStep.objects.filter(version=obj) if obj else RunbookStep.objects.none()
        return formset


class ApprovalLevelInline(FrozenVersionInlineMixin, admin.TabularInline):
    model = ApprovalLevel
    fields = ("level", "role", "min_approvers", "required")


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
    list_display = ("__str__", "runbook", "version", "status", "step_count", "created_by", "created_at", "approved_at")
    list_filter = ("status", "runbook__category")
    list_select_related = ("runbook", "created_by")
    search_fields = ("version", "description", "runbook__slug", "runbook__name")
    date_hierarchy = "created_at"
    autocomplete_fields = ("runbook",)
    readonly_fields = (
        "status",
        "approval",
        "content_hash",
        "created_by",
        "created_at",
        "submitted_at",
        "approved_at",
    )
    inlines = (RunbookParameterInline, RunbookStepInline, ApprovalLevelInline, RunbookApprovalInline)
    actions = ("submit_selected", "approve_selected")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(_steps=Count("steps"))

    @admin.display(description="steps", ordering="_steps")
    def step_count(self, version: RunbookVersion) -> int:
        return version._steps

    def has_change_permission(self, request: HttpRequest, obj: RunbookVersion | None = None) -> bool:
        return not is_frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: RunbookVersion | None = None) -> bool:
        return not is_frozen(obj) and super().has_delete_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        # Bulk delete from the list must not remove frozen versions either.
        super().delete_queryset(request, queryset.exclude(status__in=FROZEN_STATUSES))

    def save_model(self, request: HttpRequest, obj: RunbookVersion, form: BaseModelForm, change: bool) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

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


@admin.register(RunbookParameter)
class RunbookParameterAdmin(FrozenChildAdmin):
    list_display = ("name", "version", "type", "secret", "order")
    list_filter = ("type", "secret")
    list_select_related = ("version__runbook",)
    search_fields = ("name", "description", "version__runbook__slug")
    raw_id_fields = ("version",)


@admin.register(RunbookStep)
class RunbookStepAdmin(FrozenChildAdmin):
    list_display = ("step_id", "number", "title", "version", "action", "automated", "estimated")
    list_filter = ("action", "automated", "idempotent", "continue_on_failure")
    list_select_related = ("version__runbook",)
    search_fields = ("step_id", "title", "description", "version__runbook__slug")
    raw_id_fields = ("version", "needs")

    @admin.display(description="estimated duration", ordering="estimated_duration_seconds")
    def estimated(self, step: RunbookStep) -> str:
        return human_duration(step.estimated_duration_seconds)


@admin.register(ApprovalLevel)
class ApprovalLevelAdmin(FrozenChildAdmin):
    list_display = ("version", "level", "role", "min_approvers", "required")
    list_filter = ("role", "required")
    list_select_related = ("version__runbook",)
    search_fields = ("role", "version__runbook__slug")
    raw_id_fields = ("version",)


@admin.register(RunbookApproval)
class RunbookApprovalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Approval decisions are evidence: view only."""

    list_display = ("version", "level", "user", "decision", "decided_at")
    list_filter = ("decision", "level")
    list_select_related = ("version__runbook", "user")
    search_fields = ("version__runbook__slug", "user__username", "comment")
    date_hierarchy = "decided_at"
