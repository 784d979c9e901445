"""django-filter FilterSets for the compliance API."""

from __future__ import annotations

import django_filters

from compliance.choices import OverallStatus
from compliance.models import ComplianceReport
from core.filtersets import BooleanFilter, IntegerFilter, StrictFilterSet
from plans.choices import ComplianceFramework


class ComplianceReportFilterSet(StrictFilterSet):
    framework = django_filters.MultipleChoiceFilter(choices=ComplianceFramework.choices)
    overall_status = django_filters.MultipleChoiceFilter(choices=OverallStatus.choices)
    plan = IntegerFilter(field_name="scope_links__plan", help_text="Reports covering this plan (id).")
    plan_slug = django_filters.CharFilter(
        field_name="scope_links__plan__plan_id", help_text="Reports covering this plan (plan_id)."
    )
    attested = BooleanFilter(field_name="attested_at", lookup_expr="isnull", exclude=True)
    period = django_filters.DateFromToRangeFilter(
        field_name="period_end", help_text="period_after / period_before: reports whose period ends in the range."
    )

    class Meta:
        model = ComplianceReport
        fields = ["framework", "overall_status"]
