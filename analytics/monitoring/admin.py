"""Admin of monitoring: monitors (probes shown, edited through the API, which checks them against their
action); samples, rollups, the rollup watermarks and SLA violations are measurements: read only."""

from __future__ import annotations

from django.contrib import admin

from analytics.monitoring.models import Monitor, Probe, ProbeSample, RollupState, SampleRollup, SLAViolation
from core.admin_mixins import AuditedModelAdmin, ReadOnlyAdminMixin, ReadOnlyInlineMixin


class ProbeInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Probe
    fields = ("key", "action", "params", "interval_seconds", "timeout_seconds", "next_run_at", "last_run_at")
    readonly_fields = fields
    show_change_link = False


@admin.register(Monitor)
class MonitorAdmin(AuditedModelAdmin):
    list_display = ("slug", "application", "plan", "enabled", "updated_at")
    list_filter = ("enabled", "plan")
    list_select_related = ("application", "plan")
    search_fields = ("slug", "application__slug", "description")
    autocomplete_fields = ("application", "plan")
    readonly_fields = ("created_by", "created_at", "updated_at")
    inlines = (ProbeInline,)


@admin.register(SLAViolation)
class SLAViolationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("kind", "application", "plan", "started_at", "ended_at", "worst_value", "threshold", "penalty")
    list_filter = ("kind", "plan")
    list_select_related = ("application", "plan")
    date_hierarchy = "started_at"


@admin.register(Probe)
class ProbeAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("monitor", "key", "action", "interval_seconds", "timeout_seconds", "next_run_at", "last_run_at")
    list_filter = ("action",)
    list_select_related = ("monitor",)
    search_fields = ("monitor__slug", "key", "action")


@admin.register(ProbeSample)
class ProbeSampleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("probe", "at", "status", "up", "rpo_seconds", "lag_bytes", "latency_ms", "error")
    list_filter = ("status",)
    list_select_related = ("probe__monitor",)
    date_hierarchy = "at"


@admin.register(SampleRollup)
class SampleRollupAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("probe", "resolution", "bucket", "samples", "up_count", "known_count", "rpo_max")
    list_filter = ("resolution",)
    list_select_related = ("probe__monitor",)


@admin.register(RollupState)
class RollupStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("hours_until", "days_until")
