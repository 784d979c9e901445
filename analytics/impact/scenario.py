"""What-if: lose a site or some applications at a given time; what goes down, when it comes back, what it
costs, and the same under every recovery strategy.

1. What goes down: the lost applications and, through the dependency map, every application that depends
   on one of them, directly or not (an application is down if it or anything it depends on is down).
2. When each comes back: a lost application needs its own recovery, by the plan that recovers it (the
   scenario's plan if it contains the application, else its active plan with the shortest RTO), whose
   duration comes from analytics.impact.estimates (source named per application). Recovery honours the
   dependency order: an application is back at max(its own recovery, the return of everything down it
   depends on). One that is down only through a dependency is back when its dependencies are.
3. What it costs: each business process that depends on a down application is down from the disaster until
   the last of its down applications is back, priced with its cost model (plans/costs.py) at the
   scenario's wall-clock time. P50 and P90 side by side.
4. Strategies: the same scenario with each lost application's recovery time scaled by the strategy's
   time factor over its plan's own (figures.yaml), against the plans' monthly DR cost scaled by the cost
   factors. Applications no plan recovers keep their time.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Prefetch

from analytics.impact import figures as figures_file
from analytics.impact.estimates import Estimate, Estimator
from analytics.models import BusinessProcess, RTOTarget
from plans import costs
from plans.choices import PlanStatus, StrategyType
from plans.models import Application, ApplicationDependency, DRPlan, RecoveryStrategy, Site

P50, P90 = "p50", "p90"


@dataclass
class AppState:
    application: Application
    lost: bool
    waits_for: list[str] = field(default_factory=list)  # down applications it depends on directly
    plan: DRPlan | None = None
    estimate: Estimate | None = None  # own recovery (lost applications only)
    back: dict[str, float] = field(default_factory=dict)  # P50/P90 → seconds after the disaster


@dataclass
class Scenario:
    at: datetime
    site: Site | None
    lost: list[Application]
    plan: DRPlan | None


def down_closure(lost_ids: set[int]) -> tuple[set[int], dict[int, list[int]]]:
    """Every application down when `lost_ids` are lost, and for each application the ids it depends on."""
    needs: dict[int, list[int]] = defaultdict(list)
    dependents: dict[int, list[int]] = defaultdict(list)
    for app_id, dep_id in ApplicationDependency.objects.values_list("application_id", "depends_on_id"):
        needs[app_id].append(dep_id)
        dependents[dep_id].append(app_id)
    down, todo = set(lost_ids), list(lost_ids)
    while todo:
        for child in dependents[todo.pop()]:
            if child not in down:
                down.add(child)
                todo.append(child)
    return down, needs


def recovering_plan(app: Application, preferred: DRPlan | None, plans_by_app: dict[int, list[DRPlan]]) -> DRPlan | None:
    candidates = plans_by_app.get(app.pk, [])
    if preferred is not None and any(p.pk == preferred.pk for p in candidates):
        return preferred
    live = [p for p in candidates if p.status != PlanStatus.ARCHIVED]
    live.sort(key=lambda p: (p.status != PlanStatus.ACTIVE, p.rto_seconds, p.plan_id))
    return live[0] if live else None


def timeline(states: dict[int, AppState], needs: dict[int, list[int]], own: dict[int, dict[str, float]]) -> None:
    """Fill state.back: max(own recovery, the return of every down dependency), memoised over the DAG."""
    for q in (P50, P90):
        done: dict[int, float] = {}

        def back(app_id: int, q: str = q, done: dict[int, float] = done) -> float:
            if app_id in done:
                return done[app_id]
            done[app_id] = 0.0  # a cycle (refused by plans.services) cannot recurse forever
            deps = [back(d) for d in needs.get(app_id, []) if d in states]
            done[app_id] = max([own.get(app_id, {}).get(q, 0.0), *deps])
            return done[app_id]

        for app_id, state in states.items():
            state.back[q] = back(app_id)


def _own(states: dict[int, AppState], factors: dict[str, Any], strategy: str | None) -> dict[int, dict[str, float]]:
    """Own recovery per lost application; under `strategy` scaled by its time factor over the plan's own."""
    out = {}
    for app_id, s in states.items():
        if not s.lost or s.estimate is None:
            continue
        scale = 1.0
        if strategy is not None and s.plan is not None:
            scale = float(factors[strategy]["time_factor"]) / float(factors[s.plan.strategy]["time_factor"])
        out[app_id] = {P50: s.estimate.p50 * scale, P90: s.estimate.p90 * scale}
    return out


