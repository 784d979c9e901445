"""Compliance in the admin: the catalogs as loaded, and the generated reports (read-only: a report is made by
POST /api/v1/dr/compliance-reports from the platform's records, never typed in). The report list shows the
signing certificate's fingerprint."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from compliance.choices import RequirementStatus
from compliance.models import (
    ComplianceReport,
    ComplianceReportPlan,
    ComplianceRequirement,
    Framework,
    IssuedPdf,
    Requirement,
)
from core.admin_mixins import AuditedModelAdmin, ReadOnlyAdminMixin, ReadOnlyInlineMixin


class RequirementInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Requirement
    fields = ("ref", "title", "parent_ref", "rules", "note")
    show_change_link = False


@admin.register(Framework)
class FrameworkAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("code", "name", "version", "publisher", "loaded_at")
    search_fields = ("code", "name")
    inlines = (RequirementInline,)


@admin.register(Requirement)
class RequirementAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("ref", "title", "framework")
    list_filter = ("framework",)
    search_fields = ("ref", "title", "text")


class ComplianceRequirementInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = ComplianceRequirement
    fields = ("requirement_id", "title", "status", "evidence", "gaps")
    show_change_link = False


class ScopeInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = ComplianceReportPlan
    fields = ("plan",)
    show_change_link = False


@admin.register(ComplianceReport)
class ComplianceReportAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = (
        "__str__",
        "framework",
        "period_start",
        "period_end",
        "overall_status",
        "tests",
        "requirements_met",
        "attested_by",
        "attested_at",
    )
    list_filter = ("framework", "overall_status")
    list_select_related = ("attested_by",)
    search_fields = ("summary", "scope_links__plan__plan_id")
    date_hierarchy = "period_end"
    exclude = ("content",)
    inlines = (ScopeInline, ComplianceRequirementInline)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        """The list says which certificate signs attested reports (on the embedded default, the self-signed one
        generated on first use): an auditor compares its fingerprint with the one a verified PDF shows."""
        from core.signing import summary

        try:
            subtitle = "Reports are signed with the " + summary()
        except Exception as exc:  # a misconfigured key must not hide the list
            subtitle = f"Signing identity unavailable: {exc}"
        return super().changelist_view(request, {**(extra_context or {}), "subtitle": subtitle})

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _requirements=Count("requirements", distinct=True),
                _met=Count("requirements", filter=Q(requirements__status=RequirementStatus.MET), distinct=True),
            )
        )

    @admin.display(description="tests passed / performed / required")
    def tests(self, report: ComplianceReport) -> str:
        return f"{report.tests_passed} / {report.tests_performed} / {report.tests_required}"

    @admin.display(description="requirements met")
    def requirements_met(self, report: ComplianceReport) -> str:
        return f"{report._met} / {report._requirements}"


@admin.register(ComplianceRequirement)
class ComplianceRequirementAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("requirement_id", "title", "status", "report")
    list_filter = ("status", "report__framework")
    list_select_related = ("report",)
    search_fields = ("requirement_id", "title", "evidence", "gaps")


@admin.register(ComplianceReportPlan)
class ComplianceReportPlanAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("report", "plan")
    list_select_related = ("report", "plan")


@admin.register(IssuedPdf)
class IssuedPdfAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("report", "signed_at", "size", "sha256", "signer_subject", "signer_fingerprint")
    exclude = ("pdf",)
    readonly_fields = ("report", "sha256", "size", "signed_at", "signer_subject", "signer_fingerprint")
