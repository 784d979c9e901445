"""Failover API: executions and their evidence, read-only (running them is a later issue)."""

from __future__ import annotations

from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from core.api.viewsets import ReadOnlyModelViewSet
from failover import selectors
from failover.api.serializers import (
    ExecutionEventSerializer,
    FailoverExecutionDetailSerializer,
    FailoverExecutionSerializer,
)
from failover.filtersets import FailoverExecutionFilterSet


class FailoverExecutionViewSet(ReadOnlyModelViewSet):
    """Failovers, failbacks, DR tests and runbook runs. The list is a summary; the detail adds
    step runs and validation results."""

    filterset_class = FailoverExecutionFilterSet
    search_fields = ["trigger_reason", "plan__plan_id", "runbook_version__runbook__slug"]
    ordering_fields = ["triggered_at", "started_at", "finished_at", "status", "actual_rto_seconds"]
    ordering = ["-triggered_at", "-id"]

    def get_queryset(self) -> models.QuerySet:
        if self.action == "retrieve":
            return selectors.execution_detail()
        return selectors.execution_list()

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "retrieve":
            return FailoverExecutionDetailSerializer
        if self.action == "events":
            return ExecutionEventSerializer
        return FailoverExecutionSerializer

    @extend_schema(
        summary="Events of an execution",
        description="Events with seq greater than `after`, in order (paginated): backfill after a reconnect.",
        parameters=[
            OpenApiParameter("after", OpenApiTypes.INT, description="Last seq already seen (default 0)."),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("page_size", OpenApiTypes.INT),
        ],
        responses=ExecutionEventSerializer(many=True),
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def events(self, request: Request, pk: str | None = None) -> Response:
        execution = self.get_object()
        raw = request.query_params.get("after", "0") or "0"
        try:
            after = int(raw)
        except ValueError:
            raise ValidationError({"after": [f"'{raw}' is not a sequence number."]}) from None
        if after < 0:
            raise ValidationError({"after": ["Must be 0 or greater."]})
        page = self.paginate_queryset(selectors.events_after(execution, after))
        return self.get_paginated_response(ExecutionEventSerializer(page, many=True).data)
