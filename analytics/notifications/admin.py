"""Admin of alerts and notifications: channels, rules and subscriptions are audited; the outbox (deliveries
and their attempts) is evidence, read-only. A channel's secret is set through the API, never shown."""

from __future__ import annotations

from django.contrib import admin

from analytics.notifications.models import (
    AlertRule,
    AlertState,
    Delivery,
    DeliveryAttempt,
    Notification,
    NotificationChannel,
    Subscription,
)
from core.admin_mixins import AuditedModelAdmin, ReadOnlyAdminMixin, ReadOnlyInlineMixin


@admin.register(NotificationChannel)
class NotificationChannelAdmin(AuditedModelAdmin):
    list_display = ("name", "kind", "url", "enabled", "timeout_seconds", "max_attempts", "updated_at")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "description", "url")
    readonly_fields = ("secret_name", "created_by", "created_at", "updated_at")


class AlertStateInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = AlertState
    extra = 0
    fields = ("application", "status", "value", "pending_since", "fired_at", "last_sent_at", "repeats", "resolved_at")


@admin.register(AlertRule)
class AlertRuleAdmin(AuditedModelAdmin):
    list_display = ("name", "metric", "scope", "threshold", "window_seconds", "severity", "enabled")
    list_filter = ("metric", "scope", "severity", "enabled")
    search_fields = ("name",)
    raw_id_fields = ("plan", "application", "created_by")
    filter_horizontal = ("channels",)
    inlines = [AlertStateInline]


@admin.register(Subscription)
class SubscriptionAdmin(AuditedModelAdmin):
    list_display = ("id", "name", "plan", "role", "user", "email", "channel", "enabled")
    list_filter = ("role", "enabled", "channel")
    raw_id_fields = ("plan", "user", "created_by")


class DeliveryAttemptInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    fields = ("number", "started_at", "duration_ms", "success", "status_code", "error")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("id", "kind", "subject", "channel", "status", "attempts", "next_attempt_at", "created_at")
    list_filter = ("status", "channel", "notification__kind")
    search_fields = ("notification__subject",)
    list_select_related = ("channel", "notification")
    inlines = [DeliveryAttemptInline]

    @admin.display(description="kind", ordering="notification__kind")
    def kind(self, delivery: Delivery) -> str:
        return delivery.notification.kind

    @admin.display(description="subject")
    def subject(self, delivery: Delivery) -> str:
        return delivery.notification.subject


# Evidence of what was sent, read-only (audited admins that refuse every write).
@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("id", "kind", "subject", "plan", "execution", "created_at")
    list_filter = ("kind",)
    search_fields = ("subject",)


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("rule", "application", "status", "value", "pending_since", "fired_at", "resolved_at")
    list_filter = ("status",)
    list_select_related = ("rule", "application")


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ("delivery", "number", "started_at", "duration_ms", "success", "status_code", "error")
    list_filter = ("success",)
