"""Runbooks in the admin.

Versions pending approval, approved or superseded are frozen: their content is
evidence of what was approved, so the admin shows them (and their parameters,
steps and approval levels) read-only. Status changes and approval decisions go
through runbooks.services (the API), never through admin forms.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, Field, QuerySet
from django.forms import BaseModelForm
from django.http import HttpRequest

from core.admin_mixins import AuditedModelAdmin, ReadOnlyAdminMixin, ReadOnlyInlineMixin, human_duration
from runbooks.choices import FROZEN_STATUSES
from runbooks.models import ApprovalLevel, Runbook, RunbookApproval, RunbookParameter, RunbookStep, RunbookVersion


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
    readonly_fields = ("status", "content_hash", "created_by", "created_at", "submitted_at", "approved_at")
    inlines = (RunbookParameterInline, RunbookStepInline, ApprovalLevelInline, RunbookApprovalInline)

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
