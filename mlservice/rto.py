"""RTO prediction: XGBoost quantile regression (P50 and P90) of a plan's recovery time.

Features (FEATURES): the plan's shape (steps, manual steps, approval gates and go/no-go levels, parallelism,
longest chain), its `critical_path_seconds` (the sum of mean step durations along the critical path: each
step's mean from its history, else from its estimate and the priors of mlservice.durations), the sum of
all mean step durations, the share of steps with history, tier, strategy, and the conditions of this
recovery: data volume, replication lag and network latency (each may be unknown: XGBoost treats a missing
value as missing, it learned from rows where they were missing too).

Training data. The platform's own execution history when it is thick enough (at least HISTORY_MIN_RUNS
completed real failovers over HISTORY_MIN_PLANS plans); otherwise THE GENERATOR below, and the model card
says which (`data_provenance.source`). The generator draws plans shaped like DRPlan's composed failovers
(applications of 3-8 chained steps, the dependency map between applications, some manual steps and gates)
and runs each many times under varying conditions; one run's step durations are:
- automated: estimate x plan bias x lognormal(0, sigma) + network latency x remote calls (5-40 per step);
  bias and sigma are the calibrated `automated_bias`/`automated_sigma` (durations.calibrate on the measured
  steps of the database when there are 20 or more; else the priors — the card says which);
- the data step of each application (restore or resync): + data volume / throughput, throughput lognormal
  (median 400 MB/s, sigma 0.5; backup-and-restore plans 100 MB/s);
- the promote step: + replication lag x catch-up factor uniform(0.5, 1.5);
- manual: its work (estimate, sigma 0.5) + the pickup wait (durations priors); gates and go/no-go levels:
  the approval wait prior;
and the run's RTO is the engine's schedule of those durations (simulation.reference_makespan: the parallelism
limit, dispatch by priority). The plan's "history" is five earlier runs under its usual conditions, from
which each step's mean is taken: the baseline and the `critical_path_seconds` feature.

The P90 gets a split-conformal offset (fit_calibrated) measured on plans the trees did not see.

Validation: plans held out whole (GroupShuffleSplit by plan, never by row): MAE of the P50 against the
baseline "sum of mean step durations along the critical path" on the same held-out rows, the P90's
coverage (share of held-out actuals at or below it) and the pinball losses.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlservice.durations import Priors
from mlservice.simulation import reference_makespan

STRATEGIES = ("active_active", "active_passive", "pilot_light", "backup_restore")
FEATURES = [
    "step_count",
    "manual_steps",
    "approval_gates",
    "approval_levels",
    "parallelism",
    "longest_chain_steps",
    "critical_path_seconds",
    "total_step_seconds",
    "history_share",
    "tier",
    *[f"strategy_{s}" for s in STRATEGIES],
    "data_volume_gb",
    "replication_lag_seconds",
    "network_latency_ms",
]
CONDITIONS = ("data_volume_gb", "replication_lag_seconds", "network_latency_ms")
QUANTILES = (0.5, 0.9)
HISTORY_MIN_RUNS = 30
HISTORY_MIN_PLANS = 5
PARAMS = {
    "objective": "reg:quantileerror",
    "quantile_alpha": list(QUANTILES),
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.08,
    "subsample": 0.8,
    "min_child_weight": 5,
    "nthread": 2,
}
ROUNDS = 300


class RTOInputError(ValueError):
    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


# --- Features of a plan -----------------------------------------------------------------------------


@dataclass
class StepMean:
    key: str
    needs: list[str]
    mean_seconds: float
    manual: bool
    gate: bool
    from_history: bool


def longest_path(steps: list[StepMean]) -> tuple[float, int]:
    """(seconds, steps) of the longest chain by mean duration; steps must be in an order where needs come
    first (a topological order)."""
    finish: dict[str, float] = {}
    count: dict[str, int] = {}
    for s in steps:
        before = max(s.needs, key=lambda k: finish[k], default=None)
        finish[s.key] = (finish[before] if before else 0.0) + s.mean_seconds
        count[s.key] = (count[before] if before else 0) + 1
    last = max(finish, key=finish.get)
    return finish[last], count[last]


def topological(steps: list[StepMean]) -> list[StepMean]:
    by_key = {s.key: s for s in steps}
    done: set[str] = set()
    out: list[StepMean] = []
    for start in steps:
        stack = [(start.key, False)]
        while stack:
            key, expanded = stack.pop()
            if key in done:
                continue
            if expanded:
                done.add(key)
                out.append(by_key[key])
                continue
            stack.append((key, True))
            stack.extend((n, False) for n in by_key[key].needs if n not in done)
    return out


def plan_features(
    steps: list[StepMean],
    *,
    approval_levels: int,
    parallelism: int | None,
    tier: int,
    strategy: str,
    conditions: dict[str, float | None],
) -> dict[str, float]:
    ordered = topological(steps)
    critical, chain = longest_path(ordered)
    out: dict[str, float] = {
        "step_count": len(steps),
        "manual_steps": sum(s.manual for s in steps),
        "approval_gates": sum(s.gate for s in steps),
        "approval_levels": approval_levels,
        "parallelism": min(parallelism or len(steps), len(steps)),
        "longest_chain_steps": chain,
        "critical_path_seconds": critical,
        "total_step_seconds": sum(s.mean_seconds for s in steps),
        "history_share": sum(s.from_history for s in steps) / len(steps),
        "tier": tier,
    }
    for s in STRATEGIES:
        out[f"strategy_{s}"] = 1.0 if strategy == s else 0.0
    for name in CONDITIONS:
        value = conditions.get(name)
        out[name] = math.nan if value is None else float(value)
    return out


def vector(features: dict[str, float]) -> np.ndarray:
    return np.array([[features[f] for f in FEATURES]], dtype=float)


def check_features(features: Any) -> dict[str, float]:
    """Exactly FEATURES; numbers, finite, not negative; conditions may be null (unknown)."""
    if not isinstance(features, dict):
        raise RTOInputError("features", "must be an object")
    missing = [f for f in FEATURES if f not in features]
    if missing:
        raise RTOInputError(f"features.{missing[0]}", "is required")
    extra = sorted(set(features) - set(FEATURES))
    if extra:
        raise RTOInputError(f"features.{extra[0]}", "is not a feature of the model")
    out: dict[str, float] = {}
    for name in FEATURES:
        value = features[name]
        if value is None and name in CONDITIONS:
            out[name] = math.nan
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise RTOInputError(f"features.{name}", "must be a number")
        if not math.isfinite(value):
            raise RTOInputError(f"features.{name}", "must be a finite number")
        if value < 0:
            raise RTOInputError(f"features.{name}", "must not be negative")
        out[name] = float(value)
    if out["step_count"] < 1:
        raise RTOInputError("features.step_count", "must be at least 1")
    return out


# --- The generator ----------------------------------------------------------------------------------


@dataclass
class GenStep:
    key: str
    needs: list[str]
    kind: str  # automated | manual | data | promote
    estimate: float
    gate: bool
    calls: int
    priority: float


@dataclass
class GenPlan:
    steps: list[GenStep]
    approval_levels: int
    parallelism: int | None
    tier: int
    strategy: str
    bias: float
    usual: dict[str, float]


def _gen_plan(rng: random.Random, priors: Priors) -> GenPlan:
    apps = rng.randint(1, 6)
    strategy = rng.choice(STRATEGIES)
    steps: list[GenStep] = []
    last_of: list[str] = []
    for a in range(apps):
        length = rng.randint(3, 8)
        data_at = rng.randrange(1, length)
        promote_at = min(length - 1, data_at + 1)
        deps = [last_of[d] for d in rng.sample(range(a), min(a, rng.randint(0, 2)))] if a else []
        for i in range(length):
            kind = "data" if i == data_at else "promote" if i == promote_at else "automated"
            if kind == "automated" and rng.random() < 0.15:
                kind = "manual"
            needs = [f"a{a}.s{i - 1}"] if i else list(deps)
            estimate = math.exp(rng.uniform(math.log(5), math.log(600)))
            steps.append(
                GenStep(f"a{a}.s{i}", needs, kind, estimate, rng.random() < 0.05, rng.randint(5, 40), rng.random())
            )
        last_of.append(f"a{a}.s{length - 1}")
    return GenPlan(
        steps=steps,
        approval_levels=rng.choice((0, 0, 1, 1, 2)),
        parallelism=rng.choice((None, None, 1, 2, 4)),
        tier=rng.randint(1, 3),
        strategy=strategy,
        bias=priors.automated_bias * math.exp(rng.gauss(0, 0.25)),
        usual={
            "data_volume_gb": math.exp(rng.uniform(math.log(1), math.log(2000))),
            "replication_lag_seconds": math.exp(rng.uniform(math.log(0.5), math.log(600))),
            "network_latency_ms": math.exp(rng.uniform(math.log(0.2), math.log(150))),
        },
    )


def _conditions(rng: random.Random, plan: GenPlan) -> dict[str, float]:
    return {k: v * math.exp(rng.gauss(0, 0.6)) for k, v in plan.usual.items()}


def _run(rng: random.Random, plan: GenPlan, cond: dict[str, float], priors: Priors) -> tuple[float, list[float]]:
    """One recovery: (RTO, each step's duration including its waits)."""
    throughput_median = 100.0 if plan.strategy == "backup_restore" else 400.0
    durations = []
    for s in plan.steps:
        if s.kind == "manual":
            d = s.estimate * math.exp(rng.gauss(0, priors.manual_work_sigma))
            d += priors.manual_pickup_median * math.exp(rng.gauss(0, priors.manual_pickup_sigma))
        else:
            d = s.estimate * plan.bias * math.exp(rng.gauss(0, priors.automated_sigma))
            d += cond["network_latency_ms"] / 1000 * s.calls
            if s.kind == "data" and plan.strategy != "active_active":
                d += cond["data_volume_gb"] * 1024 / (throughput_median * math.exp(rng.gauss(0, 0.5)))
            if s.kind == "promote":
                d += cond["replication_lag_seconds"] * rng.uniform(0.5, 1.5)
        if s.gate:
            d += priors.approval_median * math.exp(rng.gauss(0, priors.approval_sigma))
        durations.append(d)
    start = sum(
        priors.approval_median * math.exp(rng.gauss(0, priors.approval_sigma)) for _ in range(plan.approval_levels)
    )
    index = {s.key: i for i, s in enumerate(plan.steps)}
    needs = [[index[k] for k in s.needs] for s in plan.steps]
    total, _ = reference_makespan(durations, needs, [s.priority for s in plan.steps], plan.parallelism, start)
    return total, durations


def generate(plans: int, runs_per_plan: int, seed: int, priors: Priors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, y seconds, plan group) from the generator."""
    rng = random.Random(seed)  # noqa: S311 - a simulation, not a secret
    rows, targets, groups = [], [], []
    for p in range(plans):
        plan = _gen_plan(rng, priors)
        history = [_run(rng, plan, plan.usual, priors)[1] for _ in range(5)]
        means = np.mean(history, axis=0)
        step_means = [
            StepMean(s.key, s.needs, float(means[i]), s.kind == "manual", s.gate, True)
            for i, s in enumerate(plan.steps)
        ]
        for _ in range(runs_per_plan):
            cond = _conditions(rng, plan)
            actual, _ = _run(rng, plan, cond, priors)
            shown = {k: (None if rng.random() < 0.25 else v) for k, v in cond.items()}
            features = plan_features(
                step_means,
                approval_levels=plan.approval_levels,
                parallelism=plan.parallelism,
                tier=plan.tier,
                strategy=plan.strategy,
                conditions=shown,
            )
            rows.append([features[f] for f in FEATURES])
            targets.append(actual)
            groups.append(p)
    return np.array(rows, dtype=float), np.array(targets), np.array(groups)


# --- Training and validation ------------------------------------------------------------------------


def _fit(x: np.ndarray, y: np.ndarray, rounds: int, seed: int) -> Any:
    import xgboost as xgb

    dtrain = xgb.QuantileDMatrix(x, label=np.log(y))
    return xgb.train(dict(PARAMS, seed=seed), dtrain, num_boost_round=rounds)


def predict_quantiles(booster: Any, x: np.ndarray, p90_log_offset: float = 0.0) -> np.ndarray:
    """(rows, 2) seconds: P50, P90 (with its conformal offset; never below the P50). `booster` is an XGBoost
    Booster or its CompiledTrees (mlservice/trees.py)."""
    from mlservice.trees import CompiledTrees

    raw = booster.predict(x) if isinstance(booster, CompiledTrees) else booster.inplace_predict(x)
    out = np.asarray(raw).reshape(len(x), len(QUANTILES)).astype(float)
    out[:, 1] += p90_log_offset
    out = np.exp(out)
    out[:, 1] = np.maximum(out[:, 1], out[:, 0])
    return out


def fit_calibrated(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, rounds: int, seed: int
) -> tuple[Any, float, dict[str, int]]:
    """Quantile regression alone under-covers on plans it has not seen (measured: ~83 % for a nominal 90 %).
    Split conformal, by plan: fit on 80 % of the plans, then raise the P90 (in log seconds) by the smallest
    offset that covers ceil((n + 1) x 0.9) of the other 20 %'s rows. Returns (booster, offset, sizes)."""
    from sklearn.model_selection import GroupShuffleSplit

    fit, calibration = next(GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=seed + 7).split(x, y, groups))
    booster = _fit(x[fit], y[fit], rounds, seed)
    raw = booster.inplace_predict(x[calibration]).reshape(len(calibration), len(QUANTILES))
    scores = np.sort(np.log(y[calibration]) - raw[:, 1])
    k = min(len(scores) - 1, math.ceil((len(scores) + 1) * QUANTILES[1]) - 1)
    sizes = {"fit_plans": len(set(groups[fit])), "calibration_plans": len(set(groups[calibration]))}
    return booster, float(scores[k]), sizes


