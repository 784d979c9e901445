"""The RTO clock's forecast (failover.projection): projected finish over the remaining critical path,
the breach warning before it happens, and the cost-of-downtime meter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from failover.models import StepRun
from failover.projection import (
    AT_RISK,
    BREACHED,
    DEFAULT_STEP_SECONDS,
    MET,
    MISSED,
    NO_TARGET,
    ON_TRACK,
    StepTiming,
    downtime_cost,
    expected_duration,
    historical_medians,
    project,
    project_execution,
)
from failover.tests.engine_support import make_execution
from plans.tests.factories import make_plan

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def chain() -> list[StepTiming]:
    """a done 10 s ago, b running for 5 s of an expected 20, c pending (expected 30) after b."""
    return [
        StepTiming("a", "succeeded", (), started_at=ago(40), finished_at=ago(10), expected_seconds=25),
        StepTiming("b", "running", ("a",), started_at=ago(5), expected_seconds=20),
        StepTiming("c", "pending", ("b",), expected_seconds=30),
    ]


def test_projected_finish_follows_the_remaining_chain() -> None:
    projection = project(chain(), now=NOW, start=ago(60), target_seconds=120)
    # b ends in 15 s, c runs 30 s after it: 45 s from now, 60 s already elapsed.
    assert projection.projected_finish == NOW + timedelta(seconds=45)
    assert projection.projected_total_seconds == 105
    assert projection.elapsed_seconds == 60
    assert projection.remaining_seconds == 45
    assert projection.critical_path == ["b", "c"]
    assert projection.steps["c"].start == NOW + timedelta(seconds=15)
    assert projection.steps["c"].projected is True
    assert projection.steps["a"].projected is False
    assert projection.state == ON_TRACK
    assert projection.warning is False
    assert projection.breach_seconds == 0


def test_warns_before_the_breach_when_the_projection_exceeds_the_target() -> None:
    projection = project(chain(), now=NOW, start=ago(60), target_seconds=100)
    assert projection.elapsed_seconds < 100  # not breached yet …
    assert projection.state == AT_RISK  # … but it will be
    assert projection.warning is True
    assert projection.breach_seconds == 5


def test_breached_once_the_target_has_passed_while_running() -> None:
    projection = project(chain(), now=NOW, start=ago(130), target_seconds=120)
    assert projection.state == BREACHED
    assert projection.warning is True


def test_the_longest_branch_decides_and_is_the_critical_path() -> None:
    steps = [
        StepTiming("root", "pending", (), expected_seconds=10),
        StepTiming("short", "pending", ("root",), expected_seconds=5),
        StepTiming("long", "pending", ("root",), expected_seconds=50),
        StepTiming("join", "pending", ("short", "long"), expected_seconds=10),
    ]
    projection = project(steps, now=NOW, start=NOW, target_seconds=None)
    assert projection.projected_total_seconds == 70
    assert projection.critical_path == ["root", "long", "join"]
    assert projection.steps["short"].critical is False
    assert projection.state == NO_TARGET
    assert projection.warning is False


def test_a_step_running_past_its_expectation_finishes_now_at_the_earliest() -> None:
    steps = [StepTiming("slow", "running", (), started_at=ago(100), expected_seconds=20)]
    projection = project(steps, now=NOW, start=ago(100), target_seconds=300)
    assert projection.projected_finish == NOW
    assert projection.state == ON_TRACK


def test_failed_steps_of_an_active_execution_count_as_work_still_to_do() -> None:
    steps = [StepTiming("x", "failed", (), started_at=ago(30), finished_at=ago(20), expected_seconds=40)]
    projection = project(steps, now=NOW, start=ago(30), target_seconds=60)
    assert projection.projected_total_seconds == 70
    assert projection.state == AT_RISK


def test_a_cycle_does_not_hang_the_projection() -> None:
    steps = [StepTiming("p", "pending", ("q",), expected_seconds=5), StepTiming("q", "pending", ("p",))]
    projection = project(steps, now=NOW, start=NOW, target_seconds=None)
    assert projection.projected_finish >= NOW


def test_a_finished_execution_reports_the_measurement() -> None:
    steps = [StepTiming("a", "succeeded", (), started_at=ago(50), finished_at=ago(10))]
    met = project(steps, now=NOW, start=ago(60), target_seconds=60, finished_at=ago(5))
    assert met.complete is True
    assert met.projected_total_seconds == 55
    assert met.state == MET
    missed = project(steps, now=NOW, start=ago(60), target_seconds=50, finished_at=ago(5))
    assert missed.state == MISSED
    assert missed.breach_seconds == 5
    assert missed.critical_path == []


def test_expected_duration_prefers_history_then_estimate_then_default() -> None:
    assert expected_duration("a", 40, {"a": 12.5}) == (12.5, "history")
    assert expected_duration("a", 40, {}) == (40.0, "estimate")
    assert expected_duration("a", None, {}) == (DEFAULT_STEP_SECONDS, "default")


@pytest.mark.parametrize(
    ("seconds", "per_hour", "expected"),
    [
        (1800, Decimal("1000"), Decimal("500.00")),
        (3600 * 3, Decimal("250.50"), Decimal("751.50")),
        (1, Decimal("100"), Decimal("0.03")),  # 0.0277… rounds half up to cents
        (600, Decimal("0"), Decimal("0.00")),
        (600, None, Decimal("0.00")),
        (0, Decimal("1000"), Decimal("0.00")),
    ],
)
def test_downtime_cost(seconds: float, per_hour: Decimal | None, expected: Decimal) -> None:
    assert downtime_cost(seconds, per_hour) == expected


@pytest.mark.django_db
def test_historical_median_uses_earlier_successful_runs_of_the_same_step_key() -> None:
    base = timezone.now() - timedelta(days=1)
    for i, (status, seconds) in enumerate([("succeeded", 10), ("succeeded", 20), ("succeeded", 60), ("failed", 1)]):
        make_execution(
            [{"key": "db.promote", "status": status, "duration_seconds": seconds}],
            triggered_at=base + timedelta(minutes=i),
        )
    current = make_execution([{"key": "db.promote"}, {"key": "other", "estimated_duration_seconds": 7}])
    later = make_execution(
        [{"key": "db.promote", "status": "succeeded", "duration_seconds": 999}],
        triggered_at=timezone.now() + timedelta(hours=1),
    )
    assert later.pk  # a later execution does not inform an earlier one
    assert historical_medians(current, ["db.promote", "other"]) == {"db.promote": 20.0}


@pytest.mark.django_db
def test_project_execution_uses_the_plans_rto_and_the_history() -> None:
    plan = make_plan(rto_seconds=100, downtime_cost_per_hour=Decimal("3600"))
    make_execution(
        [{"key": "s1", "status": "succeeded", "duration_seconds": 80}],
        plan=plan,
        triggered_at=timezone.now() - timedelta(days=2),
    )
    now = timezone.now()
    execution = make_execution(
        [{"key": "s1", "estimated_duration_seconds": 10}],
        plan=plan,
        status="running",
        triggered_at=now - timedelta(seconds=30),
    )
    projection = project_execution(execution, list(StepRun.objects.filter(execution=execution)), now)
    # The median of earlier runs (80 s) beats the estimate (10 s): 30 + 80 = 110 > 100.
    assert projection.projected_total_seconds == pytest.approx(110)
    assert projection.state == AT_RISK
    assert downtime_cost(projection.elapsed_seconds, plan.downtime_cost_per_hour) == Decimal("30.00")
