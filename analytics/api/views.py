"""Analytics API: RTO targets, DR test results, impact analyses."""

from __future__ import annotations

from typing import Any

from django.db import models
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import outcomes, selectors
from analytics.api.serializers import (
    ComplianceSerializer,
    DRTestResultSerializer,
    ImpactAnalysisSerializer,
    RTOTargetSerializer,
)
from analytics.filtersets import DRTestResultFilterSet, ImpactAnalysisFilterSet, RTOTargetFilterSet
from core.api.permissions import MethodPermissions
from plans.api.auditing import NestedAuditedModelViewSet


class RTOTargetViewSet(NestedAuditedModelViewSet):
    """Recovery targets per application; current values are writable until measured automatically."""

    serializer_class = RTOTargetSerializer
    filterset_class = RTOTargetFilterSet
    search_fields = ["application__slug", "application__name"]
    ordering_fields = ["tier", "application__slug", "rto_target_seconds", "current_rto_seconds", "updated_at"]
    ordering = ["tier", "application__slug"]

    def get_queryset(self) -> models.QuerySet:
        return selectors.rto_target_list()


class DRTestResultViewSet(NestedAuditedModelViewSet):
    """DR test results with findings, participants and action items (replace-all on PUT)."""

    serializer_class = DRTestResultSerializer
    filterset_class = DRTestResultFilterSet
    search_fields = ["summary", "lessons_learned", "plan__plan_id", "plan__name"]
    ordering_fields = ["test_date", "outcome", "actual_rto_seconds", "actual_rpo_seconds", "created_at"]
    ordering = ["-test_date", "-id"]
    audit_nested = ("findings", "participants", "action_items")

    def get_queryset(self) -> models.QuerySet:
        return selectors.test_result_list()

    def get_create_kwargs(self) -> dict[str, Any]:
        return {"recorded_by": self.request.user}


class ImpactAnalysisViewSet(NestedAuditedModelViewSet):
    """Business impact analyses: financial, operational, reputational and regulatory."""

    serializer_class = ImpactAnalysisSerializer
    filterset_class = ImpactAnalysisFilterSet
    search_fields = ["scenario", "description", "plan__plan_id"]
    ordering_fields = ["scenario", "created_at", "updated_at", "downtime_cost_24h", "estimated_fines"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self) -> models.QuerySet:
        return selectors.impact_analysis_list()

    def get_create_kwargs(self) -> dict[str, Any]:
        return {"created_by": self.request.user}


class TestComplianceView(APIView):
    permission_classes = [MethodPermissions]
    method_permissions = {"GET": ["plans.view_drplan", "failover.view_failoverexecution"]}

    @extend_schema(
        summary="Per plan, over the last 12 months: tests required by its frequency, done and passed",
        responses=ComplianceSerializer,
    )
    def get(self, request: Request) -> Response:
        return Response(ComplianceSerializer({"plans": outcomes.test_compliance()}).data)