def _pinball(y: np.ndarray, q: np.ndarray, alpha: float) -> float:
    diff = y - q
    return float(np.mean(np.maximum(alpha * diff, (alpha - 1) * diff)))


def validate(x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, rounds: int, seed: int) -> dict[str, Any]:
    from sklearn.model_selection import GroupShuffleSplit

    train, test = next(GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=seed).split(x, y, groups))
    booster, offset, sizes = fit_calibrated(x[train], y[train], groups[train], rounds=rounds, seed=seed)
    raw = predict_quantiles(booster, x[test])
    pred = predict_quantiles(booster, x[test], offset)
    baseline = x[test, FEATURES.index("critical_path_seconds")]
    actual = y[test]
    mae = float(np.mean(np.abs(pred[:, 0] - actual)))
    base_mae = float(np.mean(np.abs(baseline - actual)))
    return {
        "validation": "plans held out whole: GroupShuffleSplit by plan, 25 % of plans",
        "train_plans": len(set(groups[train])),
        "test_plans": len(set(groups[test])),
        "plans_in_both_train_and_test": len(set(groups[train]) & set(groups[test])),
        "test_rows": len(test),
        "p50_mae_seconds": round(mae, 1),
        "p50_median_absolute_percentage_error": round(float(np.median(np.abs(pred[:, 0] - actual) / actual)), 4),
        "p90_coverage": round(float(np.mean(actual <= pred[:, 1])), 4),
        "p90_coverage_before_conformal_offset": round(float(np.mean(actual <= raw[:, 1])), 4),
        "p90_log_offset": round(offset, 4),
        **sizes,
        "p50_coverage": round(float(np.mean(actual <= pred[:, 0])), 4),
        "pinball_loss_p50": round(_pinball(actual, pred[:, 0], 0.5), 1),
        "pinball_loss_p90": round(_pinball(actual, pred[:, 1], 0.9), 1),
        "baseline": {
            "name": "sum of mean step durations along the critical path",
            "mae_seconds": round(base_mae, 1),
            "median_absolute_percentage_error": round(float(np.median(np.abs(baseline - actual) / actual)), 4),
            "coverage": round(float(np.mean(actual <= baseline)), 4),
            "pinball_loss_p50": round(_pinball(actual, baseline, 0.5), 1),
        },
        "p50_mae_vs_baseline": round(mae / base_mae, 4) if base_mae else None,
    }


