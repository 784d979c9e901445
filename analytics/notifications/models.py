"""Alerts and notifications: channels, alert rules and their state per application, subscriptions to
execution events, and the outbox (one delivery per message per channel, every attempt recorded).

The models belong to the analytics app (analytics/models.py imports them)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from analytics.notifications.choices import (
    AlertStatus,
    ChannelKind,
    DeliveryStatus,
    Metric,
    NotificationKind,
    Scope,
)
from core.roles import ROLES
from plans.choices import Severity


class NotificationChannel(models.Model):
    """Where messages go: a webhook (JSON POST signed with HMAC-SHA256 over the body, with the secret kept
    in the secret store under `secret_name`) or e-mail (Django's mail backend) to `recipients`."""

    name = models.SlugField(max_length=100, unique=True, help_text="Natural key (never all digits).")
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    description = models.CharField(max_length=300, blank=True)
    url = models.URLField(max_length=500, blank=True, help_text="Webhook: the http(s) URL POSTed to.")
    secret_name = models.CharField(max_length=100, blank=True, help_text="Webhook: the signing secret's name.")
    recipients = models.JSONField(default=list, blank=True, help_text="E-mail: addresses of alert messages.")
    timeout_seconds = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(30)]
    )
    max_attempts = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(10)])
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class AlertRule(models.Model):
    """Fires when an application's current metric is past the threshold for longer than the window;
    repeats at most every repeat interval while it lasts; sends a resolved message when it clears."""

    name = models.CharField(max_length=200)
    metric = models.CharField(max_length=24, choices=Metric.choices)
    scope = models.CharField(max_length=12, choices=Scope.choices)
    plan = models.ForeignKey("plans.DRPlan", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    application = models.ForeignKey(
        "plans.Application", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    threshold = models.FloatField()
    window_seconds = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    repeat_interval_seconds = models.PositiveIntegerField(default=3600, validators=[MinValueValidator(60)])
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.HIGH)
    channels = models.ManyToManyField(NotificationChannel, related_name="alert_rules")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name}: {self.metric} vs {self.threshold:g}"


class AlertState(models.Model):
    """The state of one rule for one application (the scope's target)."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="states")
    application = models.ForeignKey("plans.Application", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=AlertStatus.choices, default=AlertStatus.OK)
    value = models.FloatField(null=True, blank=True, help_text="The last value evaluated.")
    pending_since = models.DateTimeField(null=True, blank=True, help_text="Past the threshold since.")
    fired_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    repeats = models.PositiveIntegerField(default=0)
    resolved_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["rule", "application"]
        constraints = [models.UniqueConstraint(fields=["rule", "application"], name="unique_alert_state")]

    def __str__(self) -> str:
        return f"{self.rule_id}/{self.application_id}: {self.status}"


class Subscription(models.Model):
    """Execution events of a plan (or of every plan) sent to a channel, for a role, a user or an address
    (or, none of them, the channel's own recipients)."""

    name = models.CharField(max_length=200, blank=True)
    plan = models.ForeignKey(
        "plans.DRPlan", null=True, blank=True, on_delete=models.CASCADE, related_name="+", help_text="Empty: all."
    )
    role = models.CharField(max_length=20, blank=True, choices=[(r, r) for r in ROLES])
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    email = models.EmailField(blank=True)
    event_kinds = models.JSONField(default=list)
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="subscriptions")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        who = self.role or (self.user and self.user.get_username()) or self.email or "channel"
        return f"{self.name or 'subscription'} → {who} via {self.channel_id}"


class Notification(models.Model):
    """One message (an alert transition or an execution event), delivered once per channel."""

    kind = models.CharField(max_length=24, choices=NotificationKind.choices)
    subject = models.CharField(max_length=300)
    text = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    plan = models.ForeignKey("plans.DRPlan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    application = models.ForeignKey(
        "plans.Application", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    execution = models.ForeignKey(
        "failover.FailoverExecution", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject[:60]}"


class Delivery(models.Model):
    """The outbox: one message to one channel, sent by a django-q2 task and retried with backoff."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="deliveries")
    recipients = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"delivery #{self.pk} to {self.channel_id}: {self.status}"


class DeliveryAttempt(models.Model):
    """One try of a delivery: when, how long, and what the receiver answered."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts_made")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.FloatField()
    success = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="HTTP status or SMTP code.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="unique_delivery_attempt")]

    def __str__(self) -> str:
        return f"#{self.delivery_id} attempt {self.number}: {'ok' if self.success else self.error[:40]}"
