"""Who may read and write RTO targets, test results and impact analyses."""

from __future__ import annotations

import pytest

from analytics.models import ActionItem, DRTestResult, ImpactAnalysis, RTOTarget
from analytics.tests.factories import make_impact, make_result, make_target
from plans.models import DRPlan
from plans.tests.factories import make_app, make_plan
from plans.tests.matrix import (
    METHODS,
    READ_EXPECTATIONS,
    ROLE_EXPECTATIONS,
    Resource,
    check_body_rejections,
    check_read,
    check_write,
)


def _make_result() -> DRTestResult:
    result = make_result(make_plan("orders-dr"))
    result.action_items.create(description="Fix DNS TTL", assignee="ops")
    return result


def _result_payload(result: DRTestResult) -> dict:
    return {
        "plan": result.plan_id,
        "test_date": "2025-05-01T08:00:00Z",
        "outcome": "failed",
        "target_rto_seconds": 600,
        "target_rpo_seconds": 60,
        "action_items": [{"description": "Retest", "assignee": "ops"}],
    }


def _target_payload(slug: str) -> dict:
    return {
        "application": slug,
        "tier": 2,
        "rto_target_seconds": 1200,
        "rpo_target_seconds": 120,
        "sla_breach_threshold_seconds": 2400,
    }


def _make_target() -> RTOTarget:
    make_app("billing")
    return make_target(make_app("orders-api"))


RESOURCES = {
    "rto-targets": Resource(
        url="/api/v1/dr/rto-targets",
        make=_make_target,
        create=lambda _: _target_payload("billing"),
        put=lambda _: _target_payload("orders-api"),
        patch={"current_rto_seconds": 700},
        counted=[RTOTarget],
    ),
    "test-results": Resource(
        url="/api/v1/dr/test-results",
        make=_make_result,
        create=_result_payload,
        put=_result_payload,
        patch={"summary": "Reviewed"},
        counted=[DRTestResult, ActionItem],
    ),
    "impact-analyses": Resource(
        url="/api/v1/dr/impact-analyses",
        make=lambda: make_impact(make_plan("orders-dr")),
        create=lambda obj: {"plan": obj.plan_id, "scenario": "Ransomware", "estimated_fines": "1000.00"},
        put=lambda obj: {"plan": None, "scenario": "Flood"},
        patch={"affected_customers": 10},
        counted=[ImpactAnalysis, DRPlan],
    ),
}


@pytest.mark.parametrize(("role", "expected"), ROLE_EXPECTATIONS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", RESOURCES)
def test_write_matrix(api_for, name, method, role, expected):
    check_write(api_for(role), RESOURCES[name], method, expected)


@pytest.mark.parametrize(("role", "expected"), READ_EXPECTATIONS)
@pytest.mark.parametrize("name", RESOURCES)
def test_read_matrix(api_for, name, role, expected):
    check_read(api_for(role), RESOURCES[name], expected)


@pytest.mark.parametrize("name", RESOURCES)
def test_malformed_and_oversized_bodies_change_nothing(api_for, name):
    check_body_rejections(api_for("admin"), RESOURCES[name])
