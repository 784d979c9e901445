"""Impact scores and the recovery order: the exact search against brute force over every permutation."""

from __future__ import annotations

import itertools
import random

import pytest

from mlservice.impact import EXACT_LIMIT, App, ImpactInputError, check_apps, lower_bound, recovery_order, scores


def brute_force(apps: list[App], slots: int) -> float:
    """Every permutation that respects the dependencies, each scheduled by the plain serial rule (written
    again here, independently of mlservice.impact): the cheapest total downtime cost."""
    by_key = {a.key: a for a in apps}
    best = float("inf")
    for perm in itertools.permutations(apps):
        done: dict[str, float] = {}
        free = [0.0] * slots
        cost = 0.0
        feasible = True
        for app in perm:
            if any(d not in done for d in app.depends_on):
                feasible = False
                break
            ready = max([0.0, *(done[d] for d in app.depends_on)])
            k = free.index(min(free))
            done[app.key] = max(ready, free[k]) + by_key[app.key].recovery_seconds
            free[k] = done[app.key]
            cost += app.cost_per_hour * done[app.key] / 3600
        if feasible:
            best = min(best, cost)
    return best


def random_instance(n: int, seed: int) -> list[App]:
    rng = random.Random(seed)
    apps = []
    for i in range(n):
        deps = [f"a{j}" for j in range(i) if rng.random() < 0.25]
        apps.append(
            App(
                f"a{i}",
                rng.choice([300, 600, 900, 1800, 3600, 7200]) * rng.uniform(0.5, 1.5),
                rng.choice([0, 1000, 5000, 20000, 120000]) * rng.uniform(0.5, 1.5),
                deps,
            )
        )
    rng.shuffle(apps)
    return apps


@pytest.mark.parametrize("seed", range(12))
def test_the_recovery_order_matches_brute_force_on_small_instances(seed: int) -> None:
    n = 5 + seed % 4  # 5..8 applications
    apps = random_instance(n, seed)
    for parallelism in (1, 2, 3):
        answer = recovery_order(apps, parallelism)
        assert answer["method"] == "exact" and answer["optimal"] is True
        assert answer["total_downtime_cost"] == pytest.approx(brute_force(apps, parallelism), abs=0.01)
        assert answer["lower_bound"] <= answer["total_downtime_cost"] + 0.01
        position = {key: i for i, key in enumerate(answer["order"])}
        for app in apps:  # dependencies come first, and start after they finish
            start = next(s["start_seconds"] for s in answer["schedule"] if s["application"] == app.key)
            for dep in app.depends_on:
                assert position[dep] < position[app.key]
                assert start >= next(s["finish_seconds"] for s in answer["schedule"] if s["application"] == dep) - 1e-6


def test_large_instances_use_the_heuristic_with_a_certified_bound() -> None:
    apps = random_instance(40, seed=99)
    answer = recovery_order(apps, 4)
    assert answer["method"] == "heuristic" and answer["optimal"] is False
    assert 1.0 <= answer["certified_ratio"] < 3.0
    assert answer["total_downtime_cost"] <= answer["cost_in_given_order"] + 0.01
    assert len(set(answer["order"])) == 40


def test_the_heuristic_alone_is_near_the_optimum_on_small_instances() -> None:
    """What the heuristic would give where the exact answer is known (the gap it leaves, measured)."""
    from mlservice.impact import _heuristic, decode

    worst = 1.0
    for seed in range(10):
        apps = random_instance(7, seed + 100)
        topo = check_apps(apps)
        for slots in (1, 2):
            cost = decode(apps, _heuristic(apps, slots, topo), slots)[0]
            worst = max(worst, cost / brute_force(apps, slots))
    assert worst < 1.10, worst


def test_a_high_cost_application_goes_first_when_nothing_forbids_it() -> None:
    apps = [App("cheap", 600, 100), App("dear", 600, 100000), App("db", 300, 0)]
    assert recovery_order(apps, 1)["order"][0] == "dear"
    apps[1].depends_on = ["db"]  # the dear one needs the database first
    assert recovery_order(apps, 1)["order"][:2] == ["db", "dear"]


