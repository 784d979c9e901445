"""Plan API: sites, applications (dependency map), DR plans, recovery strategies."""

from __future__ import annotations

from typing import Any

from django.db import models
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.settings import api_settings

from core import audit
from core.api.renderers import FastJSONRenderer
from plans import selectors, services
from plans.api.auditing import NestedAuditedModelViewSet, PkOrSlugLookupMixin
from plans.api.filtering import UsedFiltersBackend
from plans.api.serializers import (
    ApplicationSerializer,
    DRPlanDetailSerializer,
    DRPlanSerializer,
    DRPlanSummarySerializer,
    RecoveryStrategySerializer,
    SiteSerializer,
)
from plans.filtersets import ApplicationFilterSet, DRPlanFilterSet, RecoveryStrategyFilterSet, SiteFilterSet
from plans.models import Application, DRPlan, Site

CONFLICT = OpenApiResponse(description="The object is still referenced (`conflict`).")


@extend_schema_view(destroy=extend_schema(responses={204: None, 409: CONFLICT}))
class SiteViewSet(PkOrSlugLookupMixin, NestedAuditedModelViewSet):
    """Datacenters, cloud regions and colocation facilities. `{id}` is the id or the site code."""

    queryset = Site.objects.all()
    serializer_class = SiteSerializer
    slug_lookup_field = "code"
    lookup_description = "Numeric id or site code."
    filterset_class = SiteFilterSet
    search_fields = ["code", "name", "location"]
    ordering_fields = ["code", "name", "kind", "created_at"]
    ordering = ["code"]


class ApplicationViewSet(PkOrSlugLookupMixin, NestedAuditedModelViewSet):
    """Protected applications and their dependency map. `{id}` is the id or the slug."""

    queryset = Application.objects.none()
    serializer_class = ApplicationSerializer
    slug_lookup_field = "slug"
    lookup_description = "Numeric id or application slug."
    filterset_class = ApplicationFilterSet
    search_fields = ["slug", "name", "owner", "description"]
    ordering_fields = ["slug", "name", "tier", "created_at"]
    ordering = ["tier", "slug"]

    def get_queryset(self) -> models.QuerySet[Application]:
        return selectors.application_list()

    def audit_snapshot(self, instance: models.Model) -> dict[str, Any]:
        data = audit.snapshot(instance)
        data["depends_on"] = sorted(instance.depends_on.values_list("slug", flat=True))
        return data

    @extend_schema(
        summary="Recovery order",
        description="Every application this one transitively depends on, dependencies first.",
        responses=ApplicationSerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def dependencies(self, request: Request, pk: str | None = None) -> Response:
        application = self.get_object()
        ordered = selectors.recovery_order(application)
        prefetched = {a.pk: a for a in selectors.application_list().filter(pk__in=[a.pk for a in ordered])}
        serializer = self.get_serializer([prefetched[a.pk] for a in ordered], many=True)
        return Response(serializer.data)


@extend_schema_view(
    destroy=extend_schema(
        description="Plans with executions, test results or compliance reports cannot be deleted (409): "
        "archive them instead.",
        responses={204: None, 409: CONFLICT},
    )
)
class DRPlanViewSet(PkOrSlugLookupMixin, NestedAuditedModelViewSet):
    """DR plans with derived testing statistics. `{id}` is the numeric id or the plan_id slug.

    The list shows each plan's summary (targets, strategy, test statistics); `/plans/{id}` the whole plan.
    """

    queryset = DRPlan.objects.none()
    serializer_class = DRPlanSerializer
    slug_lookup_field = "plan_id"
    lookup_description = "Numeric id or plan_id."
    filterset_class = DRPlanFilterSet
    filter_backends = [UsedFiltersBackend, SearchFilter, OrderingFilter]  # settings' backends, the first lighter
    search_fields = ["plan_id", "name", "description"]
    ordering_fields = [
        "plan_id",
        "name",
        "status",
        "rto_seconds",
        "rpo_seconds",
        "created_at",
        "updated_at",
        "last_test_date",
        "next_test_due",
        "success_rate",
    ]
    ordering = ["plan_id"]

    STATISTICS_ORDERING = frozenset({"last_test_date", "next_test_due", "success_rate"})

    def get_queryset(self) -> models.QuerySet[DRPlan]:
        if self.action == "list":
            terms = self.request.query_params.get(api_settings.ORDERING_PARAM, "").split(",")
            ordered_by_statistic = any(term.strip().lstrip("-") in self.STATISTICS_ORDERING for term in terms)
            return selectors.plan_summary_rows(with_statistics=ordered_by_statistic)
        return selectors.plan_list()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # A page of plan summaries; their statistics in one query for the page (selectors.add_plan_statistics).
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        rows = selectors.add_plan_statistics(list(page))
        return self.get_paginated_response(DRPlanSummarySerializer.represent(rows))

    def get_renderers(self) -> list[BaseRenderer]:
        # The list's page through orjson (the same JSON as DRF's renderer, core/api/renderers.py).
        if self.action == "list":
            return [FastJSONRenderer(), *(r for r in super().get_renderers() if not isinstance(r, JSONRenderer))]
        return super().get_renderers()

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "list":
            return DRPlanSummarySerializer
        return DRPlanDetailSerializer if self.action == "retrieve" else DRPlanSerializer

    def get_create_kwargs(self) -> dict[str, Any]:
        return {"created_by": self.request.user}

    def perform_create(self, serializer: BaseSerializer) -> None:
        super().perform_create(serializer)
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)  # with derived stats

    def perform_destroy(self, instance: DRPlan) -> None:
        services.ensure_plan_deletable(instance)
        super().perform_destroy(instance)


class RecoveryStrategyViewSet(NestedAuditedModelViewSet):
    """Recovery strategies with ordered steps, conditions and validation checks (replace-all on PUT)."""

    queryset = selectors.strategy_list()
    serializer_class = RecoveryStrategySerializer
    filterset_class = RecoveryStrategyFilterSet
    search_fields = ["name", "description", "plan__plan_id"]
    ordering_fields = ["name", "kind", "created_at", "plan__plan_id"]
    ordering = ["plan__plan_id", "kind", "name"]
    audit_nested = ("steps", "conditions", "validation_checks")
