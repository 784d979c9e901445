"""Small explicit factories for compliance reports."""

from __future__ import annotations

from datetime import date
from typing import Any

from compliance.models import ComplianceReport, ComplianceReportPlan
from plans.models import DRPlan


def make_report(plan: DRPlan | None = None, *, framework: str = "sox", **extra: Any) -> ComplianceReport:
    values: dict[str, Any] = {
        "period_start": date(2025, 1, 1),
        "period_end": date(2025, 3, 31),
        "overall_status": "compliant",
        "tests_required": 1,
        "tests_performed": 1,
        "tests_passed": 1,
    }
    values.update(extra)
    report = ComplianceReport.objects.create(framework=framework, all_plans=plan is None, **values)
    if plan is not None:
        ComplianceReportPlan.objects.create(report=report, plan=plan)
    report.requirements.create(requirement_id="CP-4", title="Contingency plan testing", status="met")
    report.requirements.create(requirement_id="CP-2", title="Contingency plan", status="partial", gaps="Owner missing")
    return report
