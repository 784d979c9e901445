"""The plans pages: /plans/ (every plan at a glance) and /plans/<plan_id>/ (one plan: scope, dependency
map, strategy and targets, runbooks, tests, findings, schedule, and the operations the user may start).
Reads only; what they show comes from analytics.web.selectors, the operations from failover.web.operations."""

from __future__ import annotations

import re

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from analytics.web import history, selectors
from core.lookups import find
from failover.console import can_view
from failover.web.operations import operations_for
from plans import predictions

VIEW_PLAN = "plans.view_drplan"
PLAN_ID = re.compile(r"[-a-zA-Z0-9_]{1,100}")  # a slug or a numeric id; anything else names no plan


def _require_view(request: HttpRequest) -> None:
    if not request.user.has_perm(VIEW_PLAN):
        raise PermissionDenied(f"You need the {VIEW_PLAN} permission to see plans.")


@require_GET
@login_required
def plan_list(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    return render(request, "plans/plan_list.html", {"rows": selectors.plan_rows()})


@require_GET
@login_required
def plan_page(request: HttpRequest, plan_id: str) -> HttpResponse:
    _require_view(request)
    plan = find(selectors.plan_detail(), plan_id, "plan_id") if PLAN_ID.fullmatch(plan_id) else None
    if plan is None:
        raise Http404(f"No plan {plan_id!r}.")
    schedule = selectors.schedule_of(plan)
    context = {
        "plan": plan,
        "rto_met": selectors.met(plan.last_rto_seconds, plan.rto_seconds),
        "rpo_met": selectors.met(plan.last_rpo_seconds, plan.rpo_seconds),
        "prediction": predictions.predicted_rto(plan),  # the ML service's, or "prediction unavailable"
        "sites": list(plan.sites.order_by("code")),
        "map": selectors.dependency_map(plan),
        "strategies": selectors.strategies(plan),
        "approval_levels": list(plan.approval_levels.order_by("level")),
        "runbooks": selectors.composed_runbooks(plan),
        "tests": selectors.test_history(plan),
        "findings": selectors.findings_and_actions(plan),
        "schedule": schedule,
        "next_test": selectors.next_test(plan, schedule),
        "executions": selectors.recent_executions(plan) if can_view(request.user) else None,
        "operations": operations_for(request.user, plan),
        "rto_chart": selectors.rto_chart_rows([plan]).get(plan.plan_id, []),
        "rpo_history": history.plan_history(plan) if request.user.has_perm("analytics.view_probesample") else None,
    }
    return render(request, "plans/plan_detail.html", context)
