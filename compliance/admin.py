from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from compliance.choices import RequirementStatus
from compliance.models import ComplianceReport, ComplianceRequirement
from core.admin_mixins import AuditedModelAdmin


class ComplianceRequirementInline(admin.TabularInline):
    model = ComplianceRequirement
    fields = ("requirement_id", "title", "status", "evidence", "gaps")
    extra = 0


@admin.register(ComplianceReport)
class ComplianceReportAdmin(AuditedModelAdmin):
    list_display = (
        "__str__",
        "framework",
        "plan",
        "period_start",
        "period_end",
        "overall_status",
        "tests",
        "requirements_met",
        "attested_by",
        "generated_at",
    )
    list_filter = ("framework", "overall_status")
    list_select_related = ("plan", "attested_by")
    search_fields = ("summary", "plan__plan_id", "plan__name")
    date_hierarchy = "period_end"
    autocomplete_fields = ("plan",)
    raw_id_fields = ("attested_by",)
    readonly_fields = ("generated_at",)
    inlines = (ComplianceRequirementInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _requirements=Count("requirements"),
                _met=Count("requirements", filter=Q(requirements__status=RequirementStatus.MET)),
            )
        )

    @admin.display(description="tests passed / performed / required")
    def tests(self, report: ComplianceReport) -> str:
        return f"{report.tests_passed} / {report.tests_performed} / {report.tests_required}"

    @admin.display(description="requirements met")
    def requirements_met(self, report: ComplianceReport) -> str:
        return f"{report._met} / {report._requirements}"


@admin.register(ComplianceRequirement)
class ComplianceRequirementAdmin(AuditedModelAdmin):
    list_display = ("requirement_id", "title", "status", "report")
    list_filter = ("status", "report__framework")
    list_select_related = ("report",)
    search_fields = ("requirement_id", "title", "evidence", "gaps")
    raw_id_fields = ("report",)