def test_exact_limit_and_lower_bound_are_consistent() -> None:
    apps = random_instance(EXACT_LIMIT, 5)
    answer = recovery_order(apps, 2)
    assert answer["method"] == "exact"
    assert lower_bound(apps, 2, check_apps(apps)) <= answer["total_downtime_cost"] + 1e-6


@pytest.mark.parametrize(
    ("apps", "field"),
    [
        ([App("a", 1, 1, ["b"]), App("b", 1, 1, ["a"])], "applications"),
        ([App("a", 1, 1, ["x"])], "applications[0].depends_on[0]"),
        ([App("a", 1, 1), App("a", 1, 1)], "applications[1].id"),
        ([App("a", -1, 1)], "applications[0].recovery_seconds"),
        ([App("a", 1, float("nan"))], "applications[0].cost_per_hour"),
    ],
)
def test_bad_instances_are_refused_naming_the_field(apps: list[App], field: str) -> None:
    with pytest.raises(ImpactInputError) as caught:
        recovery_order(apps, 1)
    assert caught.value.field == field


DEMO_BIA = {
    "revenue_per_hour": 95000,
    "downtime_cost_1h": 120000,
    "downtime_cost_4h": 520000,
    "downtime_cost_24h": 3400000,
    "recovery_cost": 180000,
    "affected_processes": ["Online ordering", "Payments", "Customer login", "Invoicing", "Sales reporting"],
    "critical_processes": ["Online ordering", "Payments", "Customer login"],
    "affected_employees": 420,
    "affected_customers": 1200000,
    "customer_sentiment": "negative",
    "media_exposure": "high",
    "brand_damage": "medium",
    "customer_churn_percent": 2.5,
    "regulatory_frameworks": ["pci_dss", "sox", "iso_22301"],
    "potential_violations": ["PCI-DSS 12.10.1", "GDPR Art. 33"],
    "estimated_fines": 250000,
}


def test_scores_of_the_demo_analysis_follow_the_documented_formulas() -> None:
    out = scores(DEMO_BIA)
    # exposure = max(3.4M, 24 x 95k = 2.28M) + 180k = 3.58M; log10(358)/log10(10^4) x 100 = 63.85
    assert out["financial"]["inputs"]["exposure"] == 3580000
    assert out["financial"]["score"] == pytest.approx(63.85, abs=0.06)
    assert out["reputation"]["score"] == pytest.approx(30 * 0.6 + 25 * 0.75 + 25 * 0.4 + 20 * 0.25, abs=0.05)
    assert out["operational"]["inputs"]["critical_share"] == 0.6
    for part in ("financial", "operational", "reputation", "regulatory", "overall"):
        assert 0 <= out[part]["score"] <= 100
    nothing = dict(
        DEMO_BIA,
        revenue_per_hour=0,
        downtime_cost_24h=0,
        recovery_cost=0,
        affected_processes=[],
        critical_processes=[],
        affected_employees=0,
        affected_customers=0,
        customer_sentiment="positive",
        media_exposure="low",
        brand_damage="low",
        customer_churn_percent=0,
        regulatory_frameworks=[],
        potential_violations=[],
        estimated_fines=0,
    )
    assert scores(nothing)["overall"] == {"score": 0.0, "level": "low"}


def test_the_heuristic_answers_in_bounded_time_and_stays_certified() -> None:
    import random
    import time

    from mlservice.impact import App, recovery_order

    rng = random.Random(5)
    apps = [
        App(
            f"a{i}",
            rng.uniform(60, 3600),
            rng.uniform(0, 5e4),
            [f"a{j}" for j in range(i) if rng.random() < 3 / (i + 1)],
        )
        for i in range(300)
    ]
    started = time.perf_counter()
    answer = recovery_order(apps, 4)
    assert time.perf_counter() - started < 10
    assert answer["method"] == "heuristic" and answer["certified_ratio"] >= 1
    assert answer["total_downtime_cost"] <= answer["cost_in_given_order"]
