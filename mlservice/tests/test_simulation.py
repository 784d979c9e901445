"""The Monte Carlo against cases with a known answer, its speed, and its input checks."""

from __future__ import annotations

import math
import random
import time

import numpy as np
import pytest

from mlservice.simulation import (
    Distribution,
    SimStep,
    SimulationInputError,
    distribution_from,
    reference_makespan,
    simulate,
    summary,
)


def fixed(value: float) -> Distribution:
    return Distribution("fixed", value=value)


def random_dag(count: int, seed: int) -> list[SimStep]:
    rng = random.Random(seed)
    steps = []
    for i in range(count):
        needs = [f"s{j}" for j in rng.sample(range(i), min(i, rng.randint(0, 3)))]
        median = rng.uniform(5, 300)
        duration = Distribution("lognormal", median=median, sigma=0.5)
        steps.append(SimStep(f"s{i}", duration, needs, priority=rng.random()))
    return steps


def test_a_chain_of_fixed_durations_is_their_sum_in_every_run() -> None:
    steps = [SimStep(f"s{i}", fixed(10.0 * (i + 1)), [f"s{i - 1}"] if i else []) for i in range(5)]
    result = simulate(steps, simulations=2000, seed=1)
    assert np.all(result.totals == 150.0)
    out = summary(result, rto_seconds=150)
    assert out["p50_seconds"] == out["p90_seconds"] == out["p99_seconds"] == 150.0
    assert out["probability_meet_rto"] == 1.0
    assert summary(result, rto_seconds=149.9)["probability_meet_rto"] == 0.0
    assert out["last_to_finish"] == {"s4": 1.0}


def test_a_chain_with_parallelism_one_and_an_approval_delay() -> None:
    steps = [SimStep("a", fixed(5)), SimStep("b", fixed(7)), SimStep("c", fixed(1), ["a", "b"], wait=fixed(2))]
    result = simulate(steps, simulations=100, seed=1, parallelism=1, start_delay=fixed(30))
    assert np.all(result.totals == 30 + 5 + 7 + 2 + 1)


def exp_max_quantile(q: float, mean_a: float, mean_b: float) -> float:
    """t with P(max(A, B) <= t) = q for independent exponentials: (1 - e^(-t/a)) (1 - e^(-t/b)) = q."""
    low, high = 0.0, 100 * max(mean_a, mean_b)
    for _ in range(200):
        mid = (low + high) / 2
        if (1 - math.exp(-mid / mean_a)) * (1 - math.exp(-mid / mean_b)) < q:
            low = mid
        else:
            high = mid
    return low


def test_two_parallel_exponentials_match_the_distribution_of_their_maximum() -> None:
    steps = [
        SimStep("a", Distribution("exponential", mean=100.0)),
        SimStep("b", Distribution("exponential", mean=50.0)),
    ]
    result = simulate(steps, simulations=100_000, seed=7)
    for q in (50, 90, 99):
        assert result.percentile(q) == pytest.approx(exp_max_quantile(q / 100, 100, 50), rel=0.03)
    expected_mean = 100 + 50 - 1 / (1 / 100 + 1 / 50)  # E[max] = a + b - 1/(1/a + 1/b)
    assert result.totals.mean() == pytest.approx(expected_mean, rel=0.02)
    t = 200.0
    analytic = (1 - math.exp(-t / 100)) * (1 - math.exp(-t / 50))
    assert result.probability_within(t) == pytest.approx(analytic, abs=0.01)
    # with one slot they run one after the other: the sum, whose mean is a + b
    serial = simulate(steps, simulations=100_000, seed=7, parallelism=1)
    assert serial.totals.mean() == pytest.approx(150, rel=0.02)


def test_ten_thousand_runs_of_a_200_step_dag_take_under_a_second() -> None:
    steps = random_dag(200, seed=3)
    simulate(steps, simulations=500, seed=0, parallelism=4)  # warm up
    for parallelism in (None, 4):
        started = time.perf_counter()
        result = simulate(steps, simulations=10_000, seed=1, parallelism=parallelism)
        elapsed = time.perf_counter() - started
        assert result.totals.shape == (10_000,)
        assert elapsed < 1.0, f"parallelism {parallelism}: {elapsed:.2f} s"


