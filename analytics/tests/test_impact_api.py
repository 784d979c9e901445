"""Business processes, impact analyses and what-if scenarios through the API, on a small crafted world
whose every figure is computed by hand: the recovery order, the weekday/hour effect, the strategies, the
fines from configured figures, and every bad input named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from analytics.impact import estimates
from analytics.models import BusinessProcess, ImpactAnalysis
from analytics.tests.factories import make_result
from core.models import AuditEntry
from drplan import wiring
from plans import costs
from plans.tests.factories import make_app, make_plan, make_site

pytestmark = pytest.mark.django_db
SCENARIO = "/api/v1/dr/impact-analysis/scenario"
ANALYSIS = "/api/v1/dr/impact-analysis"
PROCESSES = "/api/v1/dr/business-processes"
TUESDAY_0900 = "2026-12-01T09:00:00Z"
SUNDAY_0900 = "2026-12-06T09:00:00Z"

FIGURES = {
    "strategies": {
        "active_active": {"time_factor": 0.1, "cost_factor": 2.0},
        "active_passive": {"time_factor": 1.0, "cost_factor": 1.0},
        "pilot_light": {"time_factor": 2.5, "cost_factor": 0.45},
        "backup_restore": {"time_factor": 8.0, "cost_factor": 0.15},
    },
    "frameworks": {
        "dora": {"label": "DORA", "violation_after_hours": 0.5, "fine": 12345, "rule": "major incident"},
        "sox": {"label": "SOX", "violation_after_hours": 10, "fine": 1, "rule": "close"},
    },
    "recovery": {"dr_infrastructure_months": 2, "per_application": 100},
    "unplanned_recovery_hours": 72,
    "estimate_p90_factor": 1.5,
    "reputation": {"customers_weight": 40, "duration_weight": 35, "critical_weight": 25, "max_churn_percent": 8},
}


def named(error: dict, field: str) -> bool:
    """The error names the field (or an item of it: "applications.0")."""
    return any(key == field or key.startswith((f"{field}.", f"{field}[")) for key in error.get("fields") or {})


@pytest.fixture(autouse=True)
def _no_ml_service():
    """No ML service in these tests: estimates come from the history (as when the service is down)."""
    estimates.install(None)
    yield
    wiring.connect()


@pytest.fixture
def figures(settings, tmp_path: Path) -> dict:
    path = tmp_path / "figures.yaml"
    path.write_text(yaml.safe_dump(FIGURES))
    settings.DRPLAN_IMPACT_FIGURES = str(path)
    return FIGURES


@pytest.fixture
def world(figures):
    """Site s1 runs db; api (at s2) needs db; web needs api. Plan p recovers db and api (active/passive,
    measured recoveries 1800, 3600 and 5400 s: P50 3600, P90 5040). Process Shop needs web."""
    s1, s2 = make_site("s1"), make_site("s2")
    make_site("empty")
    db = make_app("db", site=s1)
    api = make_app("api", site=s2, depends_on=(db,))
    web = make_app("web", site=s2, depends_on=(api,))
    make_app("other", site=s2)
    plan = make_plan(
        "p",
        applications=[db, api],
        strategy="active_passive",
        dr_infrastructure_cost_monthly=Decimal("1000"),
        compliance_frameworks=["dora"],
    )
    for seconds in (1800, 5400, 3600):
        make_result(plan, actual_rto_seconds=seconds)
    shop = BusinessProcess.objects.create(
        name="Shop",
        criticality="critical",
        revenue_per_hour=Decimal("1000"),
        employees=10,
        customers=1000,
        regulatory_frameworks=["sox"],
        cost_curve=[{"from_hours": 0, "multiplier": 1}, {"from_hours": 0.5, "multiplier": 2}],
        weekly_profile=costs.business_hours_profile(open_hour=9, close_hour=17, weekday=2, evening=0.5, weekend=0.25),
    )
    shop.applications.set([web])
    return {"plan": plan, "db": db, "api": api, "web": web, "shop": shop}


def test_what_if_walks_the_dependencies_and_recovers_in_order(world, api_for) -> None:
    response = api_for("viewer").post(SCENARIO, {"site": "s1", "at": TUESDAY_0900}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["down"] == ["api", "db", "web"]
    assert (body["weekday"], body["hour"]) == ("Tuesday", 9)
    rows = {r["application"]: r for r in body["applications"]}
    assert rows["db"]["down_because"] == "lost" and rows["db"]["plan"] == "p"
    assert rows["db"]["estimate"] == {
        "p50_seconds": 3600.0,
        "p90_seconds": 5040.0,
        "source": "history",
        "detail": "3 measured recoveries of plan p",
    }
    # api and web are down only through db: back when db is back
    assert rows["api"]["down_because"] == "dependency" and rows["api"]["waits_for"] == ["db"]
    assert rows["web"]["waits_for"] == ["api"] and rows["web"]["estimate"] is None
    for slug in ("db", "api", "web"):
        assert (rows[slug]["recovered_after_p50_seconds"], rows[slug]["recovered_after_p90_seconds"]) == (3600, 5040)
    assert rows["web"]["recovered_at_p50"] == "2026-12-01T10:00:00+00:00"
    # Shop, Tuesday 09:00, weight 2: 0.5 h at 1000 then (after 0.5 h) 2000 per hour
    # P50 1 h: 0.5 x 1000 x 2 + 0.5 x 2000 x 2 = 3000; P90 1.4 h: 1000 + 0.9 x 2000 x 2 = 4600
    assert body["processes"][0]["name"] == "Shop"
    assert (body["cost"]["p50"], body["cost"]["p90"]) == ("3000.00", "4600.00")
    assert body["cost"]["over_time"][0] == {"seconds": 0.0, "cost_p50": "0.00", "cost_p90": "0.00"}
    assert body["cost"]["over_time"][-1] == {"seconds": 5040.0, "cost_p50": "3000.00", "cost_p90": "4600.00"}
    assert body["unpriced_applications"] == ["api", "db"]


def test_the_weekday_and_hour_change_the_cost(world, api_for) -> None:
    sunday = api_for("viewer").post(SCENARIO, {"applications": ["db"], "at": SUNDAY_0900}, format="json").json()
    assert sunday["weekday"] == "Sunday"
    # weight 0.25 instead of 2: an eighth of Tuesday's
    assert (sunday["cost"]["p50"], sunday["cost"]["p90"]) == ("375.00", "575.00")


def test_strategies_side_by_side(world, api_for) -> None:
    body = api_for("viewer").post(SCENARIO, {"site": "s1", "at": TUESDAY_0900}, format="json").json()
    rows = {r["strategy"]: r for r in body["strategies"]}
    assert [r["strategy"] for r in body["strategies"]] == [
        "active_active",
        "active_passive",
        "pilot_light",
        "backup_restore",
    ]
    current = rows["active_passive"]
    assert current["current"] and not rows["pilot_light"]["current"]
    assert (current["recovery_p50_seconds"], current["cost_p50"], current["dr_cost_monthly"]) == (
        3600.0,
        "3000.00",
        "1000.00",
    )
    pilot = rows["pilot_light"]
    # 2.5 x 3600 s = 2.5 h within office hours: 0.5 x 1000 x 2 + 2 x 2000 x 2 = 9000
    assert (pilot["recovery_p50_seconds"], pilot["cost_p50"]) == (9000.0, "9000.00")
    assert (pilot["dr_cost_monthly"], pilot["dr_cost_annual"]) == ("450.00", "5400.00")
    hot = rows["active_active"]
    # 360 s: 0.1 h at 1000 x 2 = 200
    assert (hot["recovery_p50_seconds"], hot["cost_p50"], hot["dr_cost_monthly"]) == (360.0, "200.00", "2000.00")


def test_without_history_the_strategy_estimates_are_used_and_named(world, api_for) -> None:
    plan = world["plan"]
    plan.test_results.all().delete()
    strategy = plan.recovery_strategies.create(name="Fail over")
    strategy.steps.create(order=1, action="Promote", estimated_duration_seconds=600)
    strategy.steps.create(order=2, action="Switch", estimated_duration_seconds=600)
    body = api_for("viewer").post(SCENARIO, {"applications": ["db"], "at": TUESDAY_0900}, format="json").json()
    db = next(r for r in body["applications"] if r["application"] == "db")
    assert db["estimate"]["source"] == "strategy"
    assert (db["estimate"]["p50_seconds"], db["estimate"]["p90_seconds"]) == (1200.0, 1800.0)
    lone = api_for("viewer").post(SCENARIO, {"applications": ["other"]}, format="json").json()
    assert lone["applications"][0]["estimate"]["source"] == "unplanned"
    assert lone["applications"][0]["estimate"]["p50_seconds"] == 72 * 3600


def test_impact_analysis_computes_and_stores_every_figure(world, api_for, figures) -> None:
    before = AuditEntry.objects.count()
    response = api_for("approver").post(
        ANALYSIS, {"plan": "p", "scenario": "s1 lost", "site": "s1", "at": TUESDAY_0900}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["plan_slug"] == "p" and body["scenario"] == "s1 lost"
    assert body["revenue_per_hour"] == "1000.00"
    # From Tuesday 09:00: 1 h = 3000; 4 h = 1000 + 3.5 x 4000 = 15000; 24 h: to 17:00 (8 h) 1000 + 7.5 x 4000,
    # then 7 h at 0.5 (7000) and 9 h of Wednesday: 9 x 1000 (to 09:00 at 0.5) ... computed by the model
    shop = costs.ProcessCost.of("Shop", 1000, world["shop"].cost_curve, world["shop"].weekly_profile)
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert body["downtime_cost_1h"] == "3000.00" and body["downtime_cost_4h"] == "15000.00"
    assert body["downtime_cost_24h"] == str(costs.money(shop.cost(24 * 3600, at)))
    # 2 months of plan p's DR infrastructure + 100 per lost application (db)
    assert body["recovery_cost"] == "2100.00"
    assert (body["affected_processes"], body["critical_processes"]) == (["Shop"], ["Shop"])
    assert (body["affected_employees"], body["affected_customers"]) == (10, 1000)
    # Reputation: customers log10(1000/100)/log10(1e5) = 0.2; duration log10(1/0.25)/log10(288); critical 1
    rep = body["breakdown"]["reputation"]
    assert rep["inputs"]["customers_scaled"] == 0.2 and rep["inputs"]["critical_share"] == 1.0
    expected = round(40 * 0.2 + 35 * rep["inputs"]["duration_scaled"] + 25)
    assert body["reputation_score"] == rep["score"] == expected
    assert Decimal(body["customer_churn_percent"]) == Decimal(str(round(8 * (expected / 100) ** 2, 4)))
    # Regulatory: dora (the plan's) down 1 h > 0.5 h: its fine; sox (the process's) 1 h < 10 h: none
    assert body["regulatory_frameworks"] == ["dora", "sox"]
    assert body["estimated_fines"] == "12345.00"
    assert len(body["potential_violations"]) == 1 and body["potential_violations"][0].startswith("DORA")
    assert body["inputs"] == {"plan": "p", "site": "s1", "applications": [], "at": "2026-12-01T09:00:00+00:00"}
    assert AuditEntry.objects.count() == before + 1
    again = api_for("viewer").get(f"{ANALYSIS}/{body['id']}")
    assert again.status_code == 200 and again.json()["breakdown"] == body["breakdown"]
    assert api_for("viewer").get(f"{ANALYSIS}/999999").status_code == 404


def test_fines_follow_the_configured_figures(world, api_for, figures, settings, tmp_path) -> None:
    changed = {**figures, "frameworks": {**figures["frameworks"]}}
    changed["frameworks"]["dora"] = {**figures["frameworks"]["dora"], "violation_after_hours": 2}
    changed["frameworks"]["sox"] = {**figures["frameworks"]["sox"], "violation_after_hours": 0.25, "fine": 777}
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(changed))
    settings.DRPLAN_IMPACT_FIGURES = str(path)
    body = api_for("approver").post(ANALYSIS, {"plan": "p", "scenario": "x", "site": "s1"}, format="json").json()
    assert body["estimated_fines"] == "777.00"
    assert [v.split(":")[0] for v in body["potential_violations"]] == ["SOX"]


def test_without_a_site_or_applications_the_analysis_loses_the_plan_applications(world, api_for) -> None:
    body = api_for("approver").post(ANALYSIS, {"plan": "p", "scenario": "plan down"}, format="json").json()
    assert body["breakdown"]["scenario"]["down"] == ["api", "db", "web"]
    assert body["scenario_at"] is None
    # no time: the weekly mean weight (5 x (8 x 2 + 16 x 0.5) + 48 x 0.25) / 168 = 132/168
    assert body["breakdown"]["financial"]["weighting"] == "the weekly profile's mean"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"site": "nowhere"}, "site"),
        ({"site": 5}, "site"),
        ({"site": "empty"}, "site"),
        ({"applications": ["db", "ghost"]}, "applications"),
        ({"applications": []}, "applications"),
        ({"applications": "db"}, "applications"),
        ({"site": "s1", "applications": ["db"]}, "applications"),
        ({}, "site"),
        ({"plan": "p"}, "site"),
        ({"site": "s1", "plan": "no-such-plan"}, "plan"),
        ({"site": "s1", "at": "next tuesday"}, "at"),
        ({"site": "s1", "at": 1733043600}, "at"),
        ({"site": "s1", "at": "2026-13-01T09:00:00Z"}, "at"),
    ],
)
def test_bad_scenarios_are_400_naming_the_field(world, api_for, body, field) -> None:
    response = api_for("viewer").post(SCENARIO, body, format="json")
    assert response.status_code == 400, response.content
    assert named(response.json()["error"], field), response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scenario": "x"}, "plan"),
        ({"plan": "ghost", "scenario": "x"}, "plan"),
        ({"plan": "p"}, "scenario"),
        ({"plan": "p", "scenario": "x", "site": "nowhere"}, "site"),
        ({"plan": "p", "scenario": "x", "applications": ["ghost"]}, "applications"),
        ({"plan": "p", "scenario": "x", "applications": []}, "applications"),
        ({"plan": "p", "scenario": "x", "at": "yesterday"}, "at"),
        ({"plan": "p", "scenario": "x" * 201}, "scenario"),
    ],
)
def test_bad_analyses_are_400_naming_the_field_and_store_nothing(world, api_for, body, field) -> None:
    before = (ImpactAnalysis.objects.count(), AuditEntry.objects.count())
    response = api_for("approver").post(ANALYSIS, body, format="json")
    assert response.status_code == 400, response.content
    assert named(response.json()["error"], field), response.json()
    assert (ImpactAnalysis.objects.count(), AuditEntry.objects.count()) == before


def test_a_plan_without_applications_loses_nothing(world, api_for) -> None:
    make_plan("hollow")
    response = api_for("approver").post(ANALYSIS, {"plan": "hollow", "scenario": "x"}, format="json")
    assert response.status_code == 400 and "plan" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cost_curve": [{"from_hours": 2, "multiplier": 1}]}, "cost_curve"),
        ({"cost_curve": [{"from_hours": 0, "multiplier": 1}, {"from_hours": 0, "cost_per_hour": 5}]}, "cost_curve"),
        ({"cost_curve": "steep"}, "cost_curve"),
        ({"weekly_profile": [[1] * 24] * 6}, "weekly_profile"),
        ({"regulatory_frameworks": ["gdpr"]}, "regulatory_frameworks"),
        ({"applications": ["ghost"]}, "applications"),
        ({"revenue_per_hour": "-5"}, "revenue_per_hour"),
        ({"revenue_per_hour": 5}, "revenue_per_hour"),
        ({"criticality": "extreme"}, "criticality"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_business_processes_are_400_naming_the_field(world, api_for, change, field) -> None:
    body = {"name": "Billing", "revenue_per_hour": "10", "applications": ["api"]} | change
    before = BusinessProcess.objects.count()
    response = api_for("approver").post(PROCESSES, body, format="json")
    assert response.status_code == 400, response.content
    assert named(response.json()["error"], field), response.json()
    assert BusinessProcess.objects.count() == before


def test_a_taken_name_is_a_conflict(world, api_for) -> None:
    response = api_for("approver").post(PROCESSES, {"name": "Shop"}, format="json")
    assert response.status_code == 409 and "name" in response.json()["error"]["fields"]


def test_business_process_round_trip(world, api_for) -> None:
    body = {
        "name": "Billing",
        "criticality": "high",
        "revenue_per_hour": "250.50",
        "employees": 3,
        "customers": 40,
        "regulatory_frameworks": ["sox", "dora", "sox"],
        "applications": ["api", "db"],
        "cost_curve": [{"from_hours": 0, "cost_per_hour": 100}, {"from_hours": 8, "multiplier": 3}],
        "weekly_profile": [[1] * 24] * 7,
    }
    created = api_for("approver").post(PROCESSES, body, format="json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["regulatory_frameworks"] == ["dora", "sox"] and data["applications"] == ["api", "db"]
    assert data["cost_curve"] == [{"from_hours": 0.0, "cost_per_hour": 100.0}, {"from_hours": 8.0, "multiplier": 3.0}]
    listed = api_for("viewer").get(f"{PROCESSES}?criticality=high").json()
    assert [p["name"] for p in listed["results"]] == ["Billing"]


def test_scenario_readers_and_analysis_writers(world, api_for) -> None:
    """The what-if stores nothing: every role that reads impact analyses may run one; anonymous may not."""
    for role in ("viewer", "operator", "auditor", "approver", "admin"):
        assert api_for(role).post(SCENARIO, {"site": "s1"}, format="json").status_code == 200, role
    assert api_for(None).post(SCENARIO, {"site": "s1"}, format="json").status_code == 401


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), ("viewer", 403), ("operator", 403), ("auditor", 403), ("approver", 201), ("admin", 201)],
)
def test_impact_analysis_permission_matrix(world, api_for, role, expected) -> None:
    before = (ImpactAnalysis.objects.count(), AuditEntry.objects.count())
    response = api_for(role).post(ANALYSIS, {"plan": "p", "scenario": "x", "site": "s1"}, format="json")
    assert response.status_code == expected, response.content
    if expected == 201:
        assert (ImpactAnalysis.objects.count(), AuditEntry.objects.count()) == (before[0] + 1, before[1] + 1)
    else:
        assert (ImpactAnalysis.objects.count(), AuditEntry.objects.count()) == before
        assert api_for(role).get(f"{ANALYSIS}/1").status_code in ({401} if role is None else {200, 404})


def test_the_console_meter_prices_with_the_same_model(world) -> None:
    """failover's console reads plans.costs.plan_cost_model, which analytics fills with the processes."""
    model = costs.plan_cost_model(world["plan"])
    assert model.source == "business_processes" and [p.name for p in model.processes] == ["Shop"]
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert model.cost(3600, start) == Decimal("3000.00")
    assert model.rate_now(1800, start) == Decimal("4000.00")
    assert model.points(3600, start)[-1] == (3600.0, "3000.00")
    assert start + timedelta(seconds=3600) > start


