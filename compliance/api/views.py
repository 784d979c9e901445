"""Compliance API: generated reports, read-only."""

from __future__ import annotations

from django.db import models

from compliance import selectors
from compliance.api.serializers import ComplianceReportSerializer
from compliance.filtersets import ComplianceReportFilterSet
from core.api.viewsets import ReadOnlyModelViewSet


class ComplianceReportViewSet(ReadOnlyModelViewSet):
    """Compliance reports per framework and period, with requirement-level evidence."""

    serializer_class = ComplianceReportSerializer
    filterset_class = ComplianceReportFilterSet
    search_fields = ["summary", "scope_links__plan__plan_id", "requirements__requirement_id"]
    ordering_fields = ["period_end", "period_start", "framework", "generated_at"]
    ordering = ["-period_end", "framework", "id"]

    def get_queryset(self) -> models.QuerySet:
        return selectors.report_list()
