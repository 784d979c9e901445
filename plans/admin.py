from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet, Sum
from django.forms import BaseModelForm
from django.http import HttpRequest

from core.admin_mixins import AuditedModelAdmin, human_duration
from core.exceptions import DomainError
from plans.models import (
    Application,
    ApplicationDependency,
    DRPlan,
    PlanApprovalLevel,
    RecoveryStrategy,
    Site,
    StrategyCondition,
    StrategyStep,
    ValidationCheck,
)
from plans.services import check_plan_sites, find_dependency_cycle


@admin.register(Site)
class SiteAdmin(AuditedModelAdmin):
    list_display = ("code", "name", "kind", "location", "application_count", "updated_at")
    list_filter = ("kind",)
    search_fields = ("code", "name", "location")
    readonly_fields = ("created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(_applications=Count("applications"))

    @admin.display(description="applications", ordering="_applications")
    def application_count(self, site: Site) -> int:
        return site._applications


def _cycle_message(cycle: list[Application]) -> str:
    return "This would create a dependency cycle: " + " → ".join(app.slug for app in cycle) + "."


class DependencyFormSet(forms.BaseInlineFormSet):
    """The same rule as the API: the dependency map must stay acyclic."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        targets = [
            form.cleaned_data["depends_on"]
            for form in self.forms
            if form.cleaned_data.get("depends_on") and not self._should_delete_form(form)
        ]
        cycle = find_dependency_cycle(self.instance, targets)
        if cycle:
            raise forms.ValidationError(_cycle_message(cycle))


class ApplicationDependencyForm(forms.ModelForm):
    class Meta:
        model = ApplicationDependency
        fields = ("application", "depends_on")

    def clean(self) -> dict:
        data = super().clean()
        application, depends_on = data.get("application"), data.get("depends_on")
        if application and depends_on:
            others = application.dependency_links.exclude(pk=self.instance.pk).select_related("depends_on")
            cycle = find_dependency_cycle(application, [link.depends_on for link in others] + [depends_on])
            if cycle:
                raise forms.ValidationError(_cycle_message(cycle))
        return data


class DRPlanForm(forms.ModelForm):
    class Meta:
        model = DRPlan
        fields = ("primary_site", "dr_site")  # the admin adds the fields of its fieldsets

    def clean(self) -> dict:
        data = super().clean()
        try:
            check_plan_sites(data.get("primary_site"), data.get("dr_site"))
        except DomainError as exc:
            self.add_error(exc.field, exc.message)
        return data


class ApplicationDependencyInline(admin.TabularInline):
    model = ApplicationDependency
    formset = DependencyFormSet
    fk_name = "application"
    autocomplete_fields = ("depends_on",)
    extra = 0
    verbose_name = "depends on"
    verbose_name_plural = "depends on (recovered first)"


@admin.register(Application)
class ApplicationAdmin(AuditedModelAdmin):
    list_display = ("slug", "name", "tier", "owner", "site", "dependency_count", "updated_at")
    list_filter = ("tier", "site")
    list_select_related = ("site",)
    search_fields = ("slug", "name", "owner", "owner_email")
    autocomplete_fields = ("site",)
    readonly_fields = ("created_at", "updated_at")
    inlines = (ApplicationDependencyInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(_dependencies=Count("dependency_links"))

    @admin.display(description="depends on", ordering="_dependencies")
    def dependency_count(self, application: Application) -> int:
        return application._dependencies


@admin.register(ApplicationDependency)
class ApplicationDependencyAdmin(AuditedModelAdmin):
    form = ApplicationDependencyForm
    list_display = ("application", "depends_on")
    list_select_related = ("application", "depends_on")
    search_fields = ("application__slug", "application__name", "depends_on__slug", "depends_on__name")
    autocomplete_fields = ("application", "depends_on")


class RecoveryStrategyInline(admin.TabularInline):
    model = RecoveryStrategy
    fields = ("name", "kind", "rollback_trigger")
    extra = 0
    show_change_link = True


class PlanApprovalLevelInline(admin.TabularInline):
    model = PlanApprovalLevel
    fields = ("level", "role", "min_approvers")
    extra = 0


@admin.register(DRPlan)
class DRPlanAdmin(AuditedModelAdmin):
    form = DRPlanForm
    list_display = ("plan_id", "name", "status", "strategy", "rto", "rpo", "failover_mode", "updated_at")
    list_filter = ("status", "strategy", "failover_mode", "replication_mode", "test_frequency", "compliance_status")
    search_fields = ("plan_id", "name", "description")
    date_hierarchy = "updated_at"
    filter_horizontal = ("applications", "sites")
    autocomplete_fields = ("primary_site", "dr_site")
    readonly_fields = ("created_by", "created_at", "updated_at")
    inlines = (PlanApprovalLevelInline, RecoveryStrategyInline)
    fieldsets = (
        (None, {"fields": ("plan_id", "name", "description", "status")}),
        ("Scope", {"fields": ("applications", "sites")}),
        (
            "Targets",
            {"fields": ("rto_seconds", "rpo_seconds", "data_loss_threshold_mb", "downtime_threshold_seconds")},
        ),
        (
            "Strategy",
            {
                "fields": (
                    "strategy",
                    "primary_site",
                    "dr_site",
                    "replication_mode",
                    "failover_mode",
                    "detection_window_seconds",
                    "approval_timeout_seconds",
                )
            },
        ),
        ("Testing", {"fields": ("test_frequency",)}),
        (
            "Compliance",
            {"fields": ("compliance_frameworks", "compliance_status", "last_audit_date", "next_audit_date")},
        ),
        ("Costs", {"fields": ("dr_infrastructure_cost_monthly", "testing_cost_monthly", "downtime_cost_per_hour")}),
        ("Record", {"fields": ("created_by", "created_at", "updated_at"), "classes": ("collapse",)}),
    )

    @admin.display(description="RTO", ordering="rto_seconds")
    def rto(self, plan: DRPlan) -> str:
        return human_duration(plan.rto_seconds)

    @admin.display(description="RPO", ordering="rpo_seconds")
    def rpo(self, plan: DRPlan) -> str:
        return human_duration(plan.rpo_seconds)

    def save_model(self, request: HttpRequest, obj: DRPlan, form: BaseModelForm, change: bool) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class StrategyStepInline(admin.TabularInline):
    model = StrategyStep
    fields = (
        "order",
        "action",
        "estimated_duration_seconds",
        "automation_enabled",
        "automation_script",
        "approval_required",
    )
    extra = 0


class StrategyConditionInline(admin.TabularInline):
    model = StrategyCondition
    extra = 0


class ValidationCheckInline(admin.TabularInline):
    model = ValidationCheck
    extra = 0


@admin.register(RecoveryStrategy)
class RecoveryStrategyAdmin(AuditedModelAdmin):
    list_display = ("name", "plan", "kind", "rollback_trigger", "step_count", "total_duration", "updated_at")
    list_filter = ("kind", "rollback_trigger")
    list_select_related = ("plan",)
    search_fields = ("name", "description", "plan__plan_id", "plan__name")
    autocomplete_fields = ("plan",)
    readonly_fields = ("created_at", "updated_at")
    inlines = (StrategyStepInline, StrategyConditionInline, ValidationCheckInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(_steps=Count("steps", distinct=True), _duration=Sum("steps__estimated_duration_seconds"))
        )

    @admin.display(description="steps", ordering="_steps")
    def step_count(self, strategy: RecoveryStrategy) -> int:
        return strategy._steps

    @admin.display(description="estimated duration", ordering="_duration")
    def total_duration(self, strategy: RecoveryStrategy) -> str:
        return human_duration(strategy._duration)


@admin.register(StrategyStep)
class StrategyStepAdmin(AuditedModelAdmin):
    list_display = ("strategy", "order", "action", "estimated", "automation_enabled", "approval_required")
    list_filter = ("automation_enabled", "approval_required")
    list_select_related = ("strategy__plan",)
    search_fields = ("action", "description", "strategy__name", "strategy__plan__plan_id")
    autocomplete_fields = ("strategy",)

    @admin.display(description="estimated duration", ordering="estimated_duration_seconds")
    def estimated(self, step: StrategyStep) -> str:
        return human_duration(step.estimated_duration_seconds)


@admin.register(StrategyCondition)
class StrategyConditionAdmin(AuditedModelAdmin):
    list_display = ("strategy", "kind", "description")
    list_filter = ("kind",)
    list_select_related = ("strategy__plan",)
    search_fields = ("description", "strategy__name", "strategy__plan__plan_id")
    autocomplete_fields = ("strategy",)


@admin.register(ValidationCheck)
class ValidationCheckAdmin(AuditedModelAdmin):
    list_display = ("name", "strategy", "check_type", "target", "threshold", "unit", "severity")
    list_filter = ("check_type", "severity")
    list_select_related = ("strategy__plan",)
    search_fields = ("name", "target", "strategy__name", "strategy__plan__plan_id")
    autocomplete_fields = ("strategy",)


@admin.register(PlanApprovalLevel)
class PlanApprovalLevelAdmin(AuditedModelAdmin):
    list_display = ("plan", "level", "role", "min_approvers")
    list_filter = ("role",)
    search_fields = ("plan__plan_id", "plan__name", "role")
    raw_id_fields = ("plan",)