def test_the_console_cost_meter_uses_the_business_processes(world, users) -> None:
    """The execution console's meter: the plan's processes (Shop), their curve and profile, from the RTO clock's
    start; the points let the page tick between refreshes exactly."""
    from failover.console import console_state
    from failover.tests.engine_support import make_execution

    start = datetime(2026, 12, 1, 9, tzinfo=UTC)  # Tuesday 09:00
    execution = make_execution(
        [{"key": "promote", "estimated_duration_seconds": 3600}],
        plan=world["plan"],
        execution_type="unplanned",
        status="running",
        triggered_at=start,
        disaster_declared_at=start,
    )
    clock = console_state(execution, users["admin"], now=start + timedelta(minutes=30))["clock"]
    assert clock["cost_source"] == "business_processes" and clock["cost_processes"] == ["Shop"]
    # 30 min at 1000 x 2 = 1000; the rate then doubles (after 0.5 h): 4000 per hour
    assert (clock["cost_so_far"], clock["cost_per_hour"]) == ("1000.00", "4000.00")
    # projected finish: the pending step's estimate (1 h, no history) from now, 1.5 h in: 1000 + 1 h x 4000
    assert clock["projected_cost"] == "5000.00"
    # where the rate changes (the breakpoint at 0.5 h, whole wall-clock hours), to an hour past the projection
    assert clock["cost_points"] == [
        [0.0, "0.00"],
        [1800.0, "1000.00"],
        [3600.0, "3000.00"],
        [7200.0, "7000.00"],
        [9000.0, "9000.00"],
    ]
