"""The execution console page (server-rendered; its JavaScript then follows the execution over the
websocket and acts through the REST API)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from core.formatting import currency_parts
from core.lookups import parse_id
from failover.choices import ExecutionStatus, StepStatus
from failover.console import (
    EXECUTION_ACTIONS,
    EXECUTION_ICONS,
    STEP_ACTIONS,
    STEP_ICONS,
    activity,
    can_view,
    console_state,
    dag_layout,
    log_lines,
)
from failover.models import FailoverExecution


def _execution_for(request: HttpRequest, pk: int) -> FailoverExecution:
    if not can_view(request.user):
        raise PermissionDenied("You need the failover.view_failoverexecution permission to see executions.")
    if parse_id(pk) is None:  # beyond 64 bits: no such row, and not a query the database can take
        raise Http404(f"No execution #{pk}.")
    return get_object_or_404(
        FailoverExecution.objects.select_related("plan", "runbook_version__runbook", "triggered_by"), pk=pk
    )


@require_GET
@login_required
@ensure_csrf_cookie  # the page's buttons send the csrftoken cookie back as X-CSRFToken
def console(request: HttpRequest, pk: int) -> HttpResponse:
    execution = _execution_for(request, pk)
    state = console_state(execution, request.user)
    logs = log_lines(execution, state["last_seq"])
    layout = dag_layout(state["steps"])
    positions = {node["key"]: node for node in layout["nodes"]}
    steps = [
        {**row, "x": positions[row["key"]]["x"], "y": positions[row["key"]]["y"], "log": logs.get(row["id"], [])}
        for row in state["steps"]
    ]
    context = {
        "execution": execution,
        "state": state,
        "steps": steps,
        "layout": layout,
        "execution_log": logs.get(0, []),
        "activity": activity(execution, state["last_seq"]),
        "config": {
            "execution": execution.pk,
            "last_seq": state["last_seq"],
            "ws_path": f"/ws/executions/{execution.pk}/",
            "state_url": reverse("execution-console-state", args=[execution.pk]),
            "api_base": f"/api/v1/dr/executions/{execution.pk}/",
            "paths": {
                "execution": {name: path for name, (_, _, path) in EXECUTION_ACTIONS.items()},
                "step": {name: path for name, (_, _, path) in STEP_ACTIONS.items()},
            },
            "step_labels": dict(StepStatus.choices),
            "step_icons": {str(k): v for k, v in STEP_ICONS.items()},
            "execution_labels": dict(ExecutionStatus.choices),
            "execution_icons": {str(k): v for k, v in EXECUTION_ICONS.items()},
            "state": state,
            "currency": dict(zip(("prefix", "suffix"), currency_parts(), strict=True)),
            "time_zone": settings.TIME_ZONE,
        },
    }
    return render(request, "failover/console.html", context)


@require_GET
@login_required
def console_state_json(request: HttpRequest, pk: int) -> JsonResponse:
    """The console's state (clock, projection, step statuses, allowed actions) for its periodic refresh."""
    execution = _execution_for(request, pk)
    return JsonResponse(console_state(execution, request.user))
