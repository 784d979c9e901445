"""Pages: the landing redirect and the dashboard, which brings plans, executions, approvals, scheduled
tests and SLA breaches together (analytics sits above failover, so it may read them all)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from analytics import dashboard as reads
from failover.console import can_view, execution_approvals_for
from runbooks.selectors import runbook_approvals_for


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Signed-in users go to their dashboard; everybody else sees the landing page."""
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "home.html")


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "can_view_executions": can_view(user),
        "plans": reads.plan_rows() if user.has_perm("plans.view_drplan") else [],
        "can_view_plans": user.has_perm("plans.view_drplan"),
        "active_executions": reads.active_executions() if can_view(user) else [],
        "execution_approvals": execution_approvals_for(user),
        "runbook_approvals": runbook_approvals_for(user),
        "upcoming": reads.upcoming_tests(),
        "breaches": reads.sla_breaches() if user.has_perm("analytics.view_drtestresult") else None,
        "violations": reads.open_violations() if user.has_perm("analytics.view_slaviolation") else None,
    }
    return render(request, "dashboard.html", context)