def _process_costs(
    processes: list[BusinessProcess], states: dict[int, AppState], back: dict[int, dict[str, float]], at: datetime
) -> list[dict[str, Any]]:
    rows = []
    for process in processes:
        down_apps = [a.pk for a in process.applications.all() if a.pk in states]
        model = costs.ProcessCost.of(process.name, process.revenue_per_hour, process.cost_curve, process.weekly_profile)
        row: dict[str, Any] = {
            "process": process,
            "model": model,
            "applications": sorted(states[a].application.slug for a in down_apps),
        }
        for q in (P50, P90):
            seconds = max(back[a][q] for a in down_apps)
            row[f"down_seconds_{q}"] = seconds
            row[f"cost_{q}"] = costs.money(model.cost(seconds, at))
        rows.append(row)
    return rows


def run(scenario: Scenario) -> dict[str, Any]:
    """The whole what-if, as JSON-ready data (see the module docstring)."""
    figures = figures_file.load()
    factors = figures["strategies"]
    lost_ids = {a.pk for a in scenario.lost}
    down_ids, needs = down_closure(lost_ids)
    apps = {
        a.pk: a
        for a in Application.objects.filter(pk__in=down_ids)
        .select_related("site")
        .prefetch_related(
            Prefetch(
                "plans",
                queryset=DRPlan.objects.prefetch_related(
                    Prefetch("recovery_strategies", queryset=RecoveryStrategy.objects.prefetch_related("steps"))
                ),
            )
        )
    }
    targets = {
        t.application_id: (t.current_rto_seconds or t.rto_target_seconds)
        for t in RTOTarget.objects.filter(application_id__in=down_ids)
    }
    plans_by_app = {pk: list(a.plans.all()) for pk, a in apps.items()}
    estimator = Estimator(figures)
    states: dict[int, AppState] = {}
    for pk, app in apps.items():
        lost = pk in lost_ids
        state = AppState(app, lost, sorted(apps[d].slug for d in needs.get(pk, []) if d in down_ids))
        state.plan = recovering_plan(app, scenario.plan, plans_by_app)
        if lost:
            state.estimate = estimator.estimate(app, state.plan, targets.get(pk))
        states[pk] = state
    own = _own(states, factors, None)
    timeline(states, needs, own)
    back = {pk: dict(s.back) for pk, s in states.items()}

    processes = list(
        BusinessProcess.objects.filter(applications__in=down_ids).distinct().prefetch_related("applications")
    )
    rows = _process_costs(processes, states, back, scenario.at)
    priced = {a.pk for p in processes for a in p.applications.all()}
    total = {q: sum((r[f"cost_{q}"] for r in rows), Decimal("0.00")) for q in (P50, P90)}

    current = {s.plan.strategy for s in states.values() if s.lost and s.plan is not None}
    involved = {s.plan.pk: s.plan for s in states.values() if s.lost and s.plan is not None}
    strategies = []
    for value, label in StrategyType.choices:
        own_s = _own(states, factors, value)
        timeline(states, needs, own_s)
        back_s = {pk: dict(s.back) for pk, s in states.items()}
        rows_s = _process_costs(processes, states, back_s, scenario.at)
        monthly = sum(
            (
                Decimal(plan.dr_infrastructure_cost_monthly)
                * Decimal(str(factors[value]["cost_factor"]))
                / Decimal(str(factors[plan.strategy]["cost_factor"]))
                for plan in involved.values()
            ),
            Decimal("0"),
        )
        strategies.append(
            {
                "strategy": value,
                "label": label,
                "current": current == {value},
                "time_factor": factors[value]["time_factor"],
                "cost_factor": factors[value]["cost_factor"],
                "recovery_p50_seconds": max((b[P50] for b in back_s.values()), default=0.0),
                "recovery_p90_seconds": max((b[P90] for b in back_s.values()), default=0.0),
                "cost_p50": str(sum((r["cost_p50"] for r in rows_s), Decimal("0.00"))),
                "cost_p90": str(sum((r["cost_p90"] for r in rows_s), Decimal("0.00"))),
                "dr_cost_monthly": str(costs.money(monthly)),
                "dr_cost_annual": str(costs.money(monthly * 12)),
            }
        )
    for pk, s in states.items():  # restore the scenario's own timeline on the states
        s.back = back[pk]

    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    local = scenario.at.astimezone(zone)
    return {
        "at": scenario.at.isoformat(),
        "weekday": costs.WEEKDAYS[local.weekday()],
        "hour": local.hour,
        "time_zone": settings.TIME_ZONE,
        "lost": {
            "site": scenario.site.code if scenario.site else None,
            "applications": sorted(a.slug for a in scenario.lost),
        },
        "plan": scenario.plan.plan_id if scenario.plan else None,
        "down": sorted(s.application.slug for s in states.values()),
        "estimator": {"ml_available": estimator.ml_up, "ml_reason": estimator.ml_reason},
        "applications": [_app_row(s, scenario.at) for s in sorted(states.values(), key=_order)],
        "processes": [_process_row(r, scenario.at) for r in rows],
        "unpriced_applications": sorted(s.application.slug for pk, s in states.items() if pk not in priced),
        "cost": {
            "p50": str(total[P50]),
            "p90": str(total[P90]),
            "over_time": _over_time(rows, scenario.at),
        },
        "recovery_p50_seconds": max((b[P50] for b in back.values()), default=0.0),
        "recovery_p90_seconds": max((b[P90] for b in back.values()), default=0.0),
        "dr_cost_monthly": str(
            costs.money(sum((Decimal(p.dr_infrastructure_cost_monthly) for p in involved.values()), Decimal("0")))
        ),
        "strategies": strategies,
        "_states": states,  # for analytics.impact.analysis; dropped before answering
        "_rows": rows,
    }


