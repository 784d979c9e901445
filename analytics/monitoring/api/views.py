"""Monitoring API: monitors (CRUD), the RTO/RPO picture, its history and the SLA violations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.monitoring import retention, status
from analytics.monitoring.api.serializers import (
    HistorySerializer,
    MonitorSerializer,
    RTORPOSerializer,
    ViolationSerializer,
)
from analytics.monitoring.choices import Metric, Resolution
from analytics.monitoring.filtersets import MonitorFilterSet, ViolationFilterSet, application_named, plan_named
from analytics.monitoring.models import Monitor, Probe, SLAViolation
from analytics.monitoring.violations import quarter_totals
from core.api.permissions import MethodPermissions
from core.api.renderers import FastJSONRenderer
from plans.api.auditing import NestedAuditedModelViewSet, PkOrSlugLookupMixin

READ = ["analytics.view_rtotarget", "analytics.view_monitor", "analytics.view_probesample"]
PERIOD_CHOICES = sorted(status.PERIODS, key=lambda name: status.PERIODS[name])
# The longest span each resolution answers (a year of raw samples is what the rollups are for).
MAX_SPAN = {
    Resolution.RAW: timedelta(days=7),
    Resolution.MINUTE: timedelta(days=7),
    Resolution.HOUR: timedelta(days=400),
    Resolution.DAY: timedelta(days=3660),
}
REPLICATION_METRICS = (Metric.RPO_SECONDS, Metric.LAG_BYTES)


class MonitorViewSet(PkOrSlugLookupMixin, NestedAuditedModelViewSet):
    """Monitors: probes (steps of read-only status actions) run on an interval for one application."""

    serializer_class = MonitorSerializer
    filterset_class = MonitorFilterSet
    slug_lookup_field = "slug"
    search_fields = ["slug", "description", "application__slug"]
    ordering_fields = ["slug", "application__slug", "created_at", "updated_at"]
    ordering = ["application__slug", "slug"]
    audit_nested = ("probes",)

    def get_queryset(self) -> models.QuerySet:
        return Monitor.objects.select_related("application", "plan", "created_by").prefetch_related("probes")

    def get_create_kwargs(self) -> dict[str, Any]:
        return {"created_by": self.request.user}


def _param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value or None  # an empty parameter is the same as none


def _choice(request: Request, name: str, choices: list[str], default: str | None) -> str | None:
    value = _param(request, name)
    if value is None:
        return default
    if value not in choices:
        raise ValidationError({name: [f"{value!r} is not one of {', '.join(choices)}."]})
    return value


def _moment(request: Request, name: str) -> datetime | None:
    value = _param(request, name)
    if value is None:
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None:
        raise ValidationError({name: [f"{value!r} is not an ISO 8601 date-time (e.g. 2026-01-31T12:00:00Z)."]})
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, timezone.get_current_timezone())


PLAN_PARAM = OpenApiParameter("plan", OpenApiTypes.STR, description="plan_id or numeric id (unknown: 400).")
APPLICATION_PARAM = OpenApiParameter(
    "application", OpenApiTypes.STR, description="Application slug or numeric id (unknown: 400)."
)
PERIOD_PARAM = OpenApiParameter("period", OpenApiTypes.STR, enum=PERIOD_CHOICES, description="Default 30d.")


class RTORPOView(APIView):
    permission_classes = [MethodPermissions]
    method_permissions = {"GET": READ}

    @extend_schema(
        summary="Per plan and application: RTO/RPO/availability targets against what is measured now",
        description=status.__doc__,
        parameters=[PLAN_PARAM, APPLICATION_PARAM, PERIOD_PARAM],
        responses=RTORPOSerializer,
    )
    def get(self, request: Request) -> Response:
        plan = plan_named(value) if (value := _param(request, "plan")) else None
        application = application_named(value) if (value := _param(request, "application")) else None
        period = _choice(request, "period", PERIOD_CHOICES, status.DEFAULT_PERIOD)
        return Response(RTORPOSerializer(status.overview(plan=plan, application=application, period=period)).data)


class HistoryView(APIView):
    permission_classes = [MethodPermissions]
    renderer_classes = [FastJSONRenderer, BrowsableAPIRenderer]  # up to 36,500 points: orjson writes them
    method_permissions = {"GET": READ}

    @extend_schema(
        summary="Time series of a metric per probe, from raw samples or rollups",
        description=(
            "`period` (a name, up to now) or `from`/`to` (ISO 8601; default: the last 24 h) choose the span; "
            "`resolution` raw, minute (raw samples, kept "
            f"{retention.RAW_RETENTION_DAYS} days), hour (hourly rollups, kept {retention.HOURLY_RETENTION_DAYS} "
            "days) or day (for ever); by default minute up to 2 days, hour up to 60, else day. "
            "rpo_seconds and lag_bytes come from replication probes, availability and latency_ms from every probe. "
            "Unknown plan, application, metric, resolution or period, a span longer than the resolution answers, "
            "`from` after `to`: 400 naming the parameter."
        ),
        parameters=[
            PLAN_PARAM,
            APPLICATION_PARAM,
            OpenApiParameter("metric", OpenApiTypes.STR, enum=list(Metric.values), description="Default rpo_seconds."),
            OpenApiParameter("resolution", OpenApiTypes.STR, enum=list(Resolution.values)),
            PERIOD_PARAM,
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start (inclusive)."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="End (exclusive); default now."),
        ],
        responses=HistorySerializer,
    )
    def get(self, request: Request) -> Response:
        plan = plan_named(value) if (value := _param(request, "plan")) else None
        application = application_named(value) if (value := _param(request, "application")) else None
        metric = _choice(request, "metric", list(Metric.values), Metric.RPO_SECONDS)
        resolution = _choice(request, "resolution", list(Resolution.values), None)
        period = _choice(request, "period", PERIOD_CHOICES, None)
        start, end = _moment(request, "from"), _moment(request, "to")
        if period is not None and (start is not None or end is not None):
            raise ValidationError({"period": ["Give a period or from/to, not both."]})
        now = timezone.now()
        end = end or now
        start = start or end - (status.PERIODS[period] if period else timedelta(hours=24))
        if start >= end:
            raise ValidationError({"from": ["Must be before `to`."]})
        span = end - start
        if resolution is None:
            resolution = (
                Resolution.MINUTE
                if span <= timedelta(days=2)
                else Resolution.HOUR
                if span <= timedelta(days=60)
                else Resolution.DAY
            )
        if span > MAX_SPAN[resolution]:
            raise ValidationError(
                {"resolution": [f"{resolution} answers at most {MAX_SPAN[resolution].days} days; ask a coarser one."]}
            )
        probes = Probe.objects.select_related("monitor__application", "monitor__plan")
        if plan is not None:
            probes = probes.filter(models.Q(monitor__plan=plan) | models.Q(monitor__application__plans=plan)).distinct()
        if application is not None:
            probes = probes.filter(monitor__application=application)
        if metric in REPLICATION_METRICS:
            probes = probes.filter(models.Q(action__startswith="postgres.") | models.Q(action__startswith="redis."))
        probes = list(probes.order_by("monitor__application__slug", "monitor__slug", "key"))
        points = retention.series([p.pk for p in probes], metric, resolution, start, end)
        series = [
            {
                "monitor": p.monitor.slug,
                "probe": p.key,
                "action": p.action,
                "application": p.monitor.application.slug,
                "plan": p.monitor.plan.plan_id if p.monitor.plan else None,
                "points": points.get(p.pk, []),
            }
            for p in probes
        ]
        body = {
            "metric": metric,
            "resolution": resolution,
            "start": start,
            "end": end,
            "columns": retention.columns(metric, resolution),
            "series": series,
        }
        # Rendered as HistorySerializer describes it, without a serializer per point (a year of 100 series
        # at daily resolution is 36,500 points).
        return Response({**body, "start": _iso(start), "end": _iso(end)})


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ViolationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """SLA violations, newest first, with the breaches of their application this quarter and their penalties."""

    serializer_class = ViolationSerializer
    filterset_class = ViolationFilterSet
    ordering_fields = ["started_at", "ended_at", "worst_value", "penalty"]
    ordering = ["-started_at", "-id"]
    search_fields: list[str] = []

    def get_queryset(self) -> models.QuerySet:
        return SLAViolation.objects.select_related("plan", "application")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        rows = page if page is not None else list(queryset)
        totals = quarter_totals({v.application_id for v in rows if v.application_id is not None})
        data = self.get_serializer(rows, many=True, context={**self.get_serializer_context(), "totals": totals}).data
        return self.get_paginated_response(data) if page is not None else Response(data)
