"""Pages: the landing redirect and the dashboard, which brings plans, executions, approvals, scheduled
tests and SLA breaches together (analytics sits above failover, so it may read them all)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from analytics import dashboard as reads
from analytics.web import selectors as web_selectors
from failover.console import can_view, execution_approvals_for
from runbooks.selectors import runbook_approvals_for


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Signed-in users go to their dashboard; everybody else sees the landing page."""
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "home.html")


def _rto_charts(rows: list[dict]) -> list[dict]:
    """Per plan in force with measured tests: its latest tests' RTO against the target (core.charts)."""
    plans = [row["plan"] for row in rows]
    points = web_selectors.rto_chart_rows(plans)
    return [
        {"plan": plan, "rows": points[plan.plan_id], "title": f"RTO achieved vs target: {plan.name}"}
        for plan in plans
        if plan.plan_id in points
    ]


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    context_plans = reads.plan_rows() if user.has_perm("plans.view_drplan") else []
    context = {
        "can_view_executions": can_view(user),
        "plans": context_plans,
        "can_view_plans": user.has_perm("plans.view_drplan"),
        "active_executions": reads.active_executions() if can_view(user) else [],
        "execution_approvals": execution_approvals_for(user),
        "runbook_approvals": runbook_approvals_for(user),
        "upcoming": reads.upcoming_tests(),
        "breaches": reads.sla_breaches() if user.has_perm("analytics.view_drtestresult") else None,
        "rto_charts": _rto_charts(context_plans) if user.has_perm("analytics.view_drtestresult") else None,
        "violations": reads.open_violations() if user.has_perm("analytics.view_slaviolation") else None,
    }
    return render(request, "dashboard.html", context)
