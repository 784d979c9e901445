"""The cost model of a plan for the console's meter (installed into plans.costs by drplan/wiring.py): the
business processes that need any of the plan's applications, or anything that depends on them, all down
for the execution's duration."""

from __future__ import annotations

from typing import Any

from analytics.impact.scenario import down_closure
from analytics.models import BusinessProcess
from plans import costs


def plan_cost_model(plan: Any) -> costs.CostModel | None:
    app_ids = set(plan.applications.values_list("pk", flat=True))
    if not app_ids:
        return None
    down, _ = down_closure(app_ids)
    processes = BusinessProcess.objects.filter(applications__in=down).distinct().order_by("name")
    models = tuple(costs.ProcessCost.of(p.name, p.revenue_per_hour, p.cost_curve, p.weekly_profile) for p in processes)
    return costs.CostModel(models, source="business_processes") if models else None
