"""The downtime cost model (plans/costs.py) on crafted cases: escalation with duration, the weekday and
hour of the outage, their combination, and the curves and profiles it refuses."""

from __future__ import annotations

import json
import shutil
import subprocess
import zoneinfo
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from plans import costs

FLAT = costs.ProcessCost.of("flat", 100)
ESCALATING = costs.ProcessCost.of(
    "escalating",
    1000,
    costs.validate_curve(
        [
            {"from_hours": 0, "multiplier": 1},
            {"from_hours": 2, "cost_per_hour": 3000},
            {"from_hours": 5, "multiplier": 4},
        ]
    ),
)
# Working days 09-17 weigh 2, their other hours 0.5, the weekend 0.25.
OFFICE = costs.business_hours_profile(open_hour=9, close_hour=17, weekday=2, evening=0.5, weekend=0.25)
MONDAY_0830 = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)  # a Monday
SATURDAY_0830 = datetime(2026, 12, 5, 8, 30, tzinfo=UTC)


def money(process: costs.ProcessCost, hours: float, start: datetime | None = None, **kw) -> Decimal:
    return costs.money(process.cost(hours * 3600, start, **kw))


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (0, "0.00"),
        (1.5, "1500.00"),  # 1.5 h at 1000
        (2, "2000.00"),
        (3, "5000.00"),  # 2 h at 1000 + 1 h at 3000
        (6, "15000.00"),  # 2 x 1000 + 3 x 3000 + 1 x 4000 (multiplier 4 of the revenue)
    ],
)
def test_cost_escalates_with_the_outage_duration(hours, expected) -> None:
    assert money(ESCALATING, hours) == Decimal(expected)
    assert ESCALATING.base_rate(4.99) == 3000 and ESCALATING.base_rate(5) == 4000


def test_an_empty_curve_is_the_revenue_per_hour_throughout() -> None:
    assert money(FLAT, 24) == Decimal("2400.00")


def test_weekday_and_hour_weigh_each_wall_clock_hour() -> None:
    process = costs.ProcessCost.of("office", 100, [], OFFICE)
    # Monday 08:30-09:00 at 0.5, 09:00-10:30 at 2: 25 + 300
    assert money(process, 2, MONDAY_0830) == Decimal("325.00")
    # Saturday: 2 h at 0.25
    assert money(process, 2, SATURDAY_0830) == Decimal("50.00")
    # Friday 16:30 for 8 h: 0.5 h at 2 (100), 7 h at 0.5 to midnight (350), 0.5 h of Saturday at 0.25 (12.5)
    friday = datetime(2026, 12, 4, 16, 30, tzinfo=UTC)
    assert money(process, 8, friday) == Decimal("462.50")


def test_escalation_and_profile_combine() -> None:
    curve = costs.validate_curve([{"from_hours": 0, "multiplier": 1}, {"from_hours": 1, "multiplier": 3}])
    process = costs.ProcessCost.of("both", 100, curve, OFFICE)
    # 08:30-09:00 100 x 0.5 x 0.5 h = 25; 09:00-09:30 100 x 2 x 0.5 h = 100; 09:30-10:30 (after 1 h) 300 x 2 = 600
    assert money(process, 2, MONDAY_0830) == Decimal("725.00")
    # The same outage on a Saturday: 0.25 throughout: 12.5 + 12.5 + 75
    assert money(process, 2, SATURDAY_0830) == Decimal("100.00")
    # The cumulative points where the rate changes: the hour boundary at 09:00 and the breakpoint at 1 h
    assert [(t, costs.money(c)) for t, c in process.cumulative(7200, MONDAY_0830)] == [
        (0.0, Decimal("0.00")),
        (1800.0, Decimal("25.00")),
        (3600.0, Decimal("125.00")),
        (5400.0, Decimal("425.00")),
        (7200.0, Decimal("725.00")),
    ]


def test_without_a_start_the_weekly_mean_weight_applies() -> None:
    process = costs.ProcessCost.of("office", 100, [], OFFICE)
    # (5 days x (8 x 2 + 16 x 0.5) + 2 days x 24 x 0.25) / 168 = 132 / 168
    assert money(process, 1) == costs.money(100 * 132 / 168)


def test_the_organisation_time_zone_decides_the_hour() -> None:
    process = costs.ProcessCost.of("office", 100, [], OFFICE)
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    # 08:30 UTC is 09:30 in Berlin (CET): within office hours, 1 h at 2
    assert money(process, 1, MONDAY_0830, tz=berlin) == Decimal("200.00")
    assert money(process, 1, MONDAY_0830, tz=zoneinfo.ZoneInfo("UTC")) == Decimal("125.00")


