"""Business impact use cases: run a what-if scenario, compute and store an impact analysis.

An impact analysis is a scenario (analytics.impact.scenario) read four ways:
- financial: revenue per hour of the affected processes, downtime cost at 1 h / 4 h / 24 h from their cost
  curves (at the scenario's time; without one, at the profile's weekly mean), recovery cost (figures.yaml:
  months of the involved plans' DR infrastructure + a cost per application recovered).
- operational: the affected processes (those depending on a down application), the critical ones
  (criticality "critical"), their employees and customers (summed; overlaps between processes not known).
- reputation: score = customers_weight x log_scale(customers, 100, 10 000 000)
  + duration_weight x log_scale(longest process outage P50 in hours, 0.25, 72)
  + critical_weight x (critical affected / affected), rounded, 0-100; churn % = max_churn x (score/100)^2;
  sentiment, media exposure and brand damage follow the score's quarter. Inputs are stored with the score.
- regulatory: frameworks in scope = the affected processes' and the plan's; one is likely violated when
  what it governs (its processes, or the plan's applications for the plan's frameworks) stays down past
  its violation_after_hours (P50), and its configured fine is added to the estimated fines.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from analytics.choices import Level, Sentiment
from analytics.impact import figures as figures_file
from analytics.impact import scenario as engine
from analytics.models import ImpactAnalysis
from core import audit
from core.choices import AuditAction
from core.exceptions import InvalidInput
from plans import costs
from plans.models import Application, DRPlan, Site

HORIZONS = (1, 4, 24)


def build_scenario(
    *, site: Site | None, applications: list[Application] | None, plan: DRPlan | None, at: datetime | None
) -> engine.Scenario:
    """What is lost: the site's applications, or the listed ones, or (neither, with a plan) the plan's."""
    if site is not None and applications:
        raise InvalidInput("Give either a site or applications, not both.", field="applications")
    if site is not None:
        lost = list(site.applications.all())
        if not lost:
            raise InvalidInput(f"Site '{site.code}' runs no application: the scenario loses nothing.", field="site")
    elif applications:
        lost = applications
    elif plan is not None:
        lost = list(plan.applications.all())
        if not lost:
            raise InvalidInput(f"Plan '{plan.plan_id}' has no application: the scenario loses nothing.", field="plan")
    else:
        raise InvalidInput("Name what is lost: a site or applications.", field="site")
    return engine.Scenario(at=at or timezone.now(), site=site, lost=lost, plan=plan)


def what_if(scenario: engine.Scenario) -> dict[str, Any]:
    return engine.public(engine.run(scenario))


def _log_scale(x: float, low: float, high: float) -> float:
    if x <= low:
        return 0.0
    return min(1.0, math.log10(x / low) / math.log10(high / low))


def _quarter(score: int) -> int:
    return min(3, score // 25)


def reputation(
    customers: int, longest_hours: float, critical: int, affected: int, fig: dict[str, Any]
) -> dict[str, Any]:
    inputs = {
        "customers": customers,
        "customers_scaled": round(_log_scale(customers, 100, 10_000_000), 4),
        "longest_outage_hours_p50": round(longest_hours, 4),
        "duration_scaled": round(_log_scale(longest_hours, 0.25, 72), 4),
        "critical_processes": critical,
        "affected_processes": affected,
        "critical_share": round(critical / affected, 4) if affected else 0.0,
    }
    score = round(
        float(fig["customers_weight"]) * inputs["customers_scaled"]
        + float(fig["duration_weight"]) * inputs["duration_scaled"]
        + float(fig["critical_weight"]) * inputs["critical_share"]
    )
    score = max(0, min(100, score))
    churn = float(fig["max_churn_percent"]) * (score / 100) ** 2
    return {
        "score": score,
        "inputs": inputs,
        "weights": {k: fig[k] for k in ("customers_weight", "duration_weight", "critical_weight")},
        "churn_percent": round(churn, 4),
        "sentiment": [Sentiment.NEUTRAL, Sentiment.NEGATIVE, Sentiment.NEGATIVE, Sentiment.SEVERE][_quarter(score)],
        "level": [Level.LOW, Level.MEDIUM, Level.HIGH, Level.CRITICAL][_quarter(score)],
    }


def regulatory(plan: DRPlan | None, result: dict[str, Any], fig: dict[str, Any]) -> dict[str, Any]:
    """Frameworks in scope, the likely violations and the estimated fines."""
    scope: dict[str, float] = {}  # framework → longest P50 outage of what it governs, seconds
    for row in result["_rows"]:
        for code in row["process"].regulatory_frameworks:
            scope[code] = max(scope.get(code, 0.0), row["down_seconds_p50"])
    if plan is not None:
        plan_apps = {a.pk for a in plan.applications.all()}
        plan_down = max((s.back[engine.P50] for pk, s in result["_states"].items() if pk in plan_apps), default=0.0)
        for code in plan.compliance_frameworks or []:
            scope[code] = max(scope.get(code, 0.0), plan_down)
    frameworks, violations, fines = [], [], Decimal("0")
    for code in sorted(scope):
        known = fig["frameworks"].get(code)
        hours = scope[code] / 3600
        row = {"framework": code, "outage_hours_p50": round(hours, 4), "configured": known is not None}
        if known is not None:
            limit = float(known["violation_after_hours"])
            row.update({"label": known.get("label", code), "violation_after_hours": limit, "fine": str(known["fine"])})
            if hours > limit:
                row["violated"] = True
                violations.append(f"{known.get('label', code)}: down {hours:.1f} h (> {limit:g} h): {known['rule']}")
                fines += Decimal(str(known["fine"]))
            else:
                row["violated"] = False
        frameworks.append(row)
    return {"frameworks": frameworks, "violations": violations, "fines": costs.money(fines)}


def analyse(
    *,
    plan: DRPlan,
    scenario_name: str,
    description: str,
    site: Site | None,
    applications: list[Application] | None,
    at: datetime | None,
    actor: Any,
    auth_method: str,
) -> ImpactAnalysis:
    """Compute the impact of the scenario on the plan and store it (audited)."""
    fig = figures_file.load()
    scenario = build_scenario(site=site, applications=applications, plan=plan, at=at)
    result = engine.run(scenario)
    rows = result["_rows"]
    models = [r["model"] for r in rows]
    downtime = {h: costs.money(sum(m.cost(h * 3600, at) for m in models)) for h in HORIZONS}
    involved = {s.plan.pk: s.plan for s in result["_states"].values() if s.lost and s.plan is not None}
    rec = fig["recovery"]
    recovery_cost = costs.money(
        sum((Decimal(p.dr_infrastructure_cost_monthly) for p in involved.values()), Decimal("0"))
        * Decimal(str(rec["dr_infrastructure_months"]))
        + Decimal(str(rec["per_application"])) * len(scenario.lost)
    )
    processes = [r["process"] for r in rows]
    critical = [p for p in processes if p.criticality == Level.CRITICAL]
    customers = sum(p.customers for p in processes)
    longest = max((r["down_seconds_p50"] for r in rows), default=0.0) / 3600
    rep = reputation(customers, longest, len(critical), len(processes), fig["reputation"])
    reg = regulatory(plan, result, fig)
    breakdown = {
        "financial": {
            "revenue_per_hour": {p.name: str(p.revenue_per_hour) for p in processes},
            "downtime_cost": {
                f"{h}h": {r["process"].name: str(costs.money(r["model"].cost(h * 3600, at))) for r in rows}
                for h in HORIZONS
            },
            "weighting": "the scenario's weekday and hour" if at else "the weekly profile's mean",
            "recovery_cost": {
                "dr_infrastructure_months": rec["dr_infrastructure_months"],
                "plans": {p.plan_id: str(p.dr_infrastructure_cost_monthly) for p in involved.values()},
                "per_application": rec["per_application"],
                "applications": len(scenario.lost),
            },
            "expected_cost_p50": result["cost"]["p50"],
            "expected_cost_p90": result["cost"]["p90"],
        },
        "reputation": rep,
        "regulatory": {"frameworks": reg["frameworks"]},
        "scenario": engine.public(result),
    }
    with transaction.atomic():
        analysis = ImpactAnalysis.objects.create(
            plan=plan,
            scenario=scenario_name,
            description=description,
            revenue_per_hour=costs.money(sum((p.revenue_per_hour for p in processes), Decimal("0"))),
            downtime_cost_1h=downtime[1],
            downtime_cost_4h=downtime[4],
            downtime_cost_24h=downtime[24],
            recovery_cost=recovery_cost,
            affected_processes=[p.name for p in processes],
            critical_processes=[p.name for p in critical],
            affected_employees=sum(p.employees for p in processes),
            affected_customers=customers,
            customer_sentiment=rep["sentiment"],
            media_exposure=rep["level"],
            brand_damage=rep["level"],
            customer_churn_percent=Decimal(str(rep["churn_percent"])),
            reputation_score=rep["score"],
            regulatory_frameworks=[f["framework"] for f in reg["frameworks"]],
            potential_violations=reg["violations"],
            estimated_fines=reg["fines"],
            scenario_at=at,
            inputs={
                "plan": plan.plan_id,
                "site": site.code if site else None,
                "applications": sorted(a.slug for a in applications or []),
                "at": at.isoformat() if at else None,
            },
            breakdown=breakdown,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        audit.record(
            AuditAction.CREATE,
            analysis,
            actor=actor,
            auth_method=auth_method,
            before=None,
            after=audit.snapshot(analysis),
        )
    return analysis
