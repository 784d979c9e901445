"""States and enums of alerts and notifications."""

from django.db import models


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (signed JSON POST)"
    EMAIL = "email", "E-mail"


class Metric(models.TextChoices):
    """What an alert rule watches: an application's RTO target's current value."""

    RPO_SECONDS = "rpo_seconds", "Current RPO (seconds; fires above the threshold)"
    RTO_SECONDS = "rto_seconds", "Current RTO estimate (seconds; fires above the threshold)"
    AVAILABILITY_PERCENT = "availability_percent", "Availability (percent; fires below the threshold)"


# metric -> the RTOTarget field holding its current value
METRIC_FIELDS = {
    Metric.RPO_SECONDS: "current_rpo_seconds",
    Metric.RTO_SECONDS: "current_rto_seconds",
    Metric.AVAILABILITY_PERCENT: "current_availability_percent",
}
# metrics that are bad when low (the others are bad when high)
LOW_IS_BAD = {Metric.AVAILABILITY_PERCENT}


class Scope(models.TextChoices):
    PLAN = "plan", "The applications of one plan"
    APPLICATION = "application", "One application"
    ALL = "all", "Every application with an RTO target"


class AlertStatus(models.TextChoices):
    OK = "ok", "OK"  # the value is within the threshold (or was never seen past it)
    PENDING = "pending", "Pending"  # past the threshold, not yet for longer than the window
    FIRING = "firing", "Firing"  # past the threshold for longer than the window: people were told


class NotificationKind(models.TextChoices):
    ALERT_FIRING = "alert_firing", "Alert firing"
    ALERT_REPEAT = "alert_repeat", "Alert still firing (repeat)"
    ALERT_RESOLVED = "alert_resolved", "Alert resolved"
    APPROVAL_WAITING = "approval_waiting", "Go/no-go approval waiting"
    MANUAL_STEP_WAITING = "manual_step_waiting", "Manual step waiting"
    EXECUTION_STARTED = "execution_started", "Execution started"
    EXECUTION_COMPLETED = "execution_completed", "Execution completed"
    EXECUTION_FAILED = "execution_failed", "Execution failed"
    EXECUTION_ROLLED_BACK = "execution_rolled_back", "Execution rolled back"
    EXECUTION_PAUSED = "execution_paused", "Execution paused"
    RTO_BREACH_FORECAST = "rto_breach_forecast", "RTO breach forecast"
    TEST = "test", "Test message"


# The kinds a subscription can ask for (execution events).
EVENT_KINDS = [
    NotificationKind.APPROVAL_WAITING,
    NotificationKind.MANUAL_STEP_WAITING,
    NotificationKind.EXECUTION_STARTED,
    NotificationKind.EXECUTION_COMPLETED,
    NotificationKind.EXECUTION_FAILED,
    NotificationKind.EXECUTION_ROLLED_BACK,
    NotificationKind.EXECUTION_PAUSED,
    NotificationKind.RTO_BREACH_FORECAST,
]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # queued, or waiting for its next attempt (next_attempt_at)
    SENDING = "sending", "Sending"  # claimed by a worker
    DELIVERED = "delivered", "Delivered"  # the receiver accepted it (2xx, or the SMTP server took it)
    FAILED = "failed", "Failed"  # every attempt failed; nothing more will be tried
