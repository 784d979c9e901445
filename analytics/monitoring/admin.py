"""Admin of monitoring: monitors (probes shown, edited through the API, which checks them against their
action), SLA violations (evidence: read only)."""

from __future__ import annotations

from django.contrib import admin

from analytics.monitoring.models import Monitor, Probe, SLAViolation
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