def test_the_plan_cost_model_without_processes_is_the_plan_flat_rate(db) -> None:
    from plans.tests.factories import make_plan

    costs.install(None)
    try:
        plan = make_plan("flat", downtime_cost_per_hour=Decimal("7200"))
        model = costs.plan_cost_model(plan)
        assert model.source == "plan_rate" and model.cost(1800) == Decimal("3600.00")
        assert costs.plan_cost_model(make_plan("free")).processes == ()
    finally:
        from drplan import wiring

        wiring.connect()


@pytest.mark.parametrize(
    ("curve", "field"),
    [
        ("steep", "cost_curve"),
        ([{"from_hours": 1, "multiplier": 1}], "cost_curve[0].from_hours"),
        ([{"from_hours": 0, "multiplier": 1}, {"from_hours": 0, "multiplier": 2}], "cost_curve[1].from_hours"),
        ([{"from_hours": 0, "multiplier": 1, "cost_per_hour": 5}], "cost_curve[0]"),
        ([{"from_hours": 0}], "cost_curve[0]"),
        ([{"from_hours": 0, "multiplier": -1}], "cost_curve[0].multiplier"),
        ([{"from_hours": 0, "multiplier": True}], "cost_curve[0].multiplier"),
        ([{"from_hours": "soon", "multiplier": 1}], "cost_curve[0].from_hours"),
        ([{"from_hours": 0, "cost_per_hour": "100"}], "cost_curve[0].cost_per_hour"),  # a number, not text
        ([{"from_hours": 0, "multiplier": float("inf")}], "cost_curve[0].multiplier"),
        ([{"multiplier": 1}], "cost_curve[0].from_hours"),
        ([{"from_hours": 0, "multiplier": 1, "colour": "red"}], "cost_curve[0]"),
        ([5], "cost_curve[0]"),
    ],
)
def test_bad_curves_name_the_breakpoint(curve, field) -> None:
    with pytest.raises(costs.CostModelError) as caught:
        costs.validate_curve(curve)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        ({"monday": 1}, "weekly_profile"),
        ([[1] * 24] * 6, "weekly_profile"),
        ([[1] * 24] * 6 + [[1] * 23], "weekly_profile[6]"),
        ([[1] * 24] * 3 + [[1] * 23 + ["x"]] + [[1] * 24] * 3, "weekly_profile[3][23]"),
        ([[1] * 24] * 6 + [[-1] + [1] * 23], "weekly_profile[6][0]"),
    ],
)
def test_bad_profiles_name_the_cell(profile, field) -> None:
    with pytest.raises(costs.CostModelError) as caught:
        costs.validate_profile(profile)
    assert caught.value.field == field


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_console_meter_ticks_through_the_same_costs() -> None:
    """console.js costAt(clock, seconds) interpolates the server's cost points: at any second it reads what
    the model says (the page ticks between refreshes without a request)."""
    curve = costs.validate_curve([{"from_hours": 0, "multiplier": 1}, {"from_hours": 1, "multiplier": 3}])
    model = costs.CostModel((costs.ProcessCost.of("both", 100, curve, OFFICE),), source="business_processes")
    clock = {"cost_per_hour": str(model.rate_now(7200, MONDAY_0830)), "cost_points": model.points(7200, MONDAY_0830)}
    source = (Path(__file__).resolve().parents[2] / "failover/static/failover/console.js").read_text()
    functions = source[source.index("  function money(") : source.index("  function timeText(")]
    seconds = [0, 900, 1800, 2700, 3600, 4500, 5400, 7200, 9000]
    script = (
        'var cfg = {currency: {prefix: "", suffix: ""}};'
        + functions
        + "var a = JSON.parse(process.argv[1]);"
        + "console.log(JSON.stringify(a.seconds.map(function (s) { return costAt(a.clock, s); })));"
    )
    result = subprocess.run(
        ["node", "-e", script, json.dumps({"clock": clock, "seconds": seconds})],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    # past the last point (9000 s) the meter runs on at the current rate (300 x 2 per hour)
    expected = [f"{model.cost(s, MONDAY_0830):,.2f}" for s in seconds[:-1]] + [f"{725 + 600 / 2:,.2f}"]
    assert json.loads(result.stdout) == expected
