"""Analytics use cases: consistency of test results and their nested findings, participants and action items."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from analytics.models import ActionItem, DRTestResult, TestFinding, TestParticipant
from core.exceptions import InvalidInput
from failover.models import FailoverExecution
from plans.models import DRPlan


def check_test_execution(plan: DRPlan, execution: FailoverExecution | None) -> None:
    """A test result may point at the execution that produced it, which must be of the same plan."""
    if execution is not None and execution.plan_id != plan.pk:
        raise InvalidInput(
            f"execution #{execution.pk} belongs to another plan, not '{plan.plan_id}'.", field="execution"
        )


def replace_test_result_contents(
    result: DRTestResult,
    *,
    findings: list[Mapping[str, Any]] | None = None,
    participants: list[Mapping[str, Any]] | None = None,
    action_items: list[Mapping[str, Any]] | None = None,
) -> None:
    """Replace-all semantics for a test result's nested lists; a list given as None is left unchanged."""
    with transaction.atomic():
        if findings is not None:
            result.findings.all().delete()
            TestFinding.objects.bulk_create([TestFinding(test_result=result, **f) for f in findings])
        if participants is not None:
            result.participants.all().delete()
            TestParticipant.objects.bulk_create([TestParticipant(test_result=result, **p) for p in participants])
        if action_items is not None:
            result.action_items.all().delete()
            ActionItem.objects.bulk_create([ActionItem(test_result=result, **a) for a in action_items])
    if hasattr(result, "_prefetched_objects_cache"):
        result._prefetched_objects_cache = {}
