"""Reused reads for compliance reports."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from compliance.models import ComplianceReport, ComplianceReportPlan


def report_list() -> QuerySet[ComplianceReport]:
    return ComplianceReport.objects.select_related("attested_by", "created_by").prefetch_related(
        "requirements",
        Prefetch("scope_links", queryset=ComplianceReportPlan.objects.select_related("plan").order_by("plan__plan_id")),
    )
