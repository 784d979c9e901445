"""The RTO model on the generator: held out by plan, against the critical-path baseline; feature checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlservice import rto
from mlservice.durations import Priors


def test_held_out_plans_are_never_trained_on_and_the_model_beats_the_baseline() -> None:
    x, y, groups = rto.generate(90, 8, 3, Priors())
    metrics = rto.validate(x, y, groups, rounds=80, seed=3)
    assert metrics["plans_in_both_train_and_test"] == 0
    assert metrics["p50_mae_seconds"] < metrics["baseline"]["mae_seconds"]
    assert 0.7 <= metrics["p90_coverage"] <= 1.0
    assert metrics["test_rows"] == metrics["test_plans"] * 8


def test_features_must_be_exactly_the_models() -> None:
    good = dict.fromkeys(rto.FEATURES, 1.0) | {"data_volume_gb": None}
    assert math.isnan(rto.check_features(good)["data_volume_gb"])
    for bad, field in (
        ({k: v for k, v in good.items() if k != "tier"}, "features.tier"),
        (good | {"colour": 1}, "features.colour"),
        (good | {"tier": -1}, "features.tier"),
        (good | {"tier": float("nan")}, "features.tier"),
        (good | {"tier": "1"}, "features.tier"),
        (good | {"step_count": 0}, "features.step_count"),
    ):
        with pytest.raises(rto.RTOInputError) as caught:
            rto.check_features(bad)
        assert caught.value.field == field


def test_the_critical_path_is_the_longest_chain_of_means() -> None:
    steps = [
        rto.StepMean("c", ["a", "b"], 5, False, False, True),
        rto.StepMean("a", [], 10, False, False, True),
        rto.StepMean("b", [], 30, True, False, False),
    ]
    features = rto.plan_features(
        steps, approval_levels=1, parallelism=None, tier=1, strategy="pilot_light", conditions={}
    )
    assert features["critical_path_seconds"] == 35 and features["longest_chain_steps"] == 2
    assert features["total_step_seconds"] == 45 and features["manual_steps"] == 1
    assert features["history_share"] == pytest.approx(2 / 3) and features["strategy_pilot_light"] == 1
    assert np.isnan(rto.vector(features)[0, rto.FEATURES.index("network_latency_ms")])


@pytest.mark.django_db
def test_with_enough_real_failovers_it_learns_from_history_split_by_plan() -> None:
    from datetime import UTC, datetime, timedelta

    from failover.models import FailoverExecution, StepRun
    from mlservice import training
    from plans.models import DRPlan

    start = datetime(2026, 1, 1, tzinfo=UTC)
    rng = np.random.default_rng(4)
    for p in range(5):
        plan = DRPlan.objects.create(plan_id=f"p{p}", name=f"P{p}", rto_seconds=600, rpo_seconds=60)
        for r in range(6):
            durations = rng.lognormal(np.log(60 * (p + 1)), 0.3, 3)
            run = FailoverExecution.objects.create(
                plan=plan,
                execution_type="planned",
                status="completed",
                triggered_at=start + timedelta(days=7 * r, hours=p),
                actual_rto_seconds=float(durations.sum() + 30),
            )
            for i, seconds in enumerate(durations):
                StepRun.objects.create(
                    execution=run,
                    step_key=f"app{p}.s{i}",
                    title=f"s{i}",
                    action="shell",
                    status="succeeded",
                    duration_seconds=float(seconds),
                    needs=[f"app{p}.s{i - 1}"] if i else [],
                    estimated_duration_seconds=60,
                )
    x, y, groups = training.history_rows(Priors())
    assert y.min() > 30
    assert x.shape == (30, len(rto.FEATURES)) and sorted(set(groups.tolist())) == sorted(
        DRPlan.objects.values_list("pk", flat=True)
    )
    first = x[:, rto.FEATURES.index("history_share")]
    assert first.min() == 0 and first.max() == 1  # a plan's first run has no history before it, later ones do
    _, card = training.train_rto(Priors(), {"plans": 10, "runs_per_plan": 2, "rounds": 20})
    assert card["data_provenance"]["source"] == "history" and card["data_provenance"]["rows"] == 30
    assert card["metrics"]["plans_in_both_train_and_test"] == 0
