"""The ML service's use cases: each takes a validated request (mlservice.api.requests) and the loaded models,
and returns the answer. Input a model cannot answer raises core.exceptions.InvalidInput / NotFound /
Conflict naming the field; nothing here makes a number up."""

from __future__ import annotations

import math
import time
from decimal import Decimal
from typing import Any

from core.exceptions import InvalidInput, NotFound
from mlservice import impact, rto, simulation
from mlservice.durations import Priors, fit_step, lognormal
from mlservice.registry import Loaded
from mlservice.simulation import SimStep, SimulationInputError

DEFAULT_SIMULATIONS = 10_000
# A plan's composed failover (composing it takes ~20 queries) and the histories of a set of steps (one query, most
# of a plan prediction's remaining time) are read at most this often per worker: an execution that just finished
# counts in predictions within this many seconds.
PLAN_GRAPH_TTL_SECONDS = 30.0
_graphs: dict[str, tuple[float, Any]] = {}
_histories: dict[tuple[str, ...], tuple[float, dict[str, list[float]]]] = {}


def _step_history(keys: list[str]) -> dict[str, list[float]]:
    from mlservice import plan_data

    key = tuple(sorted(set(keys)))
    now = time.monotonic()
    cached = _histories.get(key)
    if cached and now - cached[0] < PLAN_GRAPH_TTL_SECONDS:
        return cached[1]
    history = plan_data.step_history(key)
    if len(_histories) > 1000:
        _histories.clear()
    _histories[key] = (now, history)
    return history


def _plan_graph(plan_ref: str) -> Any:
    from mlservice import plan_data

    now = time.monotonic()
    cached = _graphs.get(plan_ref)
    if cached and now - cached[0] < PLAN_GRAPH_TTL_SECONDS:
        return cached[1]
    graph = plan_data.plan_graph(plan_data.find_plan(plan_ref))
    if len(_graphs) > 1000:
        _graphs.clear()
    _graphs[plan_ref] = (now, graph)
    return graph


# --- A plan's steps with their distributions ----------------------------------------------------------


def plan_sim_steps(
    plan_ref: str, priors: Priors, applications: list[str] | None = None
) -> tuple[Any, list[SimStep], list[Any]]:
    """(plan graph, SimSteps, PlanSteps) of a plan's composed failover (as read within PLAN_GRAPH_TTL_SECONDS),
    each step's distribution fitted from its history, else its estimate. With `applications` (a disaster
    scenario): only those applications' steps and the steps they need."""

    graph = _plan_graph(plan_ref)
    steps = graph.steps
    if applications is not None:
        known = {s.application for s in steps}
        for i, slug in enumerate(applications):
            if slug not in known:
                raise InvalidInput(
                    f"application {slug!r} has no failover steps in plan {graph.plan_id!r}",
                    field=f"applications[{i}]",
                )
        by_key = {s.key: s for s in steps}
        keep: set[str] = set()
        todo = [s.key for s in steps if s.application in applications]
        while todo:
            key = todo.pop()
            if key not in keep:
                keep.add(key)
                todo.extend(by_key[key].needs)
        steps = [s for s in steps if s.key in keep]
    history = _step_history([s.key for s in steps])
    sim_steps = []
    for s in steps:
        work, wait, source = fit_step(s.action, s.estimate, history.get(s.key, []), priors, gate=s.gate)
        sim_steps.append(SimStep(s.key, work, list(s.needs), wait=wait, priority=float(s.priority), source=source))
    return graph, sim_steps, steps


def _sim_error(exc: SimulationInputError) -> InvalidInput:
    return InvalidInput(exc.message if exc.field in exc.message else f"{exc.field}: {exc.message}", field=exc.field)


# --- POST /estimate-recovery-time ---------------------------------------------------------------------


