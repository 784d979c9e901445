"""What the coordinator does with what its steps report: log lines, results (success, a retry after
backoff 0.5 s * 2^n, failure), and the cancelling of steps that will not run. Functions of the
coordinator's state (failover.engine.runner.Coordinator), called from its loop in its thread."""

from __future__ import annotations

import heapq
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from failover.choices import StepStatus as SS
from failover.engine.actions import ActionResult
from failover.engine.events import emit
from failover.engine.records import MAX_LOG_EVENTS_PER_STEP, step_duration, store_measurements, write_log_events
from failover.engine.states import record_step_transition, transition_step, transition_steps
from failover.models import ExecutionEvent, StepRun

if TYPE_CHECKING:
    from failover.engine.runner import Coordinator

BACKOFF_BASE_SECONDS = 0.5  # retry n waits base * 2**(n-1), capped
BACKOFF_CAP_SECONDS = 60.0


def handle(c: Coordinator, messages: list[tuple[Any, ...]]) -> None:
    """Store what the steps sent: log lines (up to MAX_LOG_EVENTS_PER_STEP per attempt) and results."""
    written = _write_successes(c, messages)
    logs: list[tuple[int, str]] = []
    for message in messages:
        kind, step_id = message[0], message[1]
        attempt = c.running.get(step_id)
        if kind == "log":
            if attempt is None:
                continue
            if attempt.logged < MAX_LOG_EVENTS_PER_STEP:
                attempt.logged += 1
                logs.append((step_id, message[2]))
            else:
                attempt.dropped += 1
        elif kind == "done":
            if logs:
                write_logs(c, logs)
                logs = []
            finished(c, step_id, *message[2:], written=written.get(step_id))
    if logs:
        write_logs(c, logs)


Written = tuple[dict[str, Any], bool]  # a success's fields, and whether its row moved to SUCCEEDED


def _write_successes(c: Coordinator, messages: list[tuple[Any, ...]]) -> dict[int, Written]:
    """The steps reporting success in one turn: their rows SUCCEEDED together (one round trip on PostgreSQL, with
    the turn's other moves and events when it defers them; one statement each elsewhere) before the messages are
    handled in order; step id -> what finished() records for it."""
    done = [m for m in messages if m[0] == "done" and m[2].ok and m[1] in c.running]
    if not done:
        return {}
    moves = [(c.steps[m[1]], _success_fields(c, c.steps[m[1]], *m[2:])) for m in done]
    moved = transition_steps(moves, SS.SUCCEEDED, only_from={SS.RUNNING})
    return {step.pk: (fields, step.pk in moved) for step, fields in moves}


def _success_fields(c: Coordinator, step: StepRun, result: ActionResult, finished: datetime, duration: float) -> dict:
    return {
        "finished_at": finished,
        "duration_seconds": step_duration(step, finished, duration),
        "output": c.redactor.redact(result.output) if result.output else {},
        "error": "",
    }


def write_logs(c: Coordinator, lines: list[tuple[int, str]]) -> None:
    """All the lines in one transaction: one sequence update and one bulk insert."""
    write_log_events(c.execution_id, [(sid, c.steps[sid].step_key, line) for sid, line in lines], c.redactor)


