"""Who may read and write business processes (authors: approver and admin), through the shared matrix."""

from __future__ import annotations

from decimal import Decimal

import pytest

from analytics.models import BusinessProcess
from plans.tests.factories import make_app
from plans.tests.matrix import (
    METHODS,
    READ_EXPECTATIONS,
    ROLE_EXPECTATIONS,
    Resource,
    check_body_rejections,
    check_read,
    check_write,
)


def _make() -> BusinessProcess:
    process = BusinessProcess.objects.create(name="Shop", revenue_per_hour=Decimal("1000"))
    process.applications.set([make_app("web")])
    return process


def _payload(name: str) -> dict:
    return {
        "name": name,
        "revenue_per_hour": "500.00",
        "applications": ["web"],
        "cost_curve": [{"from_hours": 0, "multiplier": 1}, {"from_hours": 4, "multiplier": 2}],
    }


RESOURCE = Resource(
    url="/api/v1/dr/business-processes",
    make=_make,
    create=lambda _: _payload("Billing"),
    put=lambda _: _payload("Shop online"),
    patch={"employees": 12},
    counted=[BusinessProcess],
)


@pytest.mark.parametrize(("role", "expected"), ROLE_EXPECTATIONS)
@pytest.mark.parametrize("method", METHODS)
def test_write_matrix(api_for, method, role, expected):
    check_write(api_for(role), RESOURCE, method, expected)


@pytest.mark.parametrize(("role", "expected"), READ_EXPECTATIONS)
def test_read_matrix(api_for, role, expected):
    check_read(api_for(role), RESOURCE, expected)


def test_malformed_and_oversized_bodies_change_nothing(api_for):
    check_body_rejections(api_for("admin"), RESOURCE)
