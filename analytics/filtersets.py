"""django-filter FilterSets for the analytics API."""

from __future__ import annotations

import django_filters

from analytics.choices import Level, TestOutcome, TestType, Trend
from analytics.models import BusinessProcess, DRTestResult, ImpactAnalysis, RTOTarget
from core.filtersets import StrictFilterSet
from plans.choices import Tier


class RTOTargetFilterSet(StrictFilterSet):
    tier = django_filters.MultipleChoiceFilter(choices=Tier.choices)
    application = django_filters.CharFilter(field_name="application__slug", help_text="Application slug.")
    trend = django_filters.MultipleChoiceFilter(choices=Trend.choices)

    class Meta:
        model = RTOTarget
        fields = ["tier", "application", "trend"]


class DRTestResultFilterSet(StrictFilterSet):
    outcome = django_filters.MultipleChoiceFilter(choices=TestOutcome.choices)
    test_type = django_filters.MultipleChoiceFilter(choices=TestType.choices)
    plan_slug = django_filters.CharFilter(field_name="plan__plan_id", help_text="Plan slug (plan_id).")
    test_date = django_filters.DateFromToRangeFilter(
        help_text="Use test_date_after / test_date_before (YYYY-MM-DD, inclusive)."
    )

    class Meta:
        model = DRTestResult
        fields = ["plan", "outcome", "test_type", "test_date", "execution"]


class ImpactAnalysisFilterSet(StrictFilterSet):
    plan_slug = django_filters.CharFilter(field_name="plan__plan_id", help_text="Plan slug (plan_id).")
    media_exposure = django_filters.MultipleChoiceFilter(choices=Level.choices)
    brand_damage = django_filters.MultipleChoiceFilter(choices=Level.choices)

    class Meta:
        model = ImpactAnalysis
        fields = ["plan", "customer_sentiment", "media_exposure", "brand_damage"]


class BusinessProcessFilterSet(StrictFilterSet):
    criticality = django_filters.MultipleChoiceFilter(choices=Level.choices)
    application = django_filters.CharFilter(
        field_name="applications__slug", distinct=True, help_text="Processes that need this application (slug)."
    )

    class Meta:
        model = BusinessProcess
        fields = ["criticality", "application"]
