"""Dispatching ready steps, by priority then tier, up to the execution's parallelism: render the
parameters, then wait for an approval gate or a confirmation (manual steps) or start the action;
and the next attempt of steps backing off between retries. Functions of the coordinator's state
(failover.engine.runner.Coordinator), called from its loop in its thread."""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from core.exceptions import InvalidInput
from failover.choices import StepStatus as SS
from failover.engine.events import emit
from failover.engine.states import record_step_transition, transition_step, transition_steps
from failover.engine.step_results import failed
from failover.models import ExecutionEvent, StepRun

if TYPE_CHECKING:
    from failover.engine.runner import Coordinator


@dataclass
class Attempt:
    """One dispatch of a step: its attempts (1 + retries) and their bookkeeping."""

    number: int  # attempts of the step so far, this one included (StepRun.attempts)
    budget: int  # attempts allowed in this dispatch (1 + retries)
    params: dict[str, Any]
    first: int = 0  # StepRun.attempts of this dispatch's first attempt
    logged: int = 0
    dropped: int = 0
    retry_at: float | None = None  # monotonic time of the next attempt while backing off


def dispatch(c: Coordinator, submit: list[tuple[StepRun, Attempt]]) -> None:
    """Take ready steps (highest priority, then lowest tier) while slots are free: render, then wait or start.
    Started steps are appended to `submit`; the caller submits them to the pool after the commit. The steps
    to start are moved to RUNNING together (one statement on PostgreSQL), before any other transition of the
    loop, so the events keep the order of the decisions."""
    starts: list[tuple[StepRun, Attempt, dict[str, Any]]] = []
    while c.ready and len(c.running) + len(submit) + len(starts) < c.limit:
        _, _, step_id = heapq.heappop(c.ready)
        step = c.steps[step_id]
        if step.status == SS.WAITING:  # its approval gate passed
            _start(c, starts, submit)
            start_after_gate(c, step, submit)
            continue
        if step.status != SS.PENDING:
            continue
        try:
            real, masked = c.render(step, step.params)
        except InvalidInput as exc:
            _start(c, starts, submit)
            render_failed(c, step, exc.message)
            continue
        c.real_params[step.pk] = real
        now = timezone.now()
        if step.approval and not step.gate_approved_at:
            _start(c, starts, submit)
            role = (step.approval or {}).get("role", "")
            _wait(c, step, "approval", f"waits for approval by {role or 'an approver'}", masked, now)
        elif step.action == "manual":
            _start(c, starts, submit)
            instructions = str(masked.get("instructions", ""))
            _wait(c, step, "confirmation", f"waits for confirmation: {instructions}", masked, now)
        else:
            attempt = Attempt(number=step.attempts + 1, budget=1 + (step.retries or 0), params=real)
            fields = {
                "rendered": masked,
                "attempts": attempt.number,
                "started_at": now,
                "worker": c.worker,
                "heartbeat_at": now,
                "error": "",
            }
            starts.append((step, attempt, fields))
    _start(c, starts, submit)


def _start(c: Coordinator, starts: list[tuple[StepRun, Attempt, dict[str, Any]]], submit: list) -> None:
    """PENDING → RUNNING for the steps picked to start (their rows in one statement on PostgreSQL), each with
    its event in the order picked; those that moved go to `submit`."""
    if not starts:
        return
    moved = transition_steps([(step, fields) for step, _, fields in starts], SS.RUNNING, only_from={SS.PENDING})
    for step, attempt, fields in starts:
        if step.pk in moved:
            record_step_transition(step, SS.RUNNING, f"{step.step_key} started", c.redactor.redact, fields)
            submit.append((step, attempt))
    starts.clear()


def start_after_gate(c: Coordinator, step: StepRun, submit: list[tuple[StepRun, Attempt]]) -> None:
    """A step whose approval gate passed: a manual step now waits for confirmation, others start."""
    real = c.real_params.get(step.pk)
    if real is None:  # rendered by an earlier coordinator: render again
        try:
            real, _ = c.render(step, step.params)
        except InvalidInput as exc:
            render_failed(c, step, exc.message)
            return
    if step.action == "manual":
        StepRun.objects.filter(pk=step.pk).update(waiting_for="confirmation")
        step.waiting_for = "confirmation"
        instructions = str((step.rendered or {}).get("instructions", ""))
        emit(
            c.execution_id,
            ExecutionEvent.Kind.STEP_STATUS,
            f"{step.step_key} approved; waits for confirmation: {instructions}",
            {"step": step.step_key, "status": SS.WAITING, "waiting_for": "confirmation"},
            step_run_id=step.pk,
            redact=c.redactor.redact,
        )
        c.waiting.add(step.pk)
        return
    now = timezone.now()
    attempt = Attempt(number=step.attempts + 1, budget=1 + (step.retries or 0), params=real)
    if transition_step(
        step,
        SS.RUNNING,
        only_from={SS.WAITING},
        message=f"{step.step_key} approved; started",
        redact=c.redactor.redact,
        waiting_for="",
        attempts=attempt.number,
        started_at=now,
        worker=c.worker,
        heartbeat_at=now,
    ):
        submit.append((step, attempt))


def render_failed(c: Coordinator, step: StepRun, message: str) -> None:
    """The step's parameters cannot be rendered: it fails (as an attempt that ran) with the reason."""
    now = timezone.now()
    error = f"parameters: {message}"
    transition_step(
        step,
        SS.RUNNING,
        only_from={SS.PENDING, SS.WAITING},
        message=f"{step.step_key} started",
        attempts=step.attempts + 1,
        started_at=now,
        worker=c.worker,
    )
    failed(c, step, error, finished=now)


def due_retries(c: Coordinator, submit: list[tuple[StepRun, Attempt]]) -> None:
    """Steps whose backoff is over start their next attempt (or are cancelled when the execution is)."""
    now = time.monotonic()
    for step_id, attempt in list(c.running.items()):
        if attempt.retry_at is None or attempt.retry_at > now:
            continue
        step = c.steps[step_id]
        if c.cancelling:
            del c.running[step_id]
            transition_step(
                step,
                SS.CANCELLED,
                only_from={SS.RUNNING},
                message=f"{step.step_key} cancelled before its next attempt",
                finished_at=timezone.now(),
            )
            continue
        attempt.retry_at = None
        attempt.number += 1
        step.attempts = attempt.number
        StepRun.objects.filter(pk=step_id).update(attempts=attempt.number, heartbeat_at=timezone.now())
        emit(
            c.execution_id,
            ExecutionEvent.Kind.STEP_STATUS,
            f"{step.step_key} attempt {attempt.number} started",
            {"step": step.step_key, "status": SS.RUNNING, "attempts": attempt.number},
            step_run_id=step_id,
        )
        del c.running[step_id]
        submit.append((step, attempt))


def _wait(c: Coordinator, step: StepRun, waiting_for: str, what: str, masked: dict[str, Any], now: Any) -> None:
    """PENDING → WAITING for a person (a manual step's confirmation or an approval gate)."""
    if transition_step(
        step,
        SS.WAITING,
        only_from={SS.PENDING},
        message=f"{step.step_key} {what}",
        redact=c.redactor.redact,
        waiting_for=waiting_for,
        rendered=masked,
        started_at=now,
    ):
        c.waiting.add(step.pk)
