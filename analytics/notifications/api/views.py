"""API of alerts and notifications: channels, alert rules (`POST /rto-rpo/alert`, `/rto-rpo/alerts`),
subscriptions to execution events, and the deliveries with every attempt."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from analytics.notifications import services
from analytics.notifications.api.serializers import (
    AlertRuleSerializer,
    ChannelSerializer,
    DeliverySerializer,
    SubscriptionSerializer,
)
from analytics.notifications.filtersets import (
    AlertRuleFilterSet,
    ChannelFilterSet,
    DeliveryFilterSet,
    SubscriptionFilterSet,
)
from analytics.notifications.models import AlertRule, Delivery, NotificationChannel, Subscription
from core import audit
from core.api.viewsets import ReadOnlyModelViewSet
from core.choices import AuditAction
from plans.api.auditing import NestedAuditedModelViewSet, PkOrSlugLookupMixin


class ChannelViewSet(PkOrSlugLookupMixin, NestedAuditedModelViewSet):
    """Notification channels: signed webhooks and e-mail. The webhook's secret is write-only."""

    queryset = NotificationChannel.objects.all()
    serializer_class = ChannelSerializer
    filterset_class = ChannelFilterSet
    slug_lookup_field = "name"
    search_fields = ["name", "description"]
    ordering_fields = ["name", "kind", "created_at"]
    ordering = ["name"]
    action_permissions = {"test": ["analytics.change_notificationchannel"]}

    def get_queryset(self) -> models.QuerySet:
        return NotificationChannel.objects.select_related("created_by").order_by("name")

    def _save(self, serializer: BaseSerializer, **kwargs: Any) -> NotificationChannel:
        secret = serializer.validated_data.pop("secret", None)
        channel = serializer.save(**kwargs)
        if secret:
            services.save_channel_secret(
                channel, secret, actor=self.request.user, auth_method=audit.auth_method_of(self.request)
            )
        return channel

    def perform_create(self, serializer: BaseSerializer) -> None:
        with transaction.atomic():
            channel = self._save(serializer, **self.get_create_kwargs())
            self._audit(AuditAction.CREATE, channel, None, self.audit_snapshot(channel))

    def perform_update(self, serializer: BaseSerializer) -> None:
        with transaction.atomic():
            before = self.audit_snapshot(serializer.instance)
            channel = self._save(serializer)
            self._audit(AuditAction.UPDATE, channel, before, self.audit_snapshot(channel))

    def perform_destroy(self, instance: models.Model) -> None:
        with transaction.atomic():
            services.delete_channel_secret(
                instance, actor=self.request.user, auth_method=audit.auth_method_of(self.request)
            )
            super().perform_destroy(instance)

    def get_create_kwargs(self) -> dict[str, Any]:
        return {"created_by": self.request.user}

    @extend_schema(
        summary="Queue a test message to the channel (delivered by a worker; see the delivery's attempts)",
        request=None,
        responses={202: DeliverySerializer},
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        delivery = services.send_test_message(self.get_object(), request.user)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    create=extend_schema(
        summary="Create an alert rule (also POST /rto-rpo/alert)",
        description="Fires once when the metric of an application in scope stays past the threshold for longer "
        "than window_seconds (above it for rpo_seconds and rto_seconds, below it for availability_percent), "
        "reminds at most every repeat_interval_seconds while it lasts, and sends a resolved message when it "
        "clears. Evaluated every minute and after each probe.",
    )
)
class AlertRuleViewSet(NestedAuditedModelViewSet):
    """Alert rules on the RTO targets' current RPO, RTO and availability, with their state per application."""

    queryset = AlertRule.objects.all()
    serializer_class = AlertRuleSerializer
    filterset_class = AlertRuleFilterSet
    search_fields = ["name"]
    ordering_fields = ["name", "metric", "severity", "created_at"]
    ordering = ["name", "id"]

    def get_queryset(self) -> models.QuerySet:
        return (
            AlertRule.objects.select_related("plan", "application", "created_by")
            .prefetch_related("channels", "states__application")
            .order_by("name", "id")
        )

    def get_create_kwargs(self) -> dict[str, Any]:
        return {"created_by": self.request.user}

    def audit_snapshot(self, instance: models.Model) -> dict[str, Any]:
        data = super().audit_snapshot(instance)
        data["channels"] = sorted(instance.channels.values_list("name", flat=True))
        return data


class SubscriptionViewSet(NestedAuditedModelViewSet):
    """Who is told about which execution events of which plan, through which channel."""

    queryset = Subscription.objects.all()
    serializer_class = SubscriptionSerializer
    filterset_class = SubscriptionFilterSet
    search_fields = ["name", "email"]
    ordering_fields = ["id", "created_at"]
    ordering = ["id"]

    def get_queryset(self) -> models.QuerySet:
        return Subscription.objects.select_related("plan", "user", "channel", "created_by").order_by("id")

    def get_create_kwargs(self) -> dict[str, Any]:
        return {"created_by": self.request.user}


class DeliveryViewSet(ReadOnlyModelViewSet):
    """The outbox: every message to every channel, its status and every attempt (time, duration, the HTTP
    status or SMTP answer, the error)."""

    queryset = Delivery.objects.all()
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilterSet
    ordering_fields = ["created_at", "status", "attempts"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self) -> models.QuerySet:
        return (
            Delivery.objects.select_related("channel", "notification__plan", "notification__application")
            .prefetch_related("attempts_made")
            .order_by("-created_at", "-id")
        )
