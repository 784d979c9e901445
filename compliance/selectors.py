"""Reused reads for compliance reports."""

from __future__ import annotations

from django.db.models import QuerySet

from compliance.models import ComplianceReport


def report_list() -> QuerySet[ComplianceReport]:
    return ComplianceReport.objects.select_related("plan", "attested_by").prefetch_related("requirements")