def estimate_recovery_time(models: Loaded, data: dict[str, Any]) -> dict[str, Any]:
    priors = models.priors
    simulations = data.get("simulations", DEFAULT_SIMULATIONS)
    levels = 0
    if "plan" in data:
        graph, steps, _ = plan_sim_steps(data["plan"], priors, data.get("applications"))
        rto_seconds = data.get("rto_seconds", graph.rto_seconds)
        parallelism = data.get("parallelism", graph.parallelism)
        levels = graph.approval_levels
        plan_id: str | None = graph.plan_id
    else:
        steps = given_sim_steps(data["steps"], priors, data.get("now_offset", 0.0))
        rto_seconds = data.get("rto_seconds")
        parallelism = data.get("parallelism")
        levels = data.get("approval_levels", 0)
        plan_id = None
    start_delay = simulation.ZERO
    if levels:  # the go/no-go levels, one after another, each the approval wait prior (a sum of lognormals)
        start_delay = _sum_lognormals(priors.approval_median, priors.approval_sigma, levels)
    try:
        result = simulation.simulate(
            steps,
            parallelism=parallelism,
            simulations=simulations,
            seed=data.get("seed"),
            start_delay=start_delay,
            now_offset=float(data.get("now_offset", 0.0)),
        )
    except SimulationInputError as exc:
        raise _sim_error(exc) from None
    out = simulation.summary(result, rto_seconds)
    sources: dict[str, int] = {}
    for s in steps:
        sources[s.source] = sources.get(s.source, 0) + 1
    out.update(
        {
            "plan": plan_id,
            "steps": len(steps),
            "parallelism": parallelism,
            "approval_levels": levels,
            "duration_sources": sources,
            "model_version": models.recovery_time["version"],
        }
    )
    return out


def given_sim_steps(specs: list[dict[str, Any]], priors: Priors, now_offset: float) -> list[SimStep]:
    """The request's steps: a given `duration` distribution, or an `action` (+ `estimate`, `gate`) fitted from the
    step's history (by key), else its estimate and the priors, like a plan's steps; `done_at` / `started_at` of a
    running execution, which cannot lie after `now_offset`."""

    fitted = [spec["key"] for spec in specs if "action" in spec]
    history = _step_history(fitted) if fitted else {}
    steps = []
    for i, spec in enumerate(specs):
        for name in ("done_at", "started_at"):
            if spec.get(name, 0) > now_offset:
                raise InvalidInput(f"{name} lies after now_offset ({now_offset:g} s)", field=f"steps[{i}].{name}")
        if "action" in spec:
            duration, wait, source = fit_step(
                spec["action"], spec.get("estimate"), history.get(spec["key"], []), priors, gate=spec.get("gate", False)
            )
        else:
            try:
                duration = simulation.distribution_from(spec["duration"], f"steps[{i}].duration")
                wait = simulation.distribution_from(spec["wait"], f"steps[{i}].wait") if "wait" in spec else None
            except SimulationInputError as exc:
                raise _sim_error(exc) from None
            source = "given"
        steps.append(
            SimStep(
                spec["key"],
                duration,
                list(spec.get("needs", [])),
                wait=wait or simulation.ZERO,
                priority=float(spec.get("priority", 0)),
                source=source,
                done_at=spec.get("done_at"),
                started_at=spec.get("started_at") if spec.get("done_at") is None else None,
            )
        )
    return steps


def _sum_lognormals(median: float, sigma: float, count: int) -> simulation.Distribution:
    mean = median * math.exp(sigma**2 / 2)
    var = (math.exp(sigma**2) - 1) * mean**2
    total_mean, total_var = count * mean, count * var
    s2 = math.log(1 + total_var / total_mean**2)
    return lognormal(total_mean / math.exp(s2 / 2), math.sqrt(s2))


# --- POST /predict-rto -------------------------------------------------------------------------------


def plan_rto_features(plan_ref: str, priors: Priors, conditions: dict[str, float | None]) -> tuple[Any, dict]:
    graph, sim_steps, plan_steps = plan_sim_steps(plan_ref, priors)
    means = [
        rto.StepMean(
            s.key,
            list(s.needs),
            s.duration.expected() + s.wait.expected(),
            p.action == "manual",
            p.gate,
            s.source == "history",
        )
        for s, p in zip(sim_steps, plan_steps, strict=True)
    ]
    features = rto.plan_features(
        means,
        approval_levels=graph.approval_levels,
        parallelism=graph.parallelism,
        tier=graph.tier,
        strategy=graph.strategy,
        conditions=conditions,
    )
    return graph, features


