from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.forms import BaseModelForm
from django.http import HttpRequest

from analytics.models import (
    ActionItem,
    BusinessProcess,
    DRTestResult,
    ImpactAnalysis,
    RTOTarget,
    TestFinding,
    TestParticipant,
)
from core.admin_mixins import AuditedModelAdmin, human_duration
from plans import costs
from plans.choices import ComplianceFramework


@admin.register(RTOTarget)
class RTOTargetAdmin(AuditedModelAdmin):
    list_display = (
        "application",
        "tier",
        "rto_target",
        "rpo_target",
        "current_rto",
        "availability_target_percent",
        "current_availability_percent",
        "trend",
        "breach_count",
        "updated_at",
    )
    list_filter = ("tier", "trend")
    list_select_related = ("application",)
    search_fields = ("application__slug", "application__name")
    autocomplete_fields = ("application",)
    readonly_fields = ("updated_at",)

    @admin.display(description="RTO target", ordering="rto_target_seconds")
    def rto_target(self, target: RTOTarget) -> str:
        return human_duration(target.rto_target_seconds)

    @admin.display(description="RPO target", ordering="rpo_target_seconds")
    def rpo_target(self, target: RTOTarget) -> str:
        return human_duration(target.rpo_target_seconds)

    @admin.display(description="current RTO", ordering="current_rto_seconds")
    def current_rto(self, target: RTOTarget) -> str:
        return human_duration(target.current_rto_seconds)


class TestFindingInline(admin.TabularInline):
    model = TestFinding
    extra = 0


class TestParticipantInline(admin.TabularInline):
    model = TestParticipant
    raw_id_fields = ("user",)
    extra = 0


class ActionItemInline(admin.TabularInline):
    model = ActionItem
    extra = 0


@admin.register(DRTestResult)
class DRTestResultAdmin(AuditedModelAdmin):
    list_display = (
        "plan",
        "test_date",
        "test_type",
        "outcome",
        "target_rto",
        "actual_rto",
        "rto_met",
        "target_rpo",
        "actual_rpo",
        "rpo_met",
    )
    list_filter = ("outcome", "test_type", "plan")
    list_select_related = ("plan",)
    search_fields = ("plan__plan_id", "plan__name", "summary", "lessons_learned")
    date_hierarchy = "test_date"
    autocomplete_fields = ("plan",)
    raw_id_fields = ("execution",)
    readonly_fields = ("recorded_by", "created_at")
    inlines = (TestFindingInline, TestParticipantInline, ActionItemInline)

    @admin.display(description="target RTO", ordering="target_rto_seconds")
    def target_rto(self, result: DRTestResult) -> str:
        return human_duration(result.target_rto_seconds)

    @admin.display(description="actual RTO", ordering="actual_rto_seconds")
    def actual_rto(self, result: DRTestResult) -> str:
        return human_duration(result.actual_rto_seconds)

    @admin.display(description="RTO met", boolean=True)
    def rto_met(self, result: DRTestResult) -> bool | None:
        return result.rto_met

    @admin.display(description="target RPO", ordering="target_rpo_seconds")
    def target_rpo(self, result: DRTestResult) -> str:
        return human_duration(result.target_rpo_seconds)

    @admin.display(description="actual RPO", ordering="actual_rpo_seconds")
    def actual_rpo(self, result: DRTestResult) -> str:
        return human_duration(result.actual_rpo_seconds)

    @admin.display(description="RPO met", boolean=True)
    def rpo_met(self, result: DRTestResult) -> bool | None:
        return result.rpo_met

    def save_model(self, request: HttpRequest, obj: DRTestResult, form: BaseModelForm, change: bool) -> None:
        if not change and obj.recorded_by_id is None:
            obj.recorded_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(TestFinding)
class TestFindingAdmin(AuditedModelAdmin):
    list_display = ("short_description", "test_result", "severity", "category")
    list_filter = ("severity", "category")
    list_select_related = ("test_result__plan",)
    search_fields = ("description", "remediation", "test_result__plan__plan_id")
    autocomplete_fields = ("test_result",)

    @admin.display(description="finding")
    def short_description(self, finding: TestFinding) -> str:
        return finding.description[:80]


