"""Filters for the runbook API."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from core.filtersets import StrictFilterSet
from runbooks.choices import RunbookCategory, VersionStatus
from runbooks.models import Runbook


class RunbookFilterSet(StrictFilterSet):
    """Category and application are those of each runbook's current version (runbooks.selectors)."""

    category = django_filters.ChoiceFilter(choices=RunbookCategory.choices, field_name="category")
    application = django_filters.CharFilter(field_name="application_slug", label="Application slug")
    status = django_filters.ChoiceFilter(
        choices=VersionStatus.choices, method="filter_status", label="Has a version in this status"
    )

    class Meta:
        model = Runbook
        fields = ["status"]

    def filter_status(self, queryset: QuerySet[Runbook], name: str, value: str) -> QuerySet[Runbook]:
        return queryset.filter(versions__status=value).distinct()
