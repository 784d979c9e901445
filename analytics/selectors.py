"""Reused reads for analytics: the querysets the API lists, with every relation it renders."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from analytics.models import DRTestResult, ImpactAnalysis, RTOTarget, TestParticipant


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
