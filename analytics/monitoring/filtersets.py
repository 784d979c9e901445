"""django-filter FilterSets of the monitoring API. The RTO/RPO family (violations, like /rto-rpo and its history)
refuses an unknown plan or application with 400 naming the parameter; the monitors list filters as every list."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet
from rest_framework.exceptions import ValidationError

from analytics.monitoring.choices import ViolationKind
from analytics.monitoring.models import Monitor, SLAViolation
from core.filtersets import BooleanFilter, StrictFilterSet
from core.lookups import find, lookup_kwargs
from plans.models import Application, DRPlan


def plan_named(value: str, field: str = "plan") -> DRPlan:
    plan = find(DRPlan.objects.all(), value, "plan_id")
    if plan is None:
        raise ValidationError({field: [f"unknown plan {value!r} (a plan_id or numeric id)."]})
    return plan


def application_named(value: str, field: str = "application") -> Application:
    application = find(Application.objects.all(), value, "slug")
    if application is None:
        raise ValidationError({field: [f"unknown application {value!r} (a slug or numeric id)."]})
    return application


class MonitorFilterSet(StrictFilterSet):
    """A list filter, as every other list's: a plan or application that matches nothing gives an empty list."""

    application = django_filters.CharFilter(method="by_application", help_text="Application slug or id.")
    plan = django_filters.CharFilter(method="by_plan", help_text="plan_id or id.")
    enabled = BooleanFilter()
    action = django_filters.CharFilter(field_name="probes__action", distinct=True, help_text="A probe's action.")

    class Meta:
        model = Monitor
        fields = ["application", "plan", "enabled", "action"]

    def by_application(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(**{f"application__{k}": v for k, v in lookup_kwargs(value, "slug").items()})

    def by_plan(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(**{f"plan__{k}": v for k, v in lookup_kwargs(value, "plan_id").items()})


class ViolationFilterSet(StrictFilterSet):
    plan = django_filters.CharFilter(method="by_plan", help_text="plan_id or id: the plan's and its applications'.")
    application = django_filters.CharFilter(method="by_application", help_text="Application slug or id.")
    kind = django_filters.MultipleChoiceFilter(choices=ViolationKind.choices)
    state = django_filters.ChoiceFilter(
        choices=[("open", "Open"), ("closed", "Closed")], method="by_state", help_text="open or closed."
    )

    class Meta:
        model = SLAViolation
        fields = ["plan", "application", "kind", "state"]

    def by_application(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(application=application_named(value))

    def by_plan(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        plan = plan_named(value)
        return queryset.filter(Q(plan=plan) | Q(application__in=plan.applications.all()))

    def by_state(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(ended_at__isnull=value == "open")
