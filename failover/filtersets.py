"""django-filter FilterSets for the failover API."""

from __future__ import annotations

import django_filters

from core.filtersets import StrictFilterSet
from failover.choices import ExecutionStatus, ExecutionType, TriggerType
from failover.models import FailoverExecution


class FailoverExecutionFilterSet(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=ExecutionStatus.choices)
    execution_type = django_filters.MultipleChoiceFilter(choices=ExecutionType.choices)
    trigger_type = django_filters.MultipleChoiceFilter(choices=TriggerType.choices)
    plan_slug = django_filters.CharFilter(field_name="plan__plan_id", help_text="Plan slug (plan_id).")
    triggered_at = django_filters.DateFromToRangeFilter(help_text="triggered_at_after / triggered_at_before.")

    class Meta:
        model = FailoverExecution
        fields = ["plan", "status", "execution_type", "trigger_type", "dry_run", "runbook_version"]
