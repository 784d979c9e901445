"""What the execution console shows: the state of an execution as plain data, for the server-rendered
page and for its JSON refresh (the same dict), and which actions a user may take.

The action rules mirror the services that enforce them (failover.approvals, failover.controls): a
button is offered only when the service would accept the request from this user now. The server
still checks every request; hiding a button is for the user, not for security.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Prefetch
from django.utils import timezone

from core.formatting import duration
from core.roles import has_role, role_names
from failover import estimates
from failover.choices import ACTIVE_STATUSES
from failover.choices import ExecutionStatus as ES
from failover.choices import StepStatus as SS
from failover.common import APPROVE_EXECUTION, CONFIRM_STEP, run_permission
from failover.engine.approval_policy import current_level
from failover.models import ApprovalDecision, ExecutionEvent, FailoverExecution, StepRun
from failover.projection import (
    AT_RISK,
    BREACHED,
    ESTIMATOR,
    MEASURED,
    MET,
    MISSED,
    NO_TARGET,
    ON_TRACK,
    Projection,
    causes_downtime,
    estimator_request,
    project_execution,
    with_estimate,
)
from failover.selectors import execution_list
from plans import costs

VIEW_EXECUTION = "failover.view_failoverexecution"
COST_POINTS_AHEAD_SECONDS = 3600  # the meter can tick an hour past the projection between two refreshes
LOG_LINES_PER_STEP = 500  # the page renders the last lines of each step; older ones stay in the API

# Status never by colour alone: each has a symbol and a text label too.
STEP_ICONS = {
    SS.PENDING: "○",
    SS.WAITING: "⏸",
    SS.RUNNING: "▶",
    SS.SUCCEEDED: "✓",
    SS.FAILED: "✗",
    SS.SKIPPED: "↷",
    SS.CANCELLED: "⊘",
    SS.LOST: "?",
    SS.ROLLED_BACK: "↺",
    SS.ROLLBACK_FAILED: "✗",
}
EXECUTION_ICONS = {
    ES.PENDING: "○",
    ES.AWAITING_APPROVAL: "⏸",
    ES.RUNNING: "▶",
    ES.PAUSED: "⏸",
    ES.VALIDATING: "▶",
    ES.ROLLING_BACK: "↺",
    ES.COMPLETED: "✓",
    ES.FAILED: "✗",
    ES.ROLLED_BACK: "↺",
    ES.ROLLBACK_FAILED: "✗",
    ES.CANCELLED: "⊘",
    ES.REJECTED: "✗",
    ES.EXPIRED: "⌛",
}
RTO_LABELS = {
    NO_TARGET: "No RTO target (no plan)",
    ON_TRACK: "On track",
    AT_RISK: "At risk: projected to breach the RTO",
    BREACHED: "RTO breached",
    MET: "RTO met",
    MISSED: "RTO missed",
}

# action → (label, needs a comment, the API path under /api/v1/dr/executions/{id}/)
EXECUTION_ACTIONS = {
    "approve": ("Approve execution", False, "approve"),
    "reject": ("Reject execution", True, "reject"),
    "cancel": ("Cancel execution", False, "cancel"),
    "resume": ("Resume execution", False, "resume"),
}
STEP_ACTIONS = {
    "confirm": ("Confirm done", False, "confirm"),
    "approve": ("Approve step", False, "approve"),
    "reject": ("Reject step", True, "reject"),
    "retry": ("Retry step", False, "retry"),
    "mark-done": ("Mark done", True, "mark-done"),
}
RERUNNABLE = {SS.FAILED, SS.LOST, SS.CANCELLED}


def can_view(user: Any) -> bool:
    return bool(user.is_authenticated and user.has_perm(VIEW_EXECUTION))


def can_decide_execution(
    user: Any, execution: FailoverExecution, decisions: list[ApprovalDecision], roles: set[str] | None
) -> bool:
    """The user may approve/reject the execution now (failover.approvals.decide_execution's rules):
    awaiting approval, permitted, not its trigger, holding the current level's role, not decided yet."""
    if execution.status != ES.AWAITING_APPROVAL or not user.has_perm(APPROVE_EXECUTION):
        return False
    if execution.triggered_by_id is not None and execution.triggered_by_id == user.pk:
        return False
    own = [d for d in decisions if d.step_run_id is None]
    if any(d.user_id == user.pk for d in own):
        return False
    level = current_level(execution.approval_policy or [], own)
    return level is not None and has_role(roles, level["role"])


def execution_actions(
    user: Any, execution: FailoverExecution, decisions: list[ApprovalDecision], roles: set[str] | None
) -> list[str]:
    actions = []
    if can_decide_execution(user, execution, decisions, roles):
        actions += ["approve", "reject"]
    runner = user.has_perm(run_permission(execution))
    if runner and execution.status in ACTIVE_STATUSES and execution.status != ES.ROLLING_BACK:
        actions.append("cancel")
    approved = current_level(execution.approval_policy or [], [d for d in decisions if d.step_run_id is None]) is None
    if runner and execution.status in (ES.FAILED, ES.PAUSED) and approved:
        actions.append("resume")  # never without its go/no-go approvals (failover.engine.approval_policy)
    return actions


def step_actions(
    user: Any,
    execution: FailoverExecution,
    step: StepRun,
    decisions: list[ApprovalDecision],
    roles: set[str] | None,
) -> list[str]:
    actions = []
    if step.status == SS.WAITING and step.waiting_for == "confirmation" and user.has_perm(CONFIRM_STEP):
        actions.append("confirm")
    if (
        step.status == SS.WAITING
        and step.waiting_for == "approval"
        and step.gate_approved_at is None
        and user.has_perm(APPROVE_EXECUTION)
        and not (execution.triggered_by_id is not None and execution.triggered_by_id == user.pk)
        and not any(d.step_run_id == step.pk and d.user_id == user.pk for d in decisions)
        and has_role(roles, (step.approval or {}).get("role", "approver"))
    ):
        actions += ["approve", "reject"]
    runner = user.has_perm(run_permission(execution))
    if runner and step.status in RERUNNABLE and execution.status in (ES.FAILED, ES.PAUSED, ES.RUNNING):
        actions.append("retry")
    if runner and step.status == SS.LOST:
        actions.append("mark-done")
    return actions


def duration_text(seconds: float | None) -> str:
    """A running clock's reading: 12 s / 4 min 05 s / 1 h 02 min 03 s (core.formatting, precise)."""
    return duration(seconds, precise=True)


# --- The step graph as boxes and arrows ---------------------------------------------------

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 190, 56, 56, 16, 8


def dag_layout(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Left-to-right layers: a step sits one column right of its deepest need. `steps` are
    {"key", "needs"} dicts in display order; returns coordinates for an SVG."""
    needs_of = {s["key"]: [n for n in s.get("needs") or [] if n != s["key"]] for s in steps}
    depth: dict[str, int] = {}

    def depth_of(key: str, seen: frozenset[str]) -> int:
        if key not in depth:
            needs = [n for n in needs_of[key] if n in needs_of and n not in seen]
            depth[key] = 0 if not needs else 1 + max(depth_of(n, seen | {key}) for n in needs)
        return depth[key]

    for key in needs_of:
        depth_of(key, frozenset())
    rows: dict[int, int] = {}
    position: dict[str, tuple[int, int]] = {}
    for step in steps:
        column = depth[step["key"]]
        row = rows.get(column, 0)
        rows[column] = row + 1
        position[step["key"]] = (PAD + column * (NODE_W + GAP_X), PAD + row * (NODE_H + GAP_Y))
    nodes = [{"key": s["key"], "x": position[s["key"]][0], "y": position[s["key"]][1]} for s in steps]
    edges = []
    for step in steps:
        x2, y2 = position[step["key"]]
        for need in needs_of[step["key"]]:
            if need not in position:
                continue
            x1, y1 = position[need]
            sx, sy, ex, ey = x1 + NODE_W, y1 + NODE_H // 2, x2, y2 + NODE_H // 2
            mid = (sx + ex) // 2
            edges.append({"from": need, "to": step["key"], "path": f"M{sx},{sy} C{mid},{sy} {mid},{ey} {ex - 6},{ey}"})
    columns = max(depth.values(), default=0) + 1
    height_rows = max(rows.values(), default=1)
    return {
        "nodes": nodes,
        "edges": edges,
        "width": 2 * PAD + columns * NODE_W + (columns - 1) * GAP_X,
        "height": 2 * PAD + height_rows * NODE_H + (height_rows - 1) * GAP_Y,
        "node_w": NODE_W,
        "node_h": NODE_H,
    }


# --- The whole state -------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _offset(value: datetime | None, start: datetime) -> float | None:
    return (value - start).total_seconds() if value else None


def clock_data(execution: FailoverExecution, projection: Projection) -> dict[str, Any]:
    # The same cost model as the what-if scenarios (plans/costs.py): the plan's business processes with their
    # escalation curves and weekday/hour profiles, else its flat downtime cost per hour.
    model = costs.plan_cost_model(execution.plan if execution.plan_id else None)
    start = projection.clock_start
    horizon = max(projection.projected_total_seconds, projection.elapsed_seconds) + COST_POINTS_AHEAD_SECONDS
    priced = bool(model.processes)
    return {
        "start": _iso(projection.clock_start),
        "start_source": "disaster declared" if execution.disaster_declared_at else "triggered",
        "now": _iso(projection.now),
        "complete": projection.complete,
        "target_seconds": projection.target_seconds,
        "target_text": duration(projection.target_seconds),
        "elapsed_seconds": projection.elapsed_seconds,
        "elapsed_text": duration_text(projection.elapsed_seconds),
        "projected_finish": _iso(projection.projected_finish),
        "projected_total_seconds": projection.projected_total_seconds,
        "projected_total_text": duration_text(projection.projected_total_seconds),
        "remaining_seconds": projection.remaining_seconds,
        "state": projection.state,
        "state_label": RTO_LABELS[projection.state],
        "warning": projection.warning,
        "breach_seconds": projection.breach_seconds,
        "breach_text": duration_text(projection.breach_seconds),
        "critical_path": projection.critical_path,
        "projection_source": projection.source,
        "projection_source_text": projection_source_text(projection),
        "estimate": projection.estimate,
        # What the engine measured when the execution completed (from the declared disaster, else the
        # trigger, to recovery): the figure that goes to the test results and the executions list.
        "measured_rto_seconds": execution.actual_rto_seconds,
        "measured_rto_text": duration_text(execution.actual_rto_seconds),
        "cost_per_hour": str(model.rate_now(projection.elapsed_seconds, start)) if priced else None,
        "cost_source": model.source,  # business_processes | plan_rate | none
        "cost_processes": [p.name for p in model.processes] if model.source == "business_processes" else [],
        "cost_so_far": str(model.cost(projection.elapsed_seconds, start)),
        "projected_cost": str(model.cost(projection.projected_total_seconds, start)),
        # Cumulative cost where the rate changes (linear in between): the page's meter interpolates.
        "cost_points": [[t, c] for t, c in model.points(horizon, start)] if priced else [],
        "downtime_applies": causes_downtime(execution),
    }


def projection_source_text(projection: Projection) -> str:
    """Which projection the clock shows, in words (the page and its refresh)."""
    if projection.source == MEASURED:
        return ""
    if projection.source == ESTIMATOR and projection.estimate:
        e = projection.estimate
        text = (
            f"Projected by the ML recovery-time estimator: the median of {e.get('simulations') or 'its'} simulations "
            f"of the remaining steps (P90 {duration_text(e.get('p90_seconds'))}"
        )
        if e.get("probability_meet_rto") is not None:
            text += f"; {100 * e['probability_meet_rto']:.0f} % chance of meeting the RTO"
        return text + ")."
    text = "Projected along the critical path of the steps' expected durations (past runs, else estimates)"
    if projection.estimate_unavailable:
        text += f"; the ML estimator is unavailable: {projection.estimate_unavailable}"
    return text + "."


def projection_with_estimator(execution: FailoverExecution, steps: list[StepRun], now: datetime) -> Projection:
    """The critical-path projection, replaced by the ML estimator's when it answers (failover/estimates.py)."""
    projection = project_execution(execution, steps, now)
    body = estimator_request(execution, steps, now)
    if body is None:
        return projection
    return with_estimate(projection, estimates.estimate(body))


def console_state(execution: FailoverExecution, user: Any, now: datetime | None = None) -> dict[str, Any]:
    """Everything the console renders except the log lines, as JSON-ready data.

    `last_seq` is read first: a client that applies events after it never misses a change."""
    now = now or timezone.now()
    last_seq = FailoverExecution.objects.filter(pk=execution.pk).values_list("event_seq", flat=True).get()
    execution.refresh_from_db()
    steps = list(StepRun.objects.filter(execution=execution).order_by("id"))
    decisions = list(ApprovalDecision.objects.filter(execution=execution))
    roles = role_names(user)
    projection = projection_with_estimator(execution, steps, now)
    clock = clock_data(execution, projection)
    scale = max(projection.projected_total_seconds, projection.target_seconds or 0.0, 1.0)
    start = projection.clock_start
    step_rows = []
    for step in steps:
        forecast = projection.steps.get(step.step_key)
        begin = _offset(forecast.start if forecast else None, start)
        end = _offset(forecast.finish if forecast else None, start)
        actions = step_actions(user, execution, step, decisions, roles)
        step_rows.append(
            {
                "id": step.pk,
                "key": step.step_key,
                "title": step.title,
                "action": step.action,
                "status": step.status,
                "status_label": SS(step.status).label if step.status in SS.values else step.status,
                "icon": STEP_ICONS.get(step.status, "•"),
                "waiting_for": step.waiting_for,
                "needs": list(step.needs or []),
                "attempts": step.attempts,
                "error": step.error,
                "started_at": _iso(step.started_at),
                "finished_at": _iso(step.finished_at),
                "duration_text": duration_text(step.duration_seconds) if step.duration_seconds is not None else "",
                "start_offset": begin,
                "end_offset": end,
                "left_pct": round(100 * max(0.0, begin) / scale, 2) if begin is not None else None,
                "width_pct": (
                    round(max(0.5, 100 * (end - max(0.0, begin)) / scale), 2)
                    if begin is not None and end is not None
                    else None
                ),
                "projected": bool(forecast and forecast.projected),
                "critical": bool(forecast and forecast.critical),
                "actions": [{"name": a, "label": STEP_ACTIONS[a][0], "comment": STEP_ACTIONS[a][1]} for a in actions],
            }
        )
    exec_actions = execution_actions(user, execution, decisions, roles)
    return {
        "execution": {
            "id": execution.pk,
            "status": execution.status,
            "status_label": ES(execution.status).label,
            "icon": EXECUTION_ICONS.get(execution.status, "•"),
            "active": execution.status in ACTIVE_STATUSES,
            "error": execution.error,
        },
        "last_seq": last_seq,
        "clock": clock,
        "scale_seconds": scale,
        "target_pct": round(100 * projection.target_seconds / scale, 2) if projection.target_seconds else None,
        "now_pct": round(100 * min(projection.elapsed_seconds, scale) / scale, 2),
        "steps": step_rows,
        "actions": [
            {"name": a, "label": EXECUTION_ACTIONS[a][0], "comment": EXECUTION_ACTIONS[a][1]} for a in exec_actions
        ],
    }


def log_lines(execution: FailoverExecution, up_to_seq: int) -> dict[int, list[dict[str, Any]]]:
    """step_run id (0 for the execution itself) → its last LOG_LINES_PER_STEP log lines with seq ≤ up_to_seq."""
    lines: dict[int, list[dict[str, Any]]] = {}
    events = (
        ExecutionEvent.objects.filter(execution=execution, kind=ExecutionEvent.Kind.LOG, seq__lte=up_to_seq)
        .order_by("-seq")
        .values("seq", "step_run_id", "message", "created_at")
    )
    for event in events.iterator():
        bucket = lines.setdefault(event["step_run_id"] or 0, [])
        if len(bucket) < LOG_LINES_PER_STEP:
            bucket.append(event)
    for bucket in lines.values():
        bucket.reverse()
    return lines


def activity(execution: FailoverExecution, up_to_seq: int, limit: int = 200) -> list[ExecutionEvent]:
    """The last non-log events (status changes, approvals, validations) with seq ≤ up_to_seq, oldest first."""
    events = (
        ExecutionEvent.objects.filter(execution=execution, seq__lte=up_to_seq)
        .exclude(kind=ExecutionEvent.Kind.LOG)
        .order_by("-seq")[:limit]
    )
    return list(reversed(events))


def execution_approvals_for(user: Any) -> list[FailoverExecution]:
    """Executions awaiting approval whose current level this user may decide now: permitted, holding the
    level's role, not the one who triggered it, not decided on it yet (failover.approvals' rules)."""
    if not user.is_authenticated or not user.has_perm(APPROVE_EXECUTION):
        return []
    roles = role_names(user)
    waiting = (
        execution_list()
        .filter(status=ES.AWAITING_APPROVAL)
        .exclude(triggered_by=user)
        .prefetch_related(Prefetch("approval_decisions", queryset=ApprovalDecision.objects.filter(step_run=None)))
        .order_by("triggered_at", "id")
    )
    return [e for e in waiting if can_decide_execution(user, e, list(e.approval_decisions.all()), roles)]
