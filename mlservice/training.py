"""`manage.py ml train`: every model's files, each validated on data it was not fitted on.

- rto: mlservice.rto (the platform's history when thick enough, else the generator: the card says which);
- recovery_time: the priors of mlservice.durations, calibrated on the measured steps of the database when
  there are enough; its card also holds the tail check against real incident durations when
  ../shared/data/outages/ is there;
- failure_risk: mlservice.failure_risk on the vendored Backblaze Drive Stats subset;
- impact: documented formulas; its card records the check of the exact recovery order against brute force.
"""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from mlservice import artifacts, durations, failure_risk, impact, outages, plan_data, rto
from mlservice.simulation import simulate

FULL = {"rto": {"plans": 400, "runs_per_plan": 20, "rounds": 300}, "risk": {"rounds": 150, "folds": 5}}
QUICK = {
    "rto": {"plans": 80, "runs_per_plan": 8, "rounds": 60},
    "risk": {"rounds": 25, "folds": 3, "compare_time_counters": False},
}


def history_note() -> tuple[bool, str]:
    runs = plan_data.finished_runs()
    plans = {r.plan_id for r in runs}
    enough = len(runs) >= rto.HISTORY_MIN_RUNS and len(plans) >= rto.HISTORY_MIN_PLANS
    return enough, (
        f"{len(runs)} completed real failovers over {len(plans)} plans in this database; training on history needs "
        f"{rto.HISTORY_MIN_RUNS} over {rto.HISTORY_MIN_PLANS}"
    )