def finished(
    c: Coordinator,
    step_id: int,
    result: ActionResult,
    finished: datetime,
    duration: float,
    *,
    written: Written | None = None,
) -> None:
    """One attempt ended: SUCCEEDED, CANCELLED (while cancelling), a retry after backoff, or failed().
    `written`: a success whose row _write_successes already wrote (its fields, whether it moved)."""
    step = c.steps[step_id]
    attempt = c.running[step_id]
    if attempt.dropped:
        write_logs(c, [(step_id, f"[{attempt.dropped} more output lines not stored as events]")])
    redact = c.redactor.redact
    if result.ok:
        del c.running[step_id]
        message = f"{step.step_key} succeeded"
        if written is None:
            fields = _success_fields(c, step, result, finished, duration)
            transition_step(step, SS.SUCCEEDED, only_from={SS.RUNNING}, message=message, redact=redact, **fields)
        elif written[1]:
            record_step_transition(step, SS.SUCCEEDED, message, redact, written[0])
        store_measurements(c.execution_id, c.measured, result.measurements)
        c.remember_output(step)
        release_dependents(c, step)
        return
    output = redact(result.output) if result.output else {}
    error = redact(result.error or "failed")
    if c.cancelling:
        del c.running[step_id]
        transition_step(
            step,
            SS.CANCELLED,
            only_from={SS.RUNNING},
            message=f"{step.step_key} cancelled",
            redact=redact,
            finished_at=finished,
            duration_seconds=step_duration(step, finished, duration),
            output=output,
            error=error,
        )
        return
    used = attempt.number - attempt.first + 1
    if used < attempt.budget:
        delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (used - 1))
        attempt.retry_at = time.monotonic() + delay
        attempt.logged = attempt.dropped = 0
        StepRun.objects.filter(pk=step.pk).update(output=output, error=error)
        emit(
            c.execution_id,
            ExecutionEvent.Kind.LOG,
            f"{step.step_key}: attempt {attempt.number} failed: {error}; retrying in {delay:g}s",
            {"step": step.step_key, "attempt": attempt.number, "error": error, "retry_in": delay},
            step_run_id=step.pk,
            redact=redact,
        )
        return
    del c.running[step_id]
    step.output = output
    failed(c, step, error, finished=finished, duration=step_duration(step, finished, duration), output=output)


def failed(
    c: Coordinator,
    step: StepRun,
    error: str,
    *,
    finished: datetime | None = None,
    duration: float | None = None,
    output: dict[str, Any] | None = None,
) -> None:
    """Record a failed step (if it is not already FAILED) and decide what it means."""
    if step.status != SS.FAILED:
        fields: dict[str, Any] = {"finished_at": finished or timezone.now(), "error": error}
        if duration is not None:
            fields["duration_seconds"] = duration
        if output is not None:
            fields["output"] = output
        transition_step(
            step,
            SS.FAILED,
            only_from={SS.RUNNING, SS.WAITING},
            message=f"{step.step_key} failed: {error}",
            redact=c.redactor.redact,
            **fields,
        )
    if step.continue_on_failure:
        if step.output is not None:
            c.remember_output(step)
        release_dependents(c, step)
    else:
        c.failure = c.failure or f"step '{step.step_key}' failed: {error}"


def release_dependents(c: Coordinator, step: StepRun) -> None:
    """The step no longer blocks its dependents: those with no unmet need left become ready."""
    for key in c.dependents.get(step.step_key, []):
        dependent = c.by_key[key]
        if dependent.pk in c.unmet:
            c.unmet[dependent.pk] -= 1
            if c.unmet[dependent.pk] == 0:
                heapq.heappush(c.ready, (-dependent.priority, dependent.tier, dependent.pk))


def cancel_waiting(c: Coordinator, reason: str) -> None:
    """Steps waiting for a person will not run: CANCELLED."""
    for step_id in list(c.waiting):
        step = c.steps[step_id]
        if transition_step(
            step,
            SS.CANCELLED,
            only_from={SS.WAITING},
            message=f"{step.step_key} cancelled ({reason})",
            redact=c.redactor.redact,
            finished_at=timezone.now(),
        ):
            c.waiting.discard(step_id)


def cancel_unstarted(c: Coordinator) -> None:
    """The execution is being cancelled: waiting and pending steps CANCELLED, backing-off steps next."""
    cancel_waiting(c, "execution cancelled")
    c.ready = []
    for step in c.steps.values():
        if step.status == SS.PENDING:
            transition_step(step, SS.CANCELLED, only_from={SS.PENDING}, message=f"{step.step_key} cancelled")
    # Steps backing off between attempts count as running; _due_retries cancels them now.
    for attempt in c.running.values():
        if attempt.retry_at is not None:
            attempt.retry_at = 0.0
