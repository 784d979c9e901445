"""The what-if scenario and the impact analysis on the demo organisation (seed_demo's Northwind Retail)."""

from __future__ import annotations

import statistics
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.impact import estimates
from analytics.models import BusinessProcess, DRTestResult
from drplan import wiring
from drplan.management.commands.seed_demo import Seeder, load_demo_data
from plans import costs

pytestmark = pytest.mark.django_db
SCENARIO = "/api/v1/dr/impact-analysis/scenario"
AT = "2026-12-01T14:00:00Z"  # a Tuesday, 2 pm
EVERY_PROCESS = [
    "Customer login",
    "Invoicing",
    "Online ordering",
    "Payments",
    "Sales reporting",
    "Warehouse dispatch",
]


@pytest.fixture
def demo(users):
    estimates.install(None)  # no ML service: the history decides
    Seeder(load_demo_data(), timezone.localdate(), reports=False).run()
    yield
    wiring.connect()


def test_demo_has_business_processes_with_cost_models(demo) -> None:
    processes = {p.name: p for p in BusinessProcess.objects.prefetch_related("applications")}
    assert sorted(processes) == EVERY_PROCESS
    ordering = processes["Online ordering"]
    assert sorted(a.slug for a in ordering.applications.all()) == ["orders-api", "web-frontend"]
    assert ordering.cost_curve[-1] == {"from_hours": 24.0, "multiplier": 2.5}
    assert len(ordering.weekly_profile) == 7 and ordering.weekly_profile[1][14] == 1.3


def test_losing_the_redis_cache_takes_down_exactly_its_dependency_closure(demo, api_for) -> None:
    body = api_for("viewer").post(SCENARIO, {"applications": ["cache-redis"], "at": AT}, format="json").json()
    # cache-redis; auth-service, orders-api (need it); web-frontend, payments-api, reporting-api (need those)
    assert body["down"] == [
        "auth-service",
        "cache-redis",
        "orders-api",
        "payments-api",
        "reporting-api",
        "web-frontend",
    ]
    rows = {r["application"]: r for r in body["applications"]}
    assert {slug for slug, r in rows.items() if r["down_because"] == "lost"} == {"cache-redis"}
    assert rows["payments-api"]["waits_for"] == ["auth-service"]
    assert sorted(p["name"] for p in body["processes"]) == EVERY_PROCESS
    # cache-redis is recovered by core-commerce (its only plan): the median of its measured tests
    measured = list(
        DRTestResult.objects.filter(plan__plan_id="core-commerce", actual_rto_seconds__isnull=False)
        .order_by("-test_date")
        .values_list("actual_rto_seconds", flat=True)
    )
    assert rows["cache-redis"]["plan"] == "core-commerce"
    assert rows["cache-redis"]["estimate"]["source"] == "history"
    assert rows["cache-redis"]["estimate"]["p50_seconds"] == statistics.median(measured)
    # everything comes back with the cache: one recovery time for all
    assert {r["recovered_after_p50_seconds"] for r in rows.values()} == {statistics.median(measured)}


def test_losing_the_dr_site_takes_down_everything_that_needs_monitoring(demo, api_for) -> None:
    body = api_for("viewer").post(SCENARIO, {"site": "ams1", "at": AT}, format="json").json()
    assert body["lost"] == {"site": "ams1", "applications": ["monitoring"]}
    assert body["down"] == sorted(
        [
            "auth-service",
            "cache-redis",
            "file-storage",
            "message-queue",
            "monitoring",
            "orders-api",
            "orders-db",
            "payments-api",
            "payments-db",
            "reporting-api",
            "reporting-warehouse",
            "web-frontend",
        ]
    )  # the lab's applications need nothing at ams1


def test_the_fra1_loss_is_priced_under_two_strategies(demo, api_for) -> None:
    body = api_for("viewer").post(SCENARIO, {"site": "fra1", "plan": "core-commerce", "at": AT}, format="json").json()
    assert "monitoring" not in body["down"]  # at ams1, needing nothing at fra1
    strategies = {s["strategy"]: s for s in body["strategies"]}
    passive, pilot = strategies["active_passive"], strategies["pilot_light"]
    # core-commerce's own figures: 18 500 a month active/passive, x 0.45 for pilot light
    assert not passive["current"]  # the lost applications' plans use several strategies
    assert Decimal(passive["dr_cost_monthly"]) > Decimal(pilot["dr_cost_monthly"])
    # pilot light recovers more slowly and so costs more downtime; active/active less
    assert (
        pilot["recovery_p50_seconds"]
        > passive["recovery_p50_seconds"]
        > strategies["active_active"]["recovery_p50_seconds"]
    )
    assert Decimal(pilot["cost_p50"]) > Decimal(passive["cost_p50"]) > Decimal(strategies["active_active"]["cost_p50"])
    # every process's cost is its own cost model over its outage, at Tuesday 2 pm
    for row in body["processes"]:
        process = BusinessProcess.objects.get(pk=row["id"])
        model = costs.ProcessCost.of(process.name, process.revenue_per_hour, process.cost_curve, process.weekly_profile)
        start = timezone.datetime.fromisoformat(body["at"])
        assert row["cost_p50"] == str(costs.money(model.cost(row["down_seconds_p50"], start)))
    assert body["cost"]["p50"] == str(sum(Decimal(r["cost_p50"]) for r in body["processes"]))


def test_seeding_twice_changes_no_business_process(demo) -> None:
    before = list(BusinessProcess.objects.order_by("pk").values())
    Seeder(load_demo_data(), timezone.localdate(), reports=False).run()
    assert list(BusinessProcess.objects.order_by("pk").values()) == before