def predict_rto(models: Loaded, data: dict[str, Any]) -> dict[str, Any]:
    target = None
    if "plan" in data:
        conditions = {k: data.get(k) for k in rto.CONDITIONS}
        graph, features = plan_rto_features(data["plan"], models.priors, conditions)
        target, plan_id = graph.rto_seconds, graph.plan_id
    else:
        try:
            features = rto.check_features(data["features"])
        except rto.RTOInputError as exc:
            raise InvalidInput(exc.message, field=exc.field) from None
        plan_id = None
        target = data.get("rto_seconds")
    model = models.rto_trees or models.rto_booster  # the same trees, walked in NumPy when they could be compiled
    p50, p90 = rto.predict_quantiles(model, rto.vector(features), models.rto["p90_log_offset"])[0]
    out: dict[str, Any] = {
        "plan": plan_id,
        "p50_seconds": round(float(p50), 1),
        "p90_seconds": round(float(p90), 1),
        "baseline_seconds": round(features["critical_path_seconds"], 1),
        "baseline": "sum of mean step durations along the critical path",
        "unknown_conditions": [k for k in rto.CONDITIONS if math.isnan(features[k])],
        "features": {k: (None if math.isnan(v) else round(v, 4)) for k, v in features.items()},
        "training_data": models.rto["data_provenance"]["source"],
        "model_version": models.rto["version"],
    }
    if target is not None:
        out["rto_seconds"] = target
        out["probability_meet_rto"] = _probability_within(float(p50), float(p90), float(target))
    return out


def _probability_within(p50: float, p90: float, target: float) -> float:
    """P(RTO <= target) from the two quantiles, read as a lognormal through them (median p50, P90 p90)."""
    if p90 <= p50:
        return 1.0 if target >= p50 else 0.0
    sigma = math.log(p90 / p50) / 1.2815515655446004
    z = math.log(max(target, 1e-9) / p50) / sigma
    return round(0.5 * (1 + math.erf(z / math.sqrt(2))), 4)


# --- POST /analyze-failure-risk -----------------------------------------------------------------------


def analyze_failure_risk(models: Loaded, data: dict[str, Any]) -> dict[str, Any]:
    features = models.risk.card["features"]
    smart = data["smart"]
    missing = [f for f in features if f not in smart]
    if missing:
        raise InvalidInput(
            f"smart.{missing[0]}: is required (the model reads {', '.join(features)})", field=f"smart.{missing[0]}"
        )
    extra = sorted(set(smart) - set(features))
    if extra:
        raise InvalidInput(f"smart.{extra[0]}: is not an attribute the model reads", field=f"smart.{extra[0]}")
    out = models.risk.assess(smart)
    if "serial_number" in data:
        out["serial_number"] = data["serial_number"]
    out["model_version"] = models.risk.card["version"]
    return out


# --- POST /score-impact ------------------------------------------------------------------------------


def score_impact(models: Loaded, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"model_version": models.impact["version"]}
    if "bia" in data:
        out["scores"] = impact.scores(data["bia"])
    if "impact_analysis" in data:
        out["impact_analysis"] = data["impact_analysis"]
        out["scores"] = impact.scores(stored_bia(data["impact_analysis"]))
    if "applications" in data:
        apps = [
            impact.App(a["id"], float(a["recovery_seconds"]), float(a["cost_per_hour"]), list(a.get("depends_on", [])))
            for a in data["applications"]
        ]
        try:
            out["recovery_order"] = impact.recovery_order(apps, data.get("parallelism"))
        except impact.ImpactInputError as exc:
            raise InvalidInput(exc.message if exc.field in exc.message else str(exc), field=exc.field) from None
    return out


def stored_bia(pk: int) -> dict[str, Any]:
    """The BIA figures of a stored impact analysis (analytics.ImpactAnalysis); NotFound naming the field."""
    from analytics.models import ImpactAnalysis

    row = ImpactAnalysis.objects.filter(pk=pk).values(*impact.BIA_FIELDS).first()
    if row is None:
        raise NotFound(f"impact analysis {pk} does not exist", field="impact_analysis")
    return {k: (float(v) if isinstance(v, Decimal) else v) for k, v in row.items()}


def models_summary(models: Loaded) -> dict[str, Any]:
    return {"models": [dict(card, name=name) for name, card in models.cards().items()]}
