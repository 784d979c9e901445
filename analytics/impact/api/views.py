"""Business impact API: business processes (CRUD), impact analyses computed from a scenario, what-if."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.filtersets import BusinessProcessFilterSet
from analytics.impact import services
from analytics.impact.api.serializers import (
    BusinessProcessSerializer,
    ImpactAnalysisRequestSerializer,
    ImpactAnalysisResultSerializer,
    ScenarioRequestSerializer,
    ScenarioResultSerializer,
)
from analytics.models import BusinessProcess
from analytics.selectors import impact_analysis_list
from core import audit
from core.api.permissions import MethodPermissions
from core.api.schema import AutoSchema
from core.api.viewsets import AuditedModelViewSet

VIEW = ["analytics.view_impactanalysis", "analytics.view_businessprocess", "plans.view_application"]


class BodyRequiredSchema(AutoSchema):
    """A request body whose fields are each optional but which names something (the what-if: a site or
    applications): the schema says the body is required, as the server does."""

    def _get_request_body(self, direction: str = "request") -> dict[str, Any] | None:
        body = super()._get_request_body(direction)
        if body:
            body["required"] = True
        return body


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
    return request.data


class BusinessProcessViewSet(AuditedModelViewSet):
    """Business processes: revenue, people, frameworks, the applications they need, their cost model."""

    queryset = BusinessProcess.objects.prefetch_related("applications")
    serializer_class = BusinessProcessSerializer
    search_fields = ["name", "description", "owner"]
    ordering_fields = ["name", "criticality", "revenue_per_hour", "customers", "employees", "updated_at"]
    ordering = ["name"]
    filterset_class = BusinessProcessFilterSet

    def get_queryset(self) -> models.QuerySet:
        return BusinessProcess.objects.prefetch_related("applications")


class ImpactAnalysisComputeView(APIView):
    permission_classes = [MethodPermissions]
    method_permissions = {"POST": ["analytics.add_impactanalysis", *VIEW]}

    @extend_schema(
        summary="Compute and store the business impact of a scenario on a plan",
        description="Loses the site, the applications, or (neither) the plan's applications; prices it with the "
        "business processes' cost models (analytics/impact/services.py documents every figure).",
        request=ImpactAnalysisRequestSerializer,
        responses={201: ImpactAnalysisResultSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = ImpactAnalysisRequestSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        analysis = services.analyse(
            plan=data["plan"],
            scenario_name=data["scenario"],
            description=data["description"],
            site=data.get("site"),
            applications=data.get("applications"),
            at=data.get("at"),
            actor=request.user,
            auth_method=audit.auth_method_of(request),
        )
        return Response(ImpactAnalysisResultSerializer(analysis).data, status=status.HTTP_201_CREATED)


class ImpactAnalysisDetailView(APIView):
    permission_classes = [MethodPermissions]
    method_permissions = {"GET": ["analytics.view_impactanalysis"]}

    @extend_schema(
        summary="An impact analysis with its inputs and working",
        parameters=[OpenApiParameter("pk", int, OpenApiParameter.PATH, description="The analysis id.")],
        responses=ImpactAnalysisResultSerializer,
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(ImpactAnalysisResultSerializer(get_object_or_404(impact_analysis_list(), pk=pk)).data)


class ScenarioView(APIView):
    permission_classes = [MethodPermissions]
    schema = BodyRequiredSchema()
    method_permissions = {"POST": VIEW}

    @extend_schema(
        summary="What-if: what goes down, when it recovers, what it costs, under every strategy",
        description="Stores nothing. Recovery times per application name their source (ml, history, strategy, "
        "target, unplanned); strategies are priced with the factors of analytics/impact/figures.yaml.",
        request=ScenarioRequestSerializer,
        responses=ScenarioResultSerializer,
    )
    def post(self, request: Request) -> Response:
        serializer = ScenarioRequestSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        scenario = services.build_scenario(
            site=data.get("site"), applications=data.get("applications"), plan=data.get("plan"), at=data.get("at")
        )
        return Response(services.what_if(scenario))
