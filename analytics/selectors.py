"""Reused reads for analytics: the querysets the API lists, with every relation it renders, and plans
with their latest measured RTO/RPO."""

from __future__ import annotations

from django.db.models import FloatField, OuterRef, Prefetch, QuerySet, Subquery

from analytics.models import DRTestResult, ImpactAnalysis, RTOTarget, TestParticipant
from plans.models import DRPlan
from plans.selectors import plans_with_stats


def rto_target_list() -> QuerySet[RTOTarget]:
    return RTOTarget.objects.select_related("application")


def test_result_list() -> QuerySet[DRTestResult]:
    return DRTestResult.objects.select_related("plan", "recorded_by").prefetch_related(
        "findings",
        Prefetch("participants", queryset=TestParticipant.objects.select_related("user")),
        "action_items",
    )


def impact_analysis_list() -> QuerySet[ImpactAnalysis]:
    return ImpactAnalysis.objects.select_related("plan", "created_by")


def plans_with_last_measured(queryset: QuerySet[DRPlan] | None = None) -> QuerySet[DRPlan]:
    """plans_with_stats plus the latest test result's measurements: last_rto_seconds, last_rpo_seconds
    (null when the latest test did not measure them or there is no test)."""
    latest = DRTestResult.objects.filter(plan=OuterRef("pk")).order_by("-test_date", "-pk")
    return plans_with_stats(queryset).annotate(
        last_rto_seconds=Subquery(latest.values("actual_rto_seconds")[:1], output_field=FloatField()),
        last_rpo_seconds=Subquery(latest.values("actual_rpo_seconds")[:1], output_field=FloatField()),
    )