def history_rows(priors: durations.Priors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The RTO model's rows from the platform's completed real failovers: each run's features as they were
    before it ran (step means from the runs before it, else the estimates), its measured RTO, its plan."""
    rows, targets, groups = [], [], []
    for run in plan_data.finished_runs():
        if not run.actual_rto_seconds or run.actual_rto_seconds <= 0:
            continue
        steps = list(run.step_runs.all())
        if not steps:
            continue
        history = plan_data.step_history([s.step_key for s in steps], before=run.triggered_at)
        means = []
        for s in steps:
            work, wait, source = durations.fit_step(
                s.action, s.estimated_duration_seconds, history.get(s.step_key, []), priors, gate=bool(s.approval)
            )
            means.append(
                rto.StepMean(
                    s.step_key,
                    [k for k in s.needs if k in {t.step_key for t in steps}],
                    work.expected() + wait.expected(),
                    s.action == "manual",
                    bool(s.approval),
                    source == "history",
                )
            )
        features = rto.plan_features(
            means,
            approval_levels=len(run.approval_policy or []),
            parallelism=run.parallelism,
            tier=min((s.tier for s in steps), default=3),
            strategy=run.plan.strategy,
            conditions={},
        )
        rows.append([features[f] for f in rto.FEATURES])
        targets.append(float(run.actual_rto_seconds))
        groups.append(run.plan_id)
    return np.array(rows, dtype=float).reshape(len(rows), len(rto.FEATURES)), np.array(targets), np.array(groups)


def train_rto(priors: durations.Priors, sizes: dict[str, int]) -> tuple[Any, dict[str, Any]]:
    """On the platform's history when it has HISTORY_MIN_RUNS completed failovers over HISTORY_MIN_PLANS plans,
    else on the generator; the card's data_provenance says which and why."""
    enough, note = history_note()
    if enough:
        x, y, groups = history_rows(priors)
        if len(y) >= rto.HISTORY_MIN_RUNS and len(set(groups.tolist())) >= rto.HISTORY_MIN_PLANS:
            return rto.train(priors, history=(x, y, groups), history_note=note, rounds=sizes["rounds"])
    return rto.train(priors, history_note=note, **sizes)


def recovery_time_card(priors: durations.Priors) -> dict[str, Any]:
    rng = random.Random(1)  # noqa: S311 - a simulation, not a secret
    examples: dict[str, np.ndarray] = {}
    for name, count in (("chain_of_8_automated", 8), ("40_steps_with_manual_and_gates", 40)):
        from mlservice.simulation import SimStep

        steps = []
        for i in range(count):
            action = "manual" if name.startswith("40") and i % 7 == 3 else "shell"
            work, wait, _ = durations.fit_step(
                action, rng.uniform(20, 300), [], priors, gate=name.startswith("40") and i % 13 == 5
            )
            needs = [f"s{i - 1}"] if i and (name.startswith("chain") or i % 4) else []
            steps.append(SimStep(f"s{i}", work, needs, wait=wait))
        examples[name] = simulate(steps, simulations=20_000, seed=2).totals
    return {
        "name": "recovery_time",
        "kind": "Monte Carlo of the composed step DAG (mlservice/simulation.py), per-step lognormal durations",
        "data_provenance": {
            "source": "step histories of the database at request time; priors where a step has none",
            "calibration": priors.sources,
            "measured_steps": len(plan_data.measured_steps()),
        },
        "features": ["the plan's composed steps, their needs, estimates, actions, gates; parallelism; go/no-go levels"],
        "priors": priors.as_dict(),
        "metrics": {
            "validation": "exact against analytic cases in mlservice/tests/test_simulation.py (a chain of fixed "
            "durations; the max of two exponentials; the engine's event-driven dispatch)",
            "tail_check_against_cloud_incidents": outages.compare(examples),
        },
    }


def impact_card(seed: int = 0, instances: int = 20) -> dict[str, Any]:
    rng = random.Random(seed)  # noqa: S311 - a simulation, not a secret
    matches, ratios = 0, []
    for _ in range(instances):
        apps = [
            impact.App(
                f"a{i}",
                rng.uniform(60, 3600),
                rng.uniform(0, 50_000),
                [f"a{j}" for j in range(i) if rng.random() < 0.25],
            )
            for i in range(7)
        ]
        slots = rng.choice((1, 2, 3))
        got = impact.recovery_order(apps, slots)["total_downtime_cost"]
        best = min(
            impact.decode(apps, list(order), slots)[0]
            for order in itertools.permutations(range(7))
            if impact._feasible(apps, order)
        )
        matches += abs(got - round(best, 2)) < 0.02
        big = apps + [impact.App(f"b{i}", rng.uniform(60, 3600), rng.uniform(0, 50_000), []) for i in range(8)]
        ratios.append(impact.recovery_order(big, slots)["certified_ratio"])
    return {
        "name": "impact",
        "kind": "documented formulas (scores) and an exact / certified search (recovery order): mlservice/impact.py",
        "data_provenance": {"source": "no training data: there are no labelled severities to learn from"},
        "features": [
            "BIA figures of analytics.ImpactAnalysis",
            "applications: recovery time, cost per hour, dependencies",
        ],
        "metrics": {
            "exact_order_matches_brute_force": f"{matches}/{instances} random instances of 7 applications",
            "heuristic_certified_ratio_15_apps": {
                "mean": round(float(np.mean(ratios)), 4),
                "max": round(max(ratios), 4),
            },
        },
    }


def train_all(directory: Path | None = None, *, quick: bool = False, log: Any = print) -> dict[str, float]:
    """Train and write every model; returns the seconds each took."""
    sizes = QUICK if quick else FULL
    timings: dict[str, float] = {}
    started = time.perf_counter()
    priors = durations.calibrate(plan_data.measured_steps())
    artifacts.save("recovery_time", recovery_time_card(priors), directory=directory)
    timings["recovery_time"] = time.perf_counter() - started
    log(f"recovery_time: priors {priors.sources}")

    started = time.perf_counter()
    booster, card = train_rto(priors, sizes["rto"])
    artifacts.save("rto", card, bytes(booster.save_raw("ubj")), directory=directory)
    timings["rto"] = time.perf_counter() - started
    m = card["metrics"]
    log(
        f"rto: P50 MAE {m['p50_mae_seconds']} s vs baseline {m['baseline']['mae_seconds']} s, "
        f"P90 coverage {m['p90_coverage']} ({timings['rto']:.1f} s)"
    )

    started = time.perf_counter()
    booster, card = failure_risk.train(**sizes["risk"])
    artifacts.save("failure_risk", card, bytes(booster.save_raw("ubj")), directory=directory)
    timings["failure_risk"] = time.perf_counter() - started
    log(f"failure_risk: ROC-AUC {card['metrics']['roc_auc']} ({timings['failure_risk']:.1f} s)")

    started = time.perf_counter()
    artifacts.save("impact", impact_card(instances=5 if quick else 20), directory=directory)
    timings["impact"] = time.perf_counter() - started
    return timings
