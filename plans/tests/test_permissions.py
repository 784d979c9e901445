"""Who may read and write sites, applications, plans and recovery strategies."""

from __future__ import annotations

import pytest

from plans.models import Application, ApplicationDependency, DRPlan, RecoveryStrategy, Site, StrategyStep
from plans.tests.factories import make_app, make_plan, make_site, make_strategy
from plans.tests.matrix import (
    METHODS,
    READ_EXPECTATIONS,
    ROLE_EXPECTATIONS,
    Resource,
    check_body_rejections,
    check_read,
    check_write,
)


def _plan_payload(plan_id: str) -> dict:
    return {"plan_id": plan_id, "name": "Orders DR", "rto_seconds": 600, "rpo_seconds": 30, "status": "active"}


def _strategy_payload(strategy: RecoveryStrategy) -> dict:
    return {
        "plan": strategy.plan_id,
        "name": "Another",
        "kind": "failback",
        "steps": [{"action": "Reverse replication"}],
        "conditions": [{"kind": "prerequisite", "description": "Primary healthy"}],
    }


RESOURCES = {
    "sites": Resource(
        url="/api/v1/dr/sites",
        make=lambda: make_site("fra1"),
        create=lambda _: {"code": "ams1", "name": "Amsterdam"},
        put=lambda _: {"code": "fra1", "name": "Frankfurt", "kind": "colocation"},
        patch={"location": "Frankfurt am Main"},
        counted=[Site],
    ),
    "applications": Resource(
        url="/api/v1/dr/applications",
        make=lambda: make_app("orders-api", depends_on=(make_app("orders-db"),)),
        create=lambda _: {"slug": "billing", "name": "Billing", "depends_on": ["orders-db"]},
        put=lambda _: {"slug": "orders-api", "name": "Orders", "tier": 1, "depends_on": []},
        patch={"owner": "Team Orders"},
        counted=[Application, ApplicationDependency],
    ),
    "plans": Resource(
        url="/api/v1/dr/plans",
        make=lambda: make_plan("orders-dr"),
        create=lambda _: _plan_payload("billing-dr"),
        put=lambda _: _plan_payload("orders-dr"),
        patch={"status": "archived"},
        counted=[DRPlan],
    ),
    "recovery-strategies": Resource(
        url="/api/v1/dr/recovery-strategies",
        make=lambda: make_strategy(make_plan("orders-dr")),
        create=_strategy_payload,
        put=_strategy_payload,
        patch={"description": "Updated"},
        counted=[RecoveryStrategy, StrategyStep],
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
