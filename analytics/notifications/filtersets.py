"""Filters of the notifications API."""

from __future__ import annotations

import django_filters

from analytics.notifications.choices import ChannelKind, DeliveryStatus, Metric, NotificationKind, Scope
from analytics.notifications.models import AlertRule, Delivery, NotificationChannel, Subscription
from core.filtersets import IntegerFilter, StrictFilterSet
from plans.choices import Severity


class ChannelFilterSet(StrictFilterSet):
    kind = django_filters.ChoiceFilter(choices=ChannelKind.choices)

    class Meta:
        model = NotificationChannel
        fields = ["kind", "enabled"]


class AlertRuleFilterSet(StrictFilterSet):
    metric = django_filters.MultipleChoiceFilter(choices=Metric.choices)
    scope = django_filters.MultipleChoiceFilter(choices=Scope.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    plan = django_filters.CharFilter(field_name="plan__plan_id", help_text="Plan slug (plan_id).")
    application = django_filters.CharFilter(field_name="application__slug", help_text="Application slug.")
    channel = django_filters.CharFilter(field_name="channels__name", help_text="Channel name.", distinct=True)

    class Meta:
        model = AlertRule
        fields = ["metric", "scope", "severity", "plan", "application", "channel", "enabled"]


class SubscriptionFilterSet(StrictFilterSet):
    plan = django_filters.CharFilter(field_name="plan__plan_id", help_text="Plan slug (plan_id).")
    channel = django_filters.CharFilter(field_name="channel__name", help_text="Channel name.")
    user = django_filters.CharFilter(field_name="user__username", help_text="Username.")

    class Meta:
        model = Subscription
        fields = ["plan", "channel", "role", "user", "enabled"]


class DeliveryFilterSet(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=DeliveryStatus.choices)
    kind = django_filters.MultipleChoiceFilter(field_name="notification__kind", choices=NotificationKind.choices)
    channel = django_filters.CharFilter(field_name="channel__name", help_text="Channel name.")
    rule = IntegerFilter(field_name="notification__rule", help_text="Alert rule id.")
    execution = IntegerFilter(field_name="notification__execution", help_text="Execution id.")
    plan = django_filters.CharFilter(field_name="notification__plan__plan_id", help_text="Plan slug (plan_id).")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte")

    class Meta:
        model = Delivery
        fields = ["status", "kind", "channel", "rule", "execution", "plan", "created_after", "created_before"]
