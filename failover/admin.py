"""Executions are evidence: the admin shows them, never changes them (the engine writes them)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from core.admin_mixins import ReadOnlyAdminMixin, ReadOnlyInlineMixin, human_duration
from failover.models import ApprovalDecision, ExecutionEvent, FailoverExecution, StepRun, ValidationResult


class StepRunInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = StepRun
    fields = ("step_key", "title", "action", "status", "attempts", "started_at", "finished_at", "duration", "error")
    readonly_fields = fields

    @admin.display(description="duration")
    def duration(self, step: StepRun) -> str:
        return human_duration(step.duration_seconds)


class ValidationResultInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = ValidationResult
    fields = ("name", "check_type", "severity", "status", "measured", "threshold", "unit", "message", "checked_at")
    readonly_fields = fields
    show_change_link = False


@admin.register(FailoverExecution)
class FailoverExecutionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "execution_type",
        "target",
        "status",
        "dry_run",
        "trigger_type",
        "triggered_by",
        "triggered_at",
        "rto",
        "rpo",
    )
    list_filter = ("execution_type", "status", "dry_run", "trigger_type")
    list_select_related = ("plan", "runbook_version__runbook", "triggered_by")
    search_fields = ("plan__plan_id", "plan__name", "runbook_version__runbook__slug", "trigger_reason", "error")
    date_hierarchy = "triggered_at"
    readonly_fields = ("events_link",)
    inlines = (StepRunInline, ValidationResultInline)

    @admin.display(description="plan / runbook")
    def target(self, execution: FailoverExecution) -> str:
        return execution.plan.plan_id if execution.plan_id else str(execution.runbook_version or "—")

    @admin.display(description="actual RTO", ordering="actual_rto_seconds")
    def rto(self, execution: FailoverExecution) -> str:
        return human_duration(execution.actual_rto_seconds)

    @admin.display(description="actual RPO", ordering="actual_rpo_seconds")
    def rpo(self, execution: FailoverExecution) -> str:
        return human_duration(execution.actual_rpo_seconds)

    @admin.display(description="events")
    def events_link(self, execution: FailoverExecution) -> str:
        url = reverse("admin:failover_executionevent_changelist") + f"?execution__id__exact={execution.pk}"
        return format_html('<a href="{}">{} events</a>', url, execution.events.count())


@admin.register(StepRun)
class StepRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("step_key", "execution", "title", "action", "status", "attempts", "duration", "worker")
    list_filter = ("status", "action")
    list_select_related = ("execution__plan", "execution__runbook_version__runbook")
    search_fields = ("step_key", "title", "error", "worker")
    raw_id_fields = ("execution", "runbook_step")

    @admin.display(description="duration", ordering="duration_seconds")
    def duration(self, step: StepRun) -> str:
        return human_duration(step.duration_seconds)


@admin.register(ExecutionEvent)
class ExecutionEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("execution_id", "seq", "kind", "step_run", "short_message", "created_at")
    list_filter = ("kind",)
    list_select_related = ("step_run",)
    search_fields = ("message",)
    date_hierarchy = "created_at"
    raw_id_fields = ("execution", "step_run")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).order_by("-execution_id", "-seq")

    @admin.display(description="message")
    def short_message(self, event: ExecutionEvent) -> str:
        return event.message[:120]


@admin.register(ValidationResult)
class ValidationResultAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "execution_id", "check_type", "severity", "status", "measured", "threshold", "unit")
    list_filter = ("status", "check_type", "severity")
    search_fields = ("name", "message")
    date_hierarchy = "checked_at"
    raw_id_fields = ("execution",)


@admin.register(ApprovalDecision)
class ApprovalDecisionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("execution_id", "step_run", "level", "user", "decision", "decided_at")
    list_filter = ("decision",)
    search_fields = ("user__username", "comment")
    date_hierarchy = "decided_at"