def train(
    priors: Priors,
    *,
    plans: int = 400,
    runs_per_plan: int = 20,
    rounds: int = ROUNDS,
    seed: int = 0,
    history: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    history_note: str = "",
) -> tuple[Any, dict[str, Any]]:
    """(booster, card): validated on held-out plans, then refit on all of them. With `history` (X, y, plan
    group of the platform's own completed failovers) it learns from those; otherwise from the generator."""
    if history is not None:
        x, y, groups = history
        provenance: dict[str, Any] = {
            "source": "history",
            "why": history_note,
            "rows": len(y),
            "plans": len(set(groups.tolist())),
            "conditions": "data volume, replication lag and network latency are not recorded with a run: missing",
            "priors": priors.as_dict(),
            "calibration": priors.sources,
        }
    else:
        x, y, groups = generate(plans, runs_per_plan, seed, priors)
        provenance = {
            "source": "generator",
            "why": history_note,
            "generator": "mlservice/rto.py (module docstring): synthetic composed failovers, run by the engine's "
            "dispatch rule with step durations from the calibrated priors",
            "calibration": priors.sources,
            "priors": priors.as_dict(),
            "plans": plans,
            "runs_per_plan": runs_per_plan,
            "rows": len(y),
        }
    metrics = validate(x, y, groups, rounds=rounds, seed=seed)
    booster, offset, _ = fit_calibrated(x, y, groups, rounds=rounds, seed=seed)
    booster.set_param({"nthread": 1})
    card = {
        "name": "rto",
        "kind": "XGBoost quantile regression (reg:quantileerror, P50 and P90, of log seconds)",
        "data_provenance": provenance,
        "features": FEATURES,
        "quantiles": list(QUANTILES),
        "p90_log_offset": offset,
        "params": dict(PARAMS, rounds=rounds, seed=seed),
        "metrics": metrics,
        "limits": [
            "trained on generated recoveries, not on this platform's own: its accuracy on real plans is what "
            "the generator's assumptions are worth until enough real runs exist"
            if history is None
            else f"trained on {len(y)} real runs of {len(set(groups.tolist()))} plans: few plans, wide uncertainty",
        ],
    }
    return booster, card
