"""Small explicit factories for plan models (no factory_boy)."""

from __future__ import annotations

from typing import Any

from plans.models import Application, ApplicationDependency, DRPlan, RecoveryStrategy, Site


def make_site(code: str = "fra1", **extra: Any) -> Site:
    return Site.objects.create(code=code, name=extra.pop("name", f"Site {code}"), **extra)


def make_app(slug: str = "orders-api", *, depends_on: tuple[Application, ...] = (), **extra: Any) -> Application:
    app = Application.objects.create(slug=slug, name=extra.pop("name", slug.replace("-", " ").title()), **extra)
    for dep in depends_on:
        ApplicationDependency.objects.create(application=app, depends_on=dep)
    return app


def make_plan(plan_id: str = "payments-dr", **extra: Any) -> DRPlan:
    values: dict[str, Any] = {"name": f"Plan {plan_id}", "rto_seconds": 3600, "rpo_seconds": 300}
    values.update(extra)
    applications = values.pop("applications", ())
    sites = values.pop("sites", ())
    plan = DRPlan.objects.create(plan_id=plan_id, **values)
    plan.applications.set(applications)
    plan.sites.set(sites)
    return plan


def make_strategy(plan: DRPlan, name: str = "Failover to DR", **extra: Any) -> RecoveryStrategy:
    strategy = RecoveryStrategy.objects.create(plan=plan, name=name, **extra)
    strategy.steps.create(order=1, action="Stop writes")
    strategy.steps.create(order=2, action="Promote replica")
    strategy.conditions.create(kind="prerequisite", description="Replica lag < 5s")
    strategy.validation_checks.create(name="API up", check_type="connectivity", threshold="500", unit="ms")
    return strategy
