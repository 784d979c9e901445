"""Serializers of alerts and notifications. A channel's secret is write-only: the API says whether one is
set (`has_secret`), never what it is."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from analytics.notifications.channels import forbidden_address
from analytics.notifications.choices import EVENT_KINDS, ChannelKind, Metric, Scope
from analytics.notifications.models import (
    AlertRule,
    AlertState,
    Delivery,
    DeliveryAttempt,
    Notification,
    NotificationChannel,
    Subscription,
)
from core.api.strict import StrictModelSerializer
from core.validators import validate_natural_key
from plans.models import Application, DRPlan

MAX_SECONDS = 10**9
MAX_RECIPIENTS = 50


def validate_http_url(value: str) -> None:
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a malformed IPv6 address or port
        valid = False
    if not valid or any(c.isspace() for c in value):
        raise serializers.ValidationError("Enter an http:// or https:// URL.")
    if parts.username or parts.password:
        raise serializers.ValidationError("Put no credentials in the URL; the channel's secret signs each request.")
    try:
        why = forbidden_address(parts.hostname or "")
    except ValueError:  # a host name: its addresses are checked before each POST
        why = None
    if why:
        raise serializers.ValidationError(f"Webhooks are never sent there: {why}.")


class ChannelSerializer(StrictModelSerializer):
    name = serializers.SlugField(
        max_length=100,
        validators=[
            validate_natural_key,
            UniqueValidator(queryset=NotificationChannel.objects.all(), message="A channel with this name exists."),
        ],
        help_text="Natural key.",
    )
    url = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        validators=[validate_http_url],
        help_text="Webhook: the http:// or https:// URL to POST to. Empty for e-mail.",
    )
    recipients = serializers.ListField(
        child=serializers.EmailField(),
        required=False,
        max_length=MAX_RECIPIENTS,
        help_text="E-mail: the addresses alert messages go to (subscriptions name their own).",
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        min_length=16,
        max_length=1024,
        trim_whitespace=False,
        help_text="Webhook: the HMAC-SHA256 signing secret (at least 16 characters). Write-only: stored in the "
        "secret store, never shown; omit it on update to keep the current one.",
    )
    has_secret = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = NotificationChannel
        fields = [
            "id",
            "name",
            "kind",
            "description",
            "url",
            "recipients",
            "secret",
            "has_secret",
            "timeout_seconds",
            "max_attempts",
            "enabled",
            "created_by",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {
            "timeout_seconds": {"min_value": 1, "max_value": 30},
            "max_attempts": {"min_value": 1, "max_value": 10},
        }

    def get_has_secret(self, channel: NotificationChannel) -> bool:
        return bool(channel.secret_name)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = attrs.get("kind", getattr(self.instance, "kind", None))
        url = attrs.get("url", getattr(self.instance, "url", ""))
        has_secret = bool(attrs.get("secret")) or bool(getattr(self.instance, "secret_name", ""))
        if kind == ChannelKind.WEBHOOK:
            if not url:
                raise serializers.ValidationError({"url": ["A webhook channel needs its http(s) URL."]})
            if not has_secret:
                raise serializers.ValidationError({"secret": ["A webhook channel needs a signing secret."]})
        elif kind == ChannelKind.EMAIL:
            if url:
                raise serializers.ValidationError({"url": ["An e-mail channel has no URL."]})
            if attrs.get("secret"):
                raise serializers.ValidationError({"secret": ["An e-mail channel has no signing secret."]})
        return attrs


class AlertStateSerializer(serializers.ModelSerializer):
    application = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = AlertState
        fields = [
            "application",
            "status",
            "value",
            "pending_since",
            "fired_at",
            "last_sent_at",
            "repeats",
            "resolved_at",
            "updated_at",
        ]
        read_only_fields = fields


class AlertRuleSerializer(StrictModelSerializer):
    plan = serializers.SlugRelatedField(
        slug_field="plan_id",
        queryset=DRPlan.objects.all(),
        required=False,
        allow_null=True,
        help_text="scope plan: the plan's plan_id.",
    )
    application = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Application.objects.all(),
        required=False,
        allow_null=True,
        help_text="scope application: the application's slug.",
    )
    threshold = serializers.FloatField(
        min_value=0,
        max_value=MAX_SECONDS,
        help_text="Seconds for rpo_seconds and rto_seconds (fires above it); percent for availability_percent "
        "(fires below it).",
    )
    channels = serializers.SlugRelatedField(
        slug_field="name",
        many=True,
        queryset=NotificationChannel.objects.all(),
        allow_empty=False,
        help_text="Names of the channels the messages go to.",
    )
    states = AlertStateSerializer(many=True, read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "name",
            "metric",
            "scope",
            "plan",
            "application",
            "threshold",
            "window_seconds",
            "repeat_interval_seconds",
            "severity",
            "channels",
            "enabled",
            "states",
            "created_by",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {
            "window_seconds": {"min_value": 1, "max_value": 30 * 24 * 3600},
            "repeat_interval_seconds": {"min_value": 60, "max_value": 30 * 24 * 3600},
        }

    def validate_threshold(self, value: float) -> float:
        if not math.isfinite(value):
            raise serializers.ValidationError("Enter a finite number.")
        return value

    def validate_channels(self, channels: list[NotificationChannel]) -> list[NotificationChannel]:
        for channel in channels:
            if channel.kind == ChannelKind.EMAIL and not channel.recipients:
                raise serializers.ValidationError(f"e-mail channel {channel.name!r} has no recipients for alerts.")
        return channels

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def current(name: str) -> Any:
            return attrs[name] if name in attrs else getattr(self.instance, name, None)

        scope, plan, application = current("scope"), current("plan"), current("application")
        if scope == Scope.PLAN:
            if plan is None:
                raise serializers.ValidationError({"plan": ["Scope plan needs the plan (its plan_id)."]})
            if application is not None:
                raise serializers.ValidationError({"application": ["Scope plan takes no application."]})
        elif scope == Scope.APPLICATION:
            if application is None:
                raise serializers.ValidationError({"application": ["Scope application needs the application."]})
            if plan is not None:
                raise serializers.ValidationError({"plan": ["Scope application takes no plan."]})
        elif scope == Scope.ALL and (plan is not None or application is not None):
            field = "plan" if plan is not None else "application"
            raise serializers.ValidationError({field: ["Scope all takes neither plan nor application."]})
        if current("metric") == Metric.AVAILABILITY_PERCENT and (current("threshold") or 0) > 100:
            raise serializers.ValidationError({"threshold": ["An availability threshold is a percent: 0 to 100."]})
        return attrs


class SubscriptionSerializer(StrictModelSerializer):
    plan = serializers.SlugRelatedField(
        slug_field="plan_id",
        queryset=DRPlan.objects.all(),
        required=False,
        allow_null=True,
        help_text="The plan's plan_id; null: every plan.",
    )
    user = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        allow_null=True,
        help_text="A user (username) to tell; or give a role, or an e-mail address.",
    )
    event_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_KINDS), min_length=1, max_length=len(EVENT_KINDS)
    )
    channel = serializers.SlugRelatedField(
        slug_field="name", queryset=NotificationChannel.objects.all(), help_text="The channel's name."
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Subscription
        fields = [
            "id",
            "name",
            "plan",
            "role",
            "user",
            "email",
            "event_kinds",
            "channel",
            "enabled",
            "created_by",
            "created_at",
            "updated_at",
        ]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        named = [name for name in ("role", "user", "email") if attrs.get(name)]
        if self.instance is not None and len(named) == 1:
            # A change that names a recipient replaces the stored one (PATCH {"role": …} on an e-mail subscription).
            attrs.update(
                {name: None if name == "user" else "" for name in ("role", "user", "email") if name not in named}
            )

        def current(name: str) -> Any:
            return attrs[name] if name in attrs else getattr(self.instance, name, None)

        targets = [name for name in ("role", "user", "email") if current(name)]
        if len(targets) > 1:
            raise serializers.ValidationError({targets[1]: ["Give one of role, user or email, not several."]})
        channel = current("channel")
        if channel is not None and channel.kind == ChannelKind.EMAIL and not targets and not channel.recipients:
            raise serializers.ValidationError(
                {"channel": [f"e-mail channel {channel.name!r} has no recipients: give a role, user or email."]}
            )
        kinds = current("event_kinds") or []
        if len(set(kinds)) != len(kinds):
            raise serializers.ValidationError({"event_kinds": ["Name each event kind once."]})
        return attrs


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "duration_ms", "success", "status_code", "error"]
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer):
    plan = serializers.SlugRelatedField(slug_field="plan_id", read_only=True, allow_null=True)
    application = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = Notification
        fields = ["id", "kind", "subject", "text", "payload", "rule", "plan", "application", "execution", "created_at"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    notification = NotificationSerializer(read_only=True)
    channel = serializers.SlugRelatedField(slug_field="name", read_only=True)
    attempt_log = DeliveryAttemptSerializer(source="attempts_made", many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "notification",
            "channel",
            "recipients",
            "status",
            "attempts",
            "max_attempts",
            "next_attempt_at",
            "delivered_at",
            "last_error",
            "attempt_log",
            "created_at",
        ]
        read_only_fields = fields