def test_with_a_parallelism_limit_the_vectorised_schedule_stays_close_to_the_engines_dispatch() -> None:
    """The serial schedule of a fixed dispatch order against an exact event-driven run of the engine's
    rule (a free slot goes to the ready step of highest priority), on the same 200-step DAG."""
    steps = random_dag(200, seed=3)
    index = {s.key: i for i, s in enumerate(steps)}
    needs = [[index[k] for k in s.needs] for s in steps]
    rng = np.random.default_rng(5)
    for parallelism in (2, 8):
        vectorised = simulate(steps, simulations=4000, seed=1, parallelism=parallelism)
        priority = [s.priority for s in steps]
        exact = [
            reference_makespan([s.duration.sample(1, rng)[0] for s in steps], needs, priority, parallelism)[0]
            for _ in range(300)
        ]
        for q in (50, 90):
            ratio = vectorised.percentile(q) / float(np.percentile(exact, q))
            assert 0.97 <= ratio <= 1.08, (parallelism, q, ratio)


def test_without_a_limit_the_vectorised_schedule_is_the_exact_one() -> None:
    steps = random_dag(60, seed=4)
    index = {s.key: i for i, s in enumerate(steps)}
    needs = [[index[k] for k in s.needs] for s in steps]
    fixed_steps = [SimStep(s.key, fixed(s.duration.median), s.needs) for s in steps]
    exact, _ = reference_makespan([s.duration.median for s in steps], needs, [0.0] * 60, None)
    assert simulate(fixed_steps, simulations=10, seed=0).totals[0] == pytest.approx(exact)


def test_a_running_execution_keeps_what_is_done_and_what_has_started() -> None:
    steps = [
        SimStep("a", fixed(10), done_at=10.0),
        SimStep("b", fixed(30), ["a"], started_at=10.0),
        SimStep("c", fixed(5), ["b"]),
    ]
    result = simulate(steps, simulations=50, seed=0, now_offset=25.0)
    assert np.all(result.totals == 45.0)  # b ends at 10 + 30, c 5 s later
    late = simulate(steps, simulations=50, seed=0, now_offset=60.0)  # b overran: it ends now
    assert np.all(late.totals == 65.0)


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ([SimStep("a", fixed(1), ["b"]), SimStep("b", fixed(1), ["a"])], "steps"),
        ([SimStep("a", fixed(1), ["zzz"])], "steps[0].needs[0]"),
        ([SimStep("a", fixed(1)), SimStep("a", fixed(1))], "steps[1].key"),
        ([SimStep("a", fixed(1), ["a"])], "steps[0].needs[0]"),
    ],
)
def test_bad_graphs_are_refused_naming_the_field(steps: list[SimStep], field: str) -> None:
    with pytest.raises(SimulationInputError) as caught:
        simulate(steps, simulations=10)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"type": "fixed", "value": -1}, "d.value"),
        ({"type": "fixed", "value": float("nan")}, "d.value"),
        ({"type": "lognormal", "median": float("inf"), "sigma": 1}, "d.median"),
        ({"type": "lognormal", "median": 5}, "d.sigma"),
        ({"type": "exponential", "mean": 5, "rate": 1}, "d.rate"),
        ({"type": "gamma"}, "d.type"),
        ({"type": "empirical", "samples": [1, -2]}, "d.samples[1]"),
        ({"type": "uniform", "low": 5, "high": 1}, "d.high"),
    ],
)
def test_bad_distributions_are_refused_naming_the_field(spec: dict, field: str) -> None:
    with pytest.raises(SimulationInputError) as caught:
        distribution_from(spec, "d")
    assert caught.value.field == field


def test_the_work_of_one_request_is_bounded() -> None:
    steps = [SimStep(f"s{i}", fixed(1.0)) for i in range(2_000)]
    with pytest.raises(SimulationInputError) as caught:
        simulate(steps, simulations=10_001)
    assert caught.value.field == "simulations"
    assert simulate(steps, simulations=10_000, seed=1).totals.shape == (10_000,)
