"""django-filter FilterSets for the plan API."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from core.filtersets import StrictFilterSet
from plans.choices import ComplianceStatus, PlanStatus, StrategyKind, StrategyType, TestFrequency, Tier
from plans.models import Application, DRPlan, RecoveryStrategy, Site


class SiteFilterSet(StrictFilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=Site.Kind.choices)

    class Meta:
        model = Site
        fields = ["kind", "code"]


class ApplicationFilterSet(StrictFilterSet):
    tier = django_filters.MultipleChoiceFilter(choices=Tier.choices)
    site = django_filters.CharFilter(field_name="site__code", help_text="Site code.")
    depends_on = django_filters.CharFilter(method="filter_depends_on", help_text="Slug of a direct dependency.")

    class Meta:
        model = Application
        fields = ["tier", "site", "owner"]

    def filter_depends_on(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(pk__in=Application.objects.filter(depends_on__slug=value).values("pk"))


class DRPlanFilterSet(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=PlanStatus.choices)
    strategy = django_filters.MultipleChoiceFilter(choices=StrategyType.choices)
    test_frequency = django_filters.MultipleChoiceFilter(choices=TestFrequency.choices)
    compliance_status = django_filters.MultipleChoiceFilter(choices=ComplianceStatus.choices)
    # Multi-valued relations are filtered through a pk subquery so the stats annotations are not multiplied.
    application = django_filters.CharFilter(method="filter_application", help_text="Application slug in scope.")
    site = django_filters.CharFilter(method="filter_site", help_text="Site code in scope, primary or DR.")
    primary_site = django_filters.CharFilter(field_name="primary_site__code")
    dr_site = django_filters.CharFilter(field_name="dr_site__code")

    class Meta:
        model = DRPlan
        fields = ["status", "strategy", "test_frequency", "compliance_status", "failover_mode", "replication_mode"]

    def filter_application(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(pk__in=DRPlan.objects.filter(applications__slug=value).values("pk"))

    def filter_site(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        ids = DRPlan.objects.filter(sites__code=value).values("pk")
        return queryset.filter(Q(pk__in=ids) | Q(primary_site__code=value) | Q(dr_site__code=value))


class RecoveryStrategyFilterSet(StrictFilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=StrategyKind.choices)
    plan_slug = django_filters.CharFilter(field_name="plan__plan_id", help_text="Plan slug (plan_id).")

    class Meta:
        model = RecoveryStrategy
        fields = ["plan", "kind", "rollback_trigger"]
