"""Small explicit factories for analytics models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from analytics.models import DRTestResult, ImpactAnalysis, RTOTarget
from plans.models import Application, DRPlan


def make_target(application: Application, **extra: Any) -> RTOTarget:
    values: dict[str, Any] = {
        "tier": 1,
        "rto_target_seconds": 900,
        "rpo_target_seconds": 60,
        "sla_breach_threshold_seconds": 1800,
    }
    values.update(extra)
    return RTOTarget.objects.create(application=application, **values)


def make_result(
    plan: DRPlan, *, outcome: str = "passed", test_date: datetime | None = None, **extra: Any
) -> DRTestResult:
    values: dict[str, Any] = {
        "test_date": test_date or timezone.now(),
        "outcome": outcome,
        "target_rto_seconds": plan.rto_seconds,
        "target_rpo_seconds": plan.rpo_seconds,
    }
    values.update(extra)
    return DRTestResult.objects.create(plan=plan, **values)


def make_impact(plan: DRPlan | None = None, scenario: str = "Primary DC loss", **extra: Any) -> ImpactAnalysis:
    return ImpactAnalysis.objects.create(plan=plan, scenario=scenario, **extra)
