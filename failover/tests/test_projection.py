"""The RTO clock's forecast (failover.projection): projected finish over the remaining critical path,
the breach warning before it happens, and the cost-of-downtime meter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from failover import estimates
from failover.models import FailoverExecution, StepRun
from failover.projection import (
    AT_RISK,
    BREACHED,
    CRITICAL_PATH,
    DEFAULT_STEP_SECONDS,
    ESTIMATOR,
    ESTIMATOR_SIMULATIONS,
    MET,
    MISSED,
    NO_TARGET,
    ON_TRACK,
    StepTiming,
    downtime_cost,
    estimator_request,
    expected_duration,
    historical_medians,
    project,
    project_execution,
    with_estimate,
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


# --- The ML estimator's projection (failover/estimates.py seam; live service: mlservice/tests/test_service.py) --


@pytest.mark.django_db
def test_the_estimator_is_asked_about_what_is_left_of_a_running_execution() -> None:
    plan = make_plan(rto_seconds=600)
    now = timezone.now()
    execution = make_execution(
        [
            {
                "key": "a",
                "status": "succeeded",
                "started_at": now - timedelta(seconds=40),
                "finished_at": now - timedelta(seconds=10),
                "duration_seconds": 30,
            },
            {
                "key": "b",
                "needs": ["a"],
                "status": "running",
                "started_at": now - timedelta(seconds=5),
                "estimated_duration_seconds": 20,
                "action": "wait",
            },
            {"key": "c", "needs": ["b", "not-in-this-run"], "action": "manual", "approval": {"role": "approver"}},
        ],
        plan=plan,
        execution_type="planned",
        status="running",
        triggered_at=now - timedelta(seconds=60),
        parallelism=2,
    )
    steps = list(StepRun.objects.filter(execution=execution).order_by("id"))
    body = estimator_request(execution, steps, now)
    assert body == {
        "steps": [
            {"key": "a", "needs": [], "action": "noop", "estimate": None, "gate": False, "done_at": 50.0},
            {"key": "b", "needs": ["a"], "action": "wait", "estimate": 20.0, "gate": False, "started_at": 55.0},
            {"key": "c", "needs": ["b"], "action": "manual", "estimate": None, "gate": True},
        ],
        "now_offset": 60.0,
        "simulations": ESTIMATOR_SIMULATIONS,
        "seed": execution.pk,
        "parallelism": 2,
        "rto_seconds": 600.0,
    }
    FailoverExecution.objects.filter(pk=execution.pk).update(status="completed", finished_at=now)
    execution.refresh_from_db()
    assert estimator_request(execution, steps, now) is None  # over: the measurement, nothing to estimate


def test_the_estimators_median_becomes_the_projected_finish_and_says_so() -> None:
    critical = project(chain(), now=NOW, start=ago(60), target_seconds=100)  # 60 + 15 + 30 = 105: at risk
    assert (critical.source, critical.projected_total_seconds, critical.state) == (CRITICAL_PATH, 105, AT_RISK)
    answer = {
        "available": True,
        "p50_seconds": 90.0,
        "p90_seconds": 130.0,
        "probability_meet_rto": 0.62,
        "simulations": 2000,
        "model_version": "v1",
        "last_to_finish": {"c": 1.0},
    }
    shown = with_estimate(critical, answer)
    assert (shown.source, shown.projected_total_seconds, shown.state) == (ESTIMATOR, 90.0, ON_TRACK)
    assert shown.projected_finish == ago(60) + timedelta(seconds=90)
    assert shown.estimate == {
        "p50_seconds": 90.0,
        "p90_seconds": 130.0,
        "p99_seconds": None,
        "probability_meet_rto": 0.62,
        "simulations": 2000,
        "model_version": "v1",
    }
    assert shown.critical_path == critical.critical_path  # the step bars stay the critical-path forecast
    # A median already behind the clock never projects a finish in the past.
    assert with_estimate(critical, {**answer, "p50_seconds": 30.0}).projected_total_seconds == 60
    down = with_estimate(critical, {"available": False, "reason": "the ML service did not answer (URLError)"})
    assert (down.source, down.projected_total_seconds) == (CRITICAL_PATH, 105)
    assert down.estimate_unavailable == "the ML service did not answer (URLError)"


def test_the_estimator_seam_without_a_provider_and_after_a_failure() -> None:
    calls = []

    def flaky(body: dict) -> dict:
        calls.append(body)
        return {"available": False, "reason": "refused"} if len(calls) == 1 else {"available": True, "p50_seconds": 1}

    previous = estimates._provider
    try:
        estimates.install(None)
        assert estimates.estimate({}) == {"available": False, "reason": "no recovery-time estimator is configured"}
        estimates.install(flaky)
        assert estimates.estimate({})["reason"] == "refused"
        assert estimates.estimate({})["reason"] == "refused"  # not asked again for a while
        assert len(calls) == 1
        estimates.reset()
        assert estimates.estimate({})["available"] is True
        assert len(calls) == 2
    finally:
        estimates.install(previous)
