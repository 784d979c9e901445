"""Rollback: undo the completed steps of a failed (or cancelled) execution.

The `rollback` actions ({action, with}) of SUCCEEDED steps run one at a time in reverse
dependency order: a step is undone only after everything that depended on it. If undoing a
step fails, the steps it depended on are not undone (their dependents are still in place)
and are reported as not rolled back; independent branches are still undone. The outcome is
ROLLED_BACK only if every rollback succeeded: a failed rollback is never reported as success.
Each step's progress is in StepRun.rollback_status / rollback_error.

A coordinator that fences itself (or loses its lease) during a rollback runs nothing more: the rollback
action in flight is stopped (its context watches the fence, not the operator's cancel that may have caused
the rollback), no further rollback is started, and nothing more is recorded; the next coordinator resumes
the rollback from what the database holds (a rollback left RUNNING is run again only if idempotent).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from core.exceptions import InvalidInput
from failover.choices import StepStatus as SS
from failover.engine import outage
from failover.engine.actions import ActionResult, run_action
from failover.engine.events import emit
from failover.engine.lease import Fenced, LeaseLost
from failover.models import ExecutionEvent, StepRun

if TYPE_CHECKING:
    from failover.engine.runner import Coordinator


def topological_order(steps: Iterable[StepRun]) -> list[StepRun] | None:
    """Steps so that each comes after everything it needs (ties by id); None if the needs form a cycle."""
    steps = list(steps)
    by_key = {s.step_key: s for s in steps}
    unmet = {s.step_key: len([n for n in s.needs or [] if n in by_key]) for s in steps}
    dependents: dict[str, list[str]] = {s.step_key: [] for s in steps}
    for step in steps:
        for need in step.needs or []:
            if need in by_key:
                dependents[need].append(step.step_key)
    heap = [(s.pk, s.step_key) for s in steps if unmet[s.step_key] == 0]
    heapq.heapify(heap)
    order: list[StepRun] = []
    while heap:
        _, key = heapq.heappop(heap)
        order.append(by_key[key])
        for dependent in dependents[key]:
            unmet[dependent] -= 1
            if unmet[dependent] == 0:
                heapq.heappush(heap, (by_key[dependent].pk, dependent))
    return order if len(order) == len(steps) else None


def rollback_order(steps: Iterable[StepRun]) -> list[StepRun]:
    """SUCCEEDED steps that define a rollback, dependents before the steps they need."""
    order = topological_order(steps) or []
    return [s for s in reversed(order) if s.status == SS.SUCCEEDED and (s.rollback or {}).get("action")]


def _descendants(key: str, dependents: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(dependents.get(key, []))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(dependents.get(current, []))
    return seen


def run_rollback(coordinator: Coordinator) -> tuple[bool, str]:
    """Undo what can be undone; returns (every rollback succeeded, a one-line report)."""
    steps = list(coordinator.steps.values())
    order = rollback_order(steps)
    if not order:
        return True, "nothing to roll back"
    rolled_back: list[str] = []
    failed: dict[str, str] = {}  # step_key -> why it is not rolled back
    for step in order:
        if coordinator.fence.tripped:
            raise Fenced("rolling back: the fence deadline passed; no further rollback runs")
        if step.rollback_status == SS.ROLLED_BACK:
            rolled_back.append(step.step_key)
            continue
        if step.rollback_status in (SS.ROLLBACK_FAILED, SS.SKIPPED):
            failed[step.step_key] = step.rollback_error or "rollback failed"
            continue
        if step.rollback_status == SS.RUNNING and not step.idempotent:
            _record(coordinator, step, SS.ROLLBACK_FAILED, "the worker died during this rollback; verify it by hand")
            failed[step.step_key] = step.rollback_error
            continue
        blocked = sorted(_descendants(step.step_key, coordinator.dependents) & set(failed))
        if blocked:
            _record(coordinator, step, SS.SKIPPED, f"not rolled back: the rollback of '{blocked[0]}' did not succeed")
            failed[step.step_key] = step.rollback_error
            continue
        _record(coordinator, step, SS.RUNNING, "")
        result = _run_one(coordinator, step)
        if result.ok:
            _record(coordinator, step, SS.ROLLED_BACK, "")
            rolled_back.append(step.step_key)
        else:
            _record(coordinator, step, SS.ROLLBACK_FAILED, result.error or "rollback failed")
            failed[step.step_key] = step.rollback_error
    parts = []
    if rolled_back:
        parts.append("rolled back: " + ", ".join(rolled_back))
    if failed:
        parts.append("NOT rolled back: " + "; ".join(f"{key} ({why})" for key, why in failed.items()))
    return not failed, "; ".join(parts)


def _run_one(coordinator: Coordinator, step: StepRun) -> ActionResult:
    spec: dict[str, Any] = step.rollback or {}
    try:
        params, _ = coordinator.render(step, spec.get("with") or {})
    except InvalidInput as exc:
        return ActionResult(False, error=f"parameters: {exc.message}")
    if spec.get("action") == "manual":
        # A person has to undo this step; the automatic rollback cannot claim it did.
        instructions = str(params.get("instructions", "")).strip()
        return ActionResult(False, error="manual rollback required" + (f": {instructions}" if instructions else ""))
    timeout = spec.get("timeout_seconds") or step.timeout_seconds
    ctx = coordinator.action_context(step, float(timeout) if timeout else None)
    ctx.cancelled = coordinator.fence.stopped  # only the coordinator's end stops a rollback, not a cancel
    try:
        return coordinator.run_blocking(run_action, spec["action"], params, ctx)
    except (Fenced, LeaseLost):
        coordinator.fence.stopped.set()  # its process is stopped: a coordinator that is no longer one runs nothing
        raise


def _record(coordinator: Coordinator, step: StepRun, status: str, error: str) -> None:
    """Plain update of the rollback fields (not the step's status) and an event, in one transaction, through the
    coordinator's guard (a database outage ridden out within its fence; Fenced once the fence has tripped)."""
    from django.db import transaction

    coordinator.keep_lease()
    redact = coordinator.redactor.redact
    error = redact(error)
    verb = {
        SS.RUNNING: "rolling back",
        SS.ROLLED_BACK: "rolled back",
        SS.ROLLBACK_FAILED: "rollback failed",
        SS.SKIPPED: "not rolled back",
    }[status]

    def write() -> None:
        with transaction.atomic():
            StepRun.objects.filter(pk=step.pk).update(rollback_status=status, rollback_error=error)
            emit(
                coordinator.execution_id,
                ExecutionEvent.Kind.STEP_STATUS,
                f"{step.step_key} {verb}" + (f": {error}" if error else ""),
                {"step": step.step_key, "rollback_status": status, "rollback_error": error},
                step_run_id=step.pk,
                redact=redact,
            )
            coordinator.committing = True

    outage.guarded(coordinator, f"recording the rollback of {step.step_key}", write)
    step.rollback_status, step.rollback_error = status, error