def _order(s: AppState) -> tuple[float, float, str]:
    return (s.back[P50], s.back[P90], s.application.slug)


def _app_row(s: AppState, at: datetime) -> dict[str, Any]:
    app = s.application
    return {
        "application": app.slug,
        "name": app.name,
        "tier": app.tier,
        "site": app.site.code if app.site else None,
        "down_because": "lost" if s.lost else "dependency",
        "waits_for": s.waits_for,
        "plan": s.plan.plan_id if s.plan else None,
        "strategy": s.plan.strategy if s.plan else None,
        "estimate": s.estimate.as_dict() if s.estimate else None,
        "down_at": at.isoformat(),
        "recovered_after_p50_seconds": s.back[P50],
        "recovered_after_p90_seconds": s.back[P90],
        "recovered_at_p50": (at + timedelta(seconds=s.back[P50])).isoformat(),
        "recovered_at_p90": (at + timedelta(seconds=s.back[P90])).isoformat(),
    }


def _process_row(r: dict[str, Any], at: datetime) -> dict[str, Any]:
    p: BusinessProcess = r["process"]
    return {
        "id": p.pk,
        "name": p.name,
        "criticality": p.criticality,
        "applications": r["applications"],
        "down_seconds_p50": r["down_seconds_p50"],
        "down_seconds_p90": r["down_seconds_p90"],
        "cost_p50": str(r["cost_p50"]),
        "cost_p90": str(r["cost_p90"]),
        "rate_at_start": str(costs.money(r["model"].base_rate(0) * _weight(r["model"], at))),
    }


def _weight(model: costs.ProcessCost, at: datetime) -> float:
    local = at.astimezone(zoneinfo.ZoneInfo(settings.TIME_ZONE))
    return model.weight(local.weekday(), local.hour)


MAX_POINTS = 400


def _over_time(rows: list[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
    """Cumulative cost of all processes at every point where a rate changes (P50 and P90 outages)."""
    curves = {(i, q): r["model"].cumulative(r[f"down_seconds_{q}"], at) for i, r in enumerate(rows) for q in (P50, P90)}
    end = max((r["down_seconds_p90"] for r in rows), default=0.0)
    points = sorted({0.0, end, *(t for curve in curves.values() for t, _ in curve)})
    if len(points) > MAX_POINTS:  # keep the ends and an even spread: the chart needs no more
        step = len(points) / MAX_POINTS
        points = sorted({points[int(i * step)] for i in range(MAX_POINTS)} | {points[-1]})
    out = []
    for t in points:
        row: dict[str, Any] = {"seconds": t}
        for q in (P50, P90):
            total = sum(costs.interpolate(curves[(i, q)], t) for i in range(len(rows)))
            row[f"cost_{q}"] = str(costs.money(total))
        out.append(row)
    return out


def public(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not k.startswith("_")}