@admin.register(TestParticipant)
class TestParticipantAdmin(AuditedModelAdmin):
    list_display = ("name", "role", "user", "test_result")
    list_select_related = ("test_result__plan", "user")
    search_fields = ("name", "role", "user__username", "test_result__plan__plan_id")
    autocomplete_fields = ("test_result",)
    raw_id_fields = ("user",)


@admin.register(ActionItem)
class ActionItemAdmin(AuditedModelAdmin):
    list_display = ("short_description", "assignee", "due_date", "status", "test_result")
    list_filter = ("status",)
    list_select_related = ("test_result__plan",)
    list_editable = ("status",)
    search_fields = ("description", "assignee", "test_result__plan__plan_id")
    date_hierarchy = "due_date"
    autocomplete_fields = ("test_result",)

    @admin.display(description="action item")
    def short_description(self, item: ActionItem) -> str:
        return item.description[:80]


@admin.register(ImpactAnalysis)
class ImpactAnalysisAdmin(AuditedModelAdmin):
    list_display = (
        "scenario",
        "plan",
        "revenue_per_hour",
        "downtime_cost_24h",
        "affected_customers",
        "brand_damage",
        "estimated_fines",
        "updated_at",
    )
    list_filter = ("customer_sentiment", "media_exposure", "brand_damage")
    list_select_related = ("plan",)
    search_fields = ("scenario", "description", "plan__plan_id", "plan__name")
    autocomplete_fields = ("plan",)
    readonly_fields = ("created_by", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("plan", "scenario", "description")}),
        (
            "Financial",
            {
                "fields": (
                    "revenue_per_hour",
                    "downtime_cost_1h",
                    "downtime_cost_4h",
                    "downtime_cost_24h",
                    "recovery_cost",
                )
            },
        ),
        (
            "Operational",
            {"fields": ("affected_processes", "critical_processes", "affected_employees", "affected_customers")},
        ),
        ("Reputation", {"fields": ("customer_sentiment", "media_exposure", "brand_damage", "customer_churn_percent")}),
        ("Regulatory", {"fields": ("regulatory_frameworks", "potential_violations", "estimated_fines")}),
        (
            "Computed from (POST /impact-analysis)",
            {"fields": ("scenario_at", "reputation_score", "inputs", "breakdown"), "classes": ("collapse",)},
        ),
        ("Record", {"fields": ("created_by", "created_at", "updated_at"), "classes": ("collapse",)}),
    )

    def save_model(self, request: HttpRequest, obj: ImpactAnalysis, form: BaseModelForm, change: bool) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class BusinessProcessForm(forms.ModelForm):
    """The cost curve and weekly profile are checked as the API checks them (plans/costs.py)."""

    class Meta:
        model = BusinessProcess
        fields = [
            "name",
            "description",
            "owner",
            "criticality",
            "revenue_per_hour",
            "employees",
            "customers",
            "regulatory_frameworks",
            "applications",
            "cost_curve",
            "weekly_profile",
        ]

    def _checked(self, name: str, check: Any) -> Any:
        try:
            return check(self.cleaned_data.get(name) or [], name)
        except costs.CostModelError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_cost_curve(self) -> Any:
        return self._checked("cost_curve", costs.validate_curve)

    def clean_weekly_profile(self) -> Any:
        return self._checked("weekly_profile", costs.validate_profile)

    def clean_regulatory_frameworks(self) -> Any:
        value = self.cleaned_data.get("regulatory_frameworks") or []
        known = set(ComplianceFramework.values)
        if not isinstance(value, list) or any(code not in known for code in value):
            raise forms.ValidationError(f"A list of framework codes: {', '.join(sorted(known))}.")
        return value


@admin.register(BusinessProcess)
class BusinessProcessAdmin(AuditedModelAdmin):
    form = BusinessProcessForm
    list_display = ("name", "criticality", "revenue_per_hour", "employees", "customers", "updated_at")
    list_filter = ("criticality",)
    search_fields = ("name", "description", "owner")
    filter_horizontal = ("applications",)
    readonly_fields = ("created_at", "updated_at")


# Alerts and notifications (analytics/notifications/admin.py registers its models).
from analytics.monitoring import admin as monitoring_admin  # noqa: E402, F401  (registers monitors and violations)
from analytics.notifications import admin as notifications_admin  # noqa: E402, F401
