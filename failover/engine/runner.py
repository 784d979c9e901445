"""The coordinator: runs one execution, durably, from PENDING to a terminal (or PAUSED) status.

One coordinator per execution, in one worker process (a django-q2 task, or the caller of
`run_execution`). It holds a lease on the execution row (renewed every lease/3 seconds) and is
the only writer while it holds it: this thread does every database write, while the steps run
in a thread pool sized to the execution's parallelism and report back through a queue (log
lines, results). A step's RUNNING status is committed before its action starts, so a worker
that dies mid-step leaves a RUNNING step behind, which the next coordinator resolves
(failover/engine/reaper.py): an idempotent step runs again, a non-idempotent one is LOST and
the execution PAUSED for an operator. Nothing costs a broker round trip per step.

Each loop iteration writes what arrived (results, batched log lines) and what it dispatches in
one transaction, then starts the dispatched actions after the commit.

Outcomes:
- a step fails (after its retries, with backoff 0.5 s * 2^n) without continue_on_failure: no new
  dispatch, running steps finish, waiting steps are CANCELLED, steps never started stay PENDING
  (a resume runs them); then on_failure "rollback" → ROLLING_BACK → ROLLED_BACK / ROLLBACK_FAILED
  (rollback.py), or FAILED when no completed step defines a rollback; "stop" → FAILED.
- all steps done: the validation checks (validation.py) → COMPLETED (actual RTO stored), or, when
  the rollback trigger fires, rollback (on_failure "rollback") or FAILED ("stop").
- cancel_requested: running steps are stopped (their process groups killed), waiting and
  pending steps CANCELLED; the execution ends CANCELLED, or, with rollback_on_cancel, goes
  through ROLLING_BACK to ROLLED_BACK / ROLLBACK_FAILED (the table has no ROLLING_BACK →
  CANCELLED) with error "cancelled by an operator; …".
- a step whose worker died: see reaper.py (idempotent → again; otherwise LOST, PAUSED).
- a dry run renders every step (and rollback), checks each action has an executor, marks the
  steps SKIPPED with their masked parameters, runs nothing: COMPLETED, or FAILED listing problems.
Terminal transitions and the SUMMARY event share one transaction; failover.services.record_outcome
runs after it. While only people are awaited the coordinator polls (two small reads every 0.2 s);
shortly before the django-q2 task timeout an idle coordinator hands over to a fresh task.
"""

from __future__ import annotations

import heapq
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from core.exceptions import InvalidInput
from core.secrets import Redactor, get_secret_value
from failover.choices import ExecutionStatus as ES
from failover.choices import OnFailure
from failover.choices import StepStatus as SS
from failover.engine import reaper, rollback, validation
from failover.engine.actions import ActionResult, StepContext, get_executor, run_action
from failover.engine.events import emit, publish
from failover.engine.states import TERMINAL_EXECUTION, transition_execution, transition_step
from failover.engine.templating import TemplateContext, render_step_params
from failover.models import ExecutionEvent, FailoverExecution, StepRun

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # how often the coordinator looks for cancel requests, confirmations and gate approvals
MAX_POOL = 64  # steps at once (threads) when the execution sets no parallelism
MAX_LOG_EVENTS_PER_STEP = 1000  # log lines stored as events per step attempt; the rest is counted
BACKOFF_BASE_SECONDS = 0.5  # retry n waits base * 2**(n-1), capped
BACKOFF_CAP_SECONDS = 60.0
HANDOFF_MARGIN_SECONDS = 600  # an idle coordinator hands over this long before the task timeout
COORDINATED = (ES.PENDING, ES.RUNNING, ES.VALIDATING, ES.ROLLING_BACK)
DONE_OK = (SS.SUCCEEDED, SS.SKIPPED)


class LeaseLost(Exception):
    """Another coordinator took the execution over: stop without writing anything more."""


def lease_seconds() -> float:
    return float(getattr(settings, "ENGINE_LEASE_SECONDS", 15))


def worker_identity() -> str:
    """host:pid:random — the pid lets an operator (or a test) find the process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_execution(execution_id: int, *, worker_id: str | None = None) -> str:
    """Run the coordinator of one execution in this process until the execution is terminal
    or PAUSED (or another coordinator holds it). Returns the execution's status at the end.

    Safe to call for any execution at any time: without the lease it writes nothing."""
    return Coordinator(execution_id, worker_id or worker_identity()).run()


def take_lease(execution_id: int, worker_id: str, *, now: datetime | None = None) -> bool:
    """Conditional update: take the execution if it needs a coordinator and nobody holds a live lease
    (an empty coordinator with a future lease is the reaper's reservation for a re-enqueued task)."""
    now = now or timezone.now()
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(coordinator="")
    return bool(
        FailoverExecution.objects.filter(Q(pk=execution_id, status__in=COORDINATED) & free).update(
            coordinator=worker_id, lease_expires_at=now + timezone.timedelta(seconds=lease_seconds())
        )
    )


@dataclass
class _Attempt:
    number: int  # attempts of the step so far, this one included (StepRun.attempts)
    budget: int  # attempts allowed in this dispatch (1 + retries)
    params: dict[str, Any]
    first: int = 0  # StepRun.attempts of this dispatch's first attempt
    logged: int = 0
    dropped: int = 0
    retry_at: float | None = None  # monotonic time of the next attempt while backing off


class Coordinator:
    def __init__(self, execution_id: int, worker_id: str) -> None:
        self.execution_id = execution_id
        self.worker = worker_id
        self.queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.cancel_event = threading.Event()
        self.redactor = Redactor()
        self.pool: ThreadPoolExecutor | None = None
        self.steps: dict[int, StepRun] = {}
        self.by_key: dict[str, StepRun] = {}
        self.dependents: dict[str, list[str]] = {}
        self.unmet: dict[int, int] = {}
        self.ready: list[tuple[int, int, int]] = []  # heap of (-priority, tier, id)
        self.running: dict[int, _Attempt] = {}
        self.waiting: set[int] = set()
        self.outputs: dict[str, dict[str, Any]] = {}
        self.real_params: dict[int, dict[str, Any]] = {}
        self.failure = ""  # why the execution is failing (a step failed without continue_on_failure)
        self.cancelling = False
        self.rollback_on_cancel = False
        self.lease_lost = False
        self.started = time.monotonic()
        self.renewed = time.monotonic()
        self.next_poll = 0.0
        self.measured: dict[str, float] = {}
        self.validation_trigger = ""
        self.limit = MAX_POOL

    # ----------------------------------------------------------------- lifecycle
    def run(self) -> str:
        if not take_lease(self.execution_id, self.worker):
            return self._status()
        try:
            return self._run()
        except LeaseLost:
            self.lease_lost = True
            self.cancel_event.set()  # our copies of the steps must not race the new coordinator's
            logger.warning("execution %s: lease lost by %s; stopped", self.execution_id, self.worker)
            return self._status()
        except Exception:
            # Leave the lease to expire: the reaper re-enqueues, the next coordinator recovers.
            self.cancel_event.set()
            logger.exception("execution %s: coordinator %s crashed", self.execution_id, self.worker)
            raise
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=not self.cancel_event.is_set(), cancel_futures=True)

    def _status(self) -> str:
        return FailoverExecution.objects.filter(pk=self.execution_id).values_list("status", flat=True).first() or ""

    def _run(self) -> str:
        execution = FailoverExecution.objects.select_related("plan").get(pk=self.execution_id)
        self.execution = execution
        self.cancelling = execution.cancel_requested
        self.rollback_on_cancel = execution.rollback_on_cancel
        for name in ("actual_rpo_seconds", "data_loss_bytes", "data_loss_transactions"):
            if getattr(execution, name) is not None:
                self.measured[name] = getattr(execution, name)
        status = execution.status
        if status == ES.PENDING:
            if not transition_execution(
                self.execution_id,
                ES.RUNNING,
                only_from={ES.PENDING},
                message=f"execution started by {self.worker}",
                started_at=timezone.now(),
            ):
                self._release()
                return self._status()
            status = ES.RUNNING
        problem = self._load_steps()
        if status == ES.RUNNING and not execution.dry_run:
            lost = reaper.recover_orphaned_steps(self.execution_id, self.worker)
            if lost:
                self._release()
                return self._status()
            problem = problem or self._load_steps()
        if problem:
            return self._finish(ES.FAILED, error=problem)
        if execution.dry_run:
            return self._dry_run()
        self.limit = execution.parallelism or MAX_POOL
        pool_size = max(1, min(self.limit, len(self.steps)))
        self.pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix=f"exec{self.execution_id}")

        if status == ES.RUNNING:
            outcome = self._run_steps()
            if outcome == "handoff":
                return self._handoff()
            if outcome == "cancelled":
                if self.rollback_on_cancel and self._has_rollbacks():
                    self._to(ES.ROLLING_BACK, "cancelled: rolling back", error="cancelled by an operator")
                    return self._rollback("cancelled by an operator")
                return self._finish(ES.CANCELLED, error="cancelled by an operator")
            if outcome == "failed":
                return self._after_failure(self.failure)
            checks = validation.checks_for(execution)
            if not checks:
                return self._complete(self._last_step_finished())
            self._to(ES.VALIDATING, f"validating: {len(checks)} checks")
            status = ES.VALIDATING
        if status == ES.VALIDATING:
            return self._validate()
        if status == ES.ROLLING_BACK:
            return self._rollback(execution.error or "rolling back")
        return self._status()

    def _release(self) -> None:
        FailoverExecution.objects.filter(pk=self.execution_id, coordinator=self.worker).update(
            coordinator="", lease_expires_at=None
        )

    def _handoff(self) -> str:
        """Before the task timeout: give the execution to a fresh task (only while nothing runs)."""
        from failover.tasks import enqueue_execution

        now = timezone.now()
        FailoverExecution.objects.filter(pk=self.execution_id, coordinator=self.worker).update(
            coordinator="", lease_expires_at=now + timezone.timedelta(seconds=reaper.REQUEUE_RESERVATION_SECONDS)
        )
        enqueue_execution(self.execution_id)
        return self._status()

    # ----------------------------------------------------------------- lease
    def _renew(self) -> None:
        now = timezone.now()
        renewed = FailoverExecution.objects.filter(pk=self.execution_id, coordinator=self.worker).update(
            lease_expires_at=now + timezone.timedelta(seconds=lease_seconds())
        )
        if not renewed:
            raise LeaseLost
        if self.running:
            StepRun.objects.filter(execution_id=self.execution_id, status=SS.RUNNING, worker=self.worker).update(
                heartbeat_at=now
            )
        self.renewed = time.monotonic()

    def keep_lease(self) -> None:
        if time.monotonic() - self.renewed >= lease_seconds() / 3:
            self._renew()

    # ----------------------------------------------------------------- steps
    def _load_steps(self) -> str:
        """(Re)load the step rows; returns a definition problem, if any."""
        rows = list(StepRun.objects.filter(execution_id=self.execution_id).order_by("id"))
        self.steps = {s.pk: s for s in rows}
        self.by_key = {s.step_key: s for s in rows}
        self.dependents = {s.step_key: [] for s in rows}
        for step in rows:
            for need in step.needs or []:
                if need not in self.by_key:
                    return f"step '{step.step_key}' needs unknown step '{need}'"
                self.dependents[need].append(step.step_key)
        if rollback.topological_order(rows) is None:
            return "the steps' needs form a cycle"
        self.outputs = {}
        for step in rows:
            if step.status in (SS.SUCCEEDED, SS.FAILED) and step.output is not None:
                self._remember_output(step)
        return ""

    def _remember_output(self, step: StepRun) -> None:
        output = step.output if isinstance(step.output, dict) else {"value": step.output}
        self.outputs[step.step_key] = output

    def _satisfied(self, step: StepRun) -> bool:
        return step.status in DONE_OK or (step.status == SS.FAILED and step.continue_on_failure)

    def _template_context(self, step: StepRun, *, dry_run: bool = False) -> TemplateContext:
        steps: dict[str, dict[str, Any]] = dict(self.outputs)
        keys = set(self.by_key)
        prefix = step.step_key.rpartition(".")[0]
        if prefix:  # composed plan: `steps.ID` means the step ID of the same runbook
            for key in self.by_key:
                if key.rpartition(".")[0] == prefix:
                    short = key.rpartition(".")[2]
                    keys.add(short)
                    if key in self.outputs:
                        steps[short] = self.outputs[key]
        return TemplateContext(
            params=self.execution.parameters or {},
            steps=steps,
            plan=_plan_data(self.execution),
            secret=get_secret_value,
            step_keys=keys,
        )

    def render(self, step: StepRun, params: dict[str, Any], *, dry_run: bool = False) -> tuple[dict, dict]:
        """(real, masked) parameters; feeds the Redactor. Raises InvalidInput naming what is missing."""
        rendered = render_step_params(params or {}, self._template_context(step, dry_run=dry_run), dry_run=dry_run)
        for value in rendered.secrets_used:
            self.redactor.add(value)
        return rendered.value, rendered.masked

    def secret_for_check(self, name: str) -> str:
        return self._secret(name)

    def _secret(self, name: str) -> str:
        """ctx.secret for actions: read in the step's thread, remembered by the Redactor."""
        try:
            value = get_secret_value(name)
        finally:
            connection.close()  # this pool thread's own connection
        self.redactor.add(value)
        return value

    def _run_steps(self) -> str:
        """Dispatch and collect until nothing more can run. Returns done / failed / cancelled / handoff."""
        self.unmet = {}
        self.ready = []
        self.waiting = set()
        for step in self.steps.values():
            if step.status == SS.FAILED and not step.continue_on_failure:
                self.failure = self.failure or f"step '{step.step_key}' failed: {step.error}"
            elif step.status in (SS.LOST, SS.CANCELLED):
                self.failure = self.failure or f"step '{step.step_key}' is {step.status}"
            elif step.status == SS.WAITING:
                self.waiting.add(step.pk)
            elif step.status == SS.PENDING:
                self.unmet[step.pk] = sum(1 for need in step.needs or [] if not self._satisfied(self.by_key[need]))
                if not self.unmet[step.pk]:
                    heapq.heappush(self.ready, (-step.priority, step.tier, step.pk))
        max_age = max(60.0, float(getattr(settings, "ENGINE_TASK_TIMEOUT", 7 * 24 * 3600)) - HANDOFF_MARGIN_SECONDS)
        while True:
            self.keep_lease()
            if time.monotonic() >= self.next_poll:
                self._poll()
            messages = self._drain()
            submit: list[tuple[StepRun, _Attempt]] = []
            if messages or self._has_work():  # (no empty write transactions while idle)
                with transaction.atomic():
                    self._handle(messages)
                    if self.cancelling:
                        self._cancel_unstarted()
                    elif self.failure:
                        self._cancel_waiting(f"not started: {self.failure}")
                    self._due_retries(submit)
                    if not self.failure and not self.cancelling:
                        self._dispatch(submit)
            for step, attempt in submit:
                self._submit(step, attempt)
            if not self.running and not submit:
                if self.cancelling:
                    return "cancelled"
                if self.failure:
                    return "failed"
                if not self.waiting and not self.ready:
                    return "done"
                if self.waiting and time.monotonic() - self.started > max_age:
                    return "handoff"

    def _has_work(self) -> bool:
        """Is there anything to write besides what the steps reported?"""
        now = time.monotonic()
        if any(a.retry_at is not None and a.retry_at <= now for a in self.running.values()):
            return True
        if self.cancelling:
            return bool(self.waiting) or any(s.status == SS.PENDING for s in self.steps.values())
        if self.failure:
            return bool(self.waiting)
        return bool(self.ready) and len(self.running) < self.limit

    def _drain(self) -> list[tuple[Any, ...]]:
        """Everything the steps reported; blocks until something arrives or there is work to do."""
        if self.ready and len(self.running) < self.limit and not self.failure and not self.cancelling:
            timeout = 0.0
        else:
            timeout = max(0.0, self.next_poll - time.monotonic())
            retries = [a.retry_at for a in self.running.values() if a.retry_at is not None]
            if retries:
                timeout = min(timeout, max(0.0, min(retries) - time.monotonic()))
        messages: list[tuple[Any, ...]] = []
        try:
            message = self.queue.get(timeout=timeout) if timeout > 0 else self.queue.get_nowait()
            while True:
                messages.append(message)
                if message[0] == "done" and len(self.running) >= self.limit:
                    # A slot is free: refill it now (one short transaction), the other results next turn.
                    break
                message = self.queue.get_nowait()
        except queue.Empty:
            pass
        return messages

    def _poll(self) -> None:
        """The cheap look at what people changed: the execution's cancel flag, and the waiting steps."""
        self.next_poll = time.monotonic() + POLL_SECONDS
        row = (
            FailoverExecution.objects.filter(pk=self.execution_id)
            .values("status", "coordinator", "cancel_requested", "rollback_on_cancel")
            .first()
        )
        if row is None or row["coordinator"] != self.worker or row["status"] in TERMINAL_EXECUTION:
            raise LeaseLost
        if row["cancel_requested"] and not self.cancelling:
            self.cancelling = True
            self.rollback_on_cancel = row["rollback_on_cancel"]
            self.cancel_event.set()
        if not self.waiting:
            return
        fields = ("id", "status", "gate_approved_at", "waiting_for", "output", "error", "finished_at", "confirmed_at")
        for row in StepRun.objects.filter(pk__in=self.waiting).values(*fields):
            step = self.steps[row["id"]]
            if row["status"] == SS.WAITING:
                if row["waiting_for"] == "approval" and row["gate_approved_at"] and step.gate_approved_at is None:
                    step.gate_approved_at = row["gate_approved_at"]
                    self.waiting.discard(step.pk)
                    heapq.heappush(self.ready, (-step.priority, step.tier, step.pk))
                continue
            self.waiting.discard(step.pk)
            step.status, step.output, step.error = row["status"], row["output"], row["error"]
            with transaction.atomic():
                if step.status == SS.SUCCEEDED:  # confirmed by a person
                    now = row["finished_at"] or row["confirmed_at"] or timezone.now()
                    duration = (now - step.started_at).total_seconds() if step.started_at else None
                    StepRun.objects.filter(pk=step.pk).update(finished_at=now, duration_seconds=duration)
                    step.finished_at = now
                    if step.output is not None:
                        self._remember_output(step)
                    self._release_dependents(step)
                elif step.status == SS.FAILED:  # gate rejected
                    self._failed(step, step.error or "rejected")
                else:
                    self.failure = self.failure or f"step '{step.step_key}' is {step.status}"

    def _dispatch(self, submit: list[tuple[StepRun, _Attempt]]) -> None:
        while self.ready and len(self.running) + len(submit) < self.limit:
            _, _, step_id = heapq.heappop(self.ready)
            step = self.steps[step_id]
            if step.status == SS.WAITING:  # its approval gate passed
                self._start_after_gate(step, submit)
                continue
            if step.status != SS.PENDING:
                continue
            try:
                real, masked = self.render(step, step.params)
            except InvalidInput as exc:
                self._render_failed(step, exc.message)
                continue
            self.real_params[step.pk] = real
            now = timezone.now()
            if step.approval and not step.gate_approved_at:
                role = (step.approval or {}).get("role", "")
                if transition_step(
                    step,
                    SS.WAITING,
                    only_from={SS.PENDING},
                    message=f"{step.step_key} waits for approval by {role or 'an approver'}",
                    redact=self.redactor.redact,
                    waiting_for="approval",
                    rendered=masked,
                    started_at=now,
                ):
                    self.waiting.add(step.pk)
            elif step.action == "manual":
                instructions = str(masked.get("instructions", ""))
                if transition_step(
                    step,
                    SS.WAITING,
                    only_from={SS.PENDING},
                    message=f"{step.step_key} waits for confirmation: {instructions}",
                    redact=self.redactor.redact,
                    waiting_for="confirmation",
                    rendered=masked,
                    started_at=now,
                ):
                    self.waiting.add(step.pk)
            else:
                attempt = _Attempt(number=step.attempts + 1, budget=1 + (step.retries or 0), params=real)
                if transition_step(
                    step,
                    SS.RUNNING,
                    only_from={SS.PENDING},
                    message=f"{step.step_key} started",
                    redact=self.redactor.redact,
                    rendered=masked,
                    attempts=attempt.number,
                    started_at=now,
                    worker=self.worker,
                    heartbeat_at=now,
                    error="",
                ):
                    submit.append((step, attempt))

    def _start_after_gate(self, step: StepRun, submit: list[tuple[StepRun, _Attempt]]) -> None:
        real = self.real_params.get(step.pk)
        if real is None:  # rendered by an earlier coordinator: render again
            try:
                real, _ = self.render(step, step.params)
            except InvalidInput as exc:
                self._render_failed(step, exc.message)
                return
        if step.action == "manual":
            StepRun.objects.filter(pk=step.pk).update(waiting_for="confirmation")
            step.waiting_for = "confirmation"
            instructions = str((step.rendered or {}).get("instructions", ""))
            emit(
                self.execution_id,
                ExecutionEvent.Kind.STEP_STATUS,
                f"{step.step_key} approved; waits for confirmation: {instructions}",
                {"step": step.step_key, "status": SS.WAITING, "waiting_for": "confirmation"},
                step_run_id=step.pk,
                redact=self.redactor.redact,
            )
            self.waiting.add(step.pk)
            return
        now = timezone.now()
        attempt = _Attempt(number=step.attempts + 1, budget=1 + (step.retries or 0), params=real)
        if transition_step(
            step,
            SS.RUNNING,
            only_from={SS.WAITING},
            message=f"{step.step_key} approved; started",
            redact=self.redactor.redact,
            waiting_for="",
            attempts=attempt.number,
            started_at=now,
            worker=self.worker,
            heartbeat_at=now,
        ):
            submit.append((step, attempt))

    def _render_failed(self, step: StepRun, message: str) -> None:
        now = timezone.now()
        error = f"parameters: {message}"
        transition_step(
            step,
            SS.RUNNING,
            only_from={SS.PENDING, SS.WAITING},
            message=f"{step.step_key} started",
            attempts=step.attempts + 1,
            started_at=now,
            worker=self.worker,
        )
        self._failed(step, error, finished=now)

    def _submit(self, step: StepRun, attempt: _Attempt) -> None:
        attempt.first = attempt.first or attempt.number
        self.running[step.pk] = attempt
        assert self.pool is not None
        self.pool.submit(self._execute, step.pk, step.step_key, step.action, attempt.params, step.timeout_seconds)

    def _execute(self, step_id: int, key: str, action: str, params: dict[str, Any], timeout: int | None) -> None:
        """In a pool thread: one attempt of one step. Never touches the database (except ctx.secret)."""
        started = time.monotonic()
        ctx = StepContext(
            execution_id=self.execution_id,
            step_key=key,
            timeout=float(timeout) if timeout else None,
            log=lambda line: self.queue.put(("log", step_id, line)),
            cancelled=self.cancel_event,
            secret=self._secret,
        )
        try:
            result = run_action(action, params, ctx)
        except BaseException as exc:  # run_action never raises; belt and braces for the coordinator
            result = ActionResult(False, error=f"{type(exc).__name__}: {exc}")
        self.queue.put(("done", step_id, result, timezone.now(), time.monotonic() - started))

    def _handle(self, messages: list[tuple[Any, ...]]) -> None:
        logs: list[tuple[int, str]] = []
        for message in messages:
            kind, step_id = message[0], message[1]
            attempt = self.running.get(step_id)
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
                    self._write_logs(logs)
                    logs = []
                self._finished(step_id, *message[2:])
        if logs:
            self._write_logs(logs)

    def _write_logs(self, lines: list[tuple[int, str]]) -> None:
        """All the lines in one transaction: one sequence update and one bulk insert."""
        write_log_events(
            self.execution_id, [(sid, self.steps[sid].step_key, line) for sid, line in lines], self.redactor
        )

    def _finished(self, step_id: int, result: ActionResult, finished: datetime, duration: float) -> None:
        step = self.steps[step_id]
        attempt = self.running[step_id]
        if attempt.dropped:
            self._write_logs([(step_id, f"[{attempt.dropped} more output lines not stored as events]")])
        redact = self.redactor.redact
        output = redact(result.output) if result.output else {}
        if result.ok:
            del self.running[step_id]
            transition_step(
                step,
                SS.SUCCEEDED,
                only_from={SS.RUNNING},
                message=f"{step.step_key} succeeded",
                redact=redact,
                finished_at=finished,
                duration_seconds=_duration(step, finished, duration),
                output=output,
                error="",
            )
            self._measure(result.measurements)
            self._remember_output(step)
            self._release_dependents(step)
            return
        error = redact(result.error or "failed")
        if self.cancelling:
            del self.running[step_id]
            transition_step(
                step,
                SS.CANCELLED,
                only_from={SS.RUNNING},
                message=f"{step.step_key} cancelled",
                redact=redact,
                finished_at=finished,
                duration_seconds=_duration(step, finished, duration),
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
                self.execution_id,
                ExecutionEvent.Kind.LOG,
                f"{step.step_key}: attempt {attempt.number} failed: {error}; retrying in {delay:g}s",
                {"step": step.step_key, "attempt": attempt.number, "error": error, "retry_in": delay},
                step_run_id=step.pk,
                redact=redact,
            )
            return
        del self.running[step_id]
        step.output = output
        self._failed(step, error, finished=finished, duration=_duration(step, finished, duration), output=output)

    def _failed(
        self,
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
                redact=self.redactor.redact,
                **fields,
            )
        if step.continue_on_failure:
            if step.output is not None:
                self._remember_output(step)
            self._release_dependents(step)
        else:
            self.failure = self.failure or f"step '{step.step_key}' failed: {error}"

    def _release_dependents(self, step: StepRun) -> None:
        for key in self.dependents.get(step.step_key, []):
            dependent = self.by_key[key]
            if dependent.pk in self.unmet:
                self.unmet[dependent.pk] -= 1
                if self.unmet[dependent.pk] == 0:
                    heapq.heappush(self.ready, (-dependent.priority, dependent.tier, dependent.pk))

    def _due_retries(self, submit: list[tuple[StepRun, _Attempt]]) -> None:
        now = time.monotonic()
        for step_id, attempt in list(self.running.items()):
            if attempt.retry_at is None or attempt.retry_at > now:
                continue
            step = self.steps[step_id]
            if self.cancelling:
                del self.running[step_id]
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
                self.execution_id,
                ExecutionEvent.Kind.STEP_STATUS,
                f"{step.step_key} attempt {attempt.number} started",
                {"step": step.step_key, "status": SS.RUNNING, "attempts": attempt.number},
                step_run_id=step_id,
            )
            del self.running[step_id]
            submit.append((step, attempt))

    def _cancel_waiting(self, reason: str) -> None:
        for step_id in list(self.waiting):
            step = self.steps[step_id]
            if transition_step(
                step,
                SS.CANCELLED,
                only_from={SS.WAITING},
                message=f"{step.step_key} cancelled ({reason})",
                redact=self.redactor.redact,
                finished_at=timezone.now(),
            ):
                self.waiting.discard(step_id)

    def _cancel_unstarted(self) -> None:
        self._cancel_waiting("execution cancelled")
        self.ready = []
        for step in self.steps.values():
            if step.status == SS.PENDING:
                transition_step(step, SS.CANCELLED, only_from={SS.PENDING}, message=f"{step.step_key} cancelled")
        # Steps backing off between attempts count as running; _due_retries cancels them now.
        for attempt in self.running.values():
            if attempt.retry_at is not None:
                attempt.retry_at = 0.0

    def _measure(self, measurements: dict[str, float]) -> None:
        fields = {}
        for source, name in (
            ("rpo_seconds", "actual_rpo_seconds"),
            ("data_loss_bytes", "data_loss_bytes"),
            ("data_loss_transactions", "data_loss_transactions"),
        ):
            value = (measurements or {}).get(source)
            if value is None:
                continue
            value = float(value)
            if name not in self.measured or value > self.measured[name]:
                self.measured[name] = value
                fields[name] = value if name == "actual_rpo_seconds" else int(value)
        if fields:
            FailoverExecution.objects.filter(pk=self.execution_id).update(**fields)

    # ----------------------------------------------------------------- blocking work in the pool
    def run_blocking(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run `function` in the pool while this thread keeps the lease and stores log lines."""
        assert self.pool is not None
        future: Future = self.pool.submit(function, *args)
        while True:
            try:
                return future.result(timeout=POLL_SECONDS)
            except TimeoutError:
                pass
            finally:
                self.flush_logs()
            self.keep_lease()

    def flush_logs(self) -> None:
        """Store log lines that rollback actions and checks sent to the queue (step id, line)."""
        lines = []
        try:
            while True:
                message = self.queue.get_nowait()
                if message[0] == "log":
                    lines.append((message[1], message[2]))
        except queue.Empty:
            pass
        if lines:
            with transaction.atomic():
                self._write_logs(lines[: MAX_LOG_EVENTS_PER_STEP * max(1, len(self.steps))])

    def action_context(self, step: StepRun, timeout: float | None) -> StepContext:
        return StepContext(
            execution_id=self.execution_id,
            step_key=step.step_key,
            timeout=timeout,
            log=lambda line: self.queue.put(("log", step.pk, line)),
            cancelled=threading.Event(),  # a rollback is not interrupted by the cancel that caused it
            secret=self._secret,
        )

    # ----------------------------------------------------------------- phases after the steps
    def _to(self, status: str, message: str, **fields: Any) -> None:
        self.keep_lease()
        if not transition_execution(self.execution_id, status, message=message, redact=self.redactor.redact, **fields):
            raise LeaseLost  # someone else changed the status: not ours to drive any more

    def _has_rollbacks(self) -> bool:
        return bool(rollback.rollback_order(list(self.steps.values())))

    def _after_failure(self, reason: str) -> str:
        if self.execution.on_failure == OnFailure.ROLLBACK and self._has_rollbacks():
            self._to(ES.ROLLING_BACK, f"rolling back: {reason}", error=self.redactor.redact(reason))
            return self._rollback(reason)
        if self.execution.on_failure == OnFailure.ROLLBACK:
            reason = f"{reason}; nothing to roll back (no completed step defines a rollback)"
        return self._finish(ES.FAILED, error=reason)

    def _rollback(self, reason: str) -> str:
        self._load_steps()
        ok, report = rollback.run_rollback(self)
        status = ES.ROLLED_BACK if ok else ES.ROLLBACK_FAILED
        return self._finish(status, error=f"{reason}; {report}")

    def _validate(self) -> str:
        results = validation.run_checks(self)
        failed_trigger = validation.should_roll_back(results, self.validation_trigger)
        passed_at = timezone.now()
        if not failed_trigger:
            return self._complete(passed_at)
        names = ", ".join(r.name for r in results if r.status != "passed")
        reason = f"validation failed: {names}"
        if self.execution.on_failure == OnFailure.ROLLBACK and self._has_rollbacks():
            self._to(ES.ROLLING_BACK, f"rolling back: {reason}", error=reason)
            return self._rollback(reason)
        return self._finish(ES.FAILED, error=reason)

    def _last_step_finished(self) -> datetime:
        last = StepRun.objects.filter(execution_id=self.execution_id).aggregate(m=Max("finished_at"))["m"]
        return last or timezone.now()

    def _complete(self, recovered_at: datetime) -> str:
        start = self.execution.disaster_declared_at or self.execution.triggered_at
        rto = max(0.0, (recovered_at - start).total_seconds())
        return self._finish(ES.COMPLETED, actual_rto_seconds=rto)

    def _finish(self, status: str, *, error: str = "", **fields: Any) -> str:
        """Terminal status and the SUMMARY event in one transaction; then the outcome bookkeeping."""
        self.keep_lease()
        redact = self.redactor.redact
        if error:
            fields["error"] = redact(error)
        with transaction.atomic():
            moved = transition_execution(
                self.execution_id,
                status,
                message=f"execution {status}" + (f": {fields['error']}" if error else ""),
                redact=redact,
                coordinator="",
                lease_expires_at=None,
                **fields,
            )
            if not moved:
                raise LeaseLost
            emit(
                self.execution_id,
                ExecutionEvent.Kind.SUMMARY,
                f"execution {status}",
                self._summary(status),
                redact=redact,
            )
        _record_outcome(self.execution_id)
        return status

    def _summary(self, status: str) -> dict[str, Any]:
        execution = FailoverExecution.objects.get(pk=self.execution_id)
        steps = list(
            StepRun.objects.filter(execution_id=self.execution_id)
            .order_by("id")
            .values("step_key", "status", "attempts", "duration_seconds", "rollback_status")
        )
        counts: dict[str, int] = {}
        for step in steps:
            counts[step["status"]] = counts.get(step["status"], 0) + 1
        return {
            "status": status,
            "dry_run": execution.dry_run,
            "error": execution.error,
            "steps": counts,
            "step_results": steps,
            "actual_rto_seconds": execution.actual_rto_seconds,
            "actual_rpo_seconds": execution.actual_rpo_seconds,
            "data_loss_bytes": execution.data_loss_bytes,
            "data_loss_transactions": execution.data_loss_transactions,
            "validation": list(execution.validation_results.values("name", "status", "severity")),
            "duration_seconds": (
                (execution.finished_at - execution.started_at).total_seconds()
                if execution.finished_at and execution.started_at
                else None
            ),
        }

    # ----------------------------------------------------------------- dry run
    def _dry_run(self) -> str:
        """Render every step and check its action exists; run nothing."""
        order = rollback.topological_order(list(self.steps.values())) or []
        problems: list[str] = []
        with transaction.atomic():
            for step in order:
                if step.status != SS.PENDING:
                    continue
                note, problem = "dry run", ""
                masked: dict[str, Any] | None = None
                try:
                    _, masked = self.render(step, step.params, dry_run=True)
                    if step.rollback:
                        self.render(step, (step.rollback or {}).get("with") or {}, dry_run=True)
                except InvalidInput as exc:
                    problem = f"parameters: {exc.message}"
                if step.action != "manual" and get_executor(step.action) is None:
                    problem = problem or f"no executor for action '{step.action}'"
                rollback_action = (step.rollback or {}).get("action", "")
                if step.rollback and rollback_action != "manual" and get_executor(rollback_action) is None:
                    problem = problem or f"no executor for rollback action '{step.rollback.get('action')}'"
                if problem:
                    problems.append(f"{step.step_key}: {problem}")
                    note = f"dry run: {problem}"
                elif step.action == "manual":
                    note = "dry run: would wait for confirmation"
                elif step.approval:
                    note = "dry run: would wait for approval"
                transition_step(
                    step,
                    SS.SKIPPED,
                    only_from={SS.PENDING},
                    message=f"{step.step_key} {note}",
                    redact=self.redactor.redact,
                    rendered=masked,
                    error=problem,
                )
        if problems:
            return self._finish(ES.FAILED, error=f"dry run found {len(problems)} problem(s): " + "; ".join(problems))
        return self._finish(ES.COMPLETED)


def write_log_events(execution_id: int, lines: list[tuple[int | None, str, str]], redactor: Redactor) -> None:
    """Append LOG events (step id, step key, line) with consecutive sequence numbers in one transaction."""
    if not lines:
        return
    with transaction.atomic():
        FailoverExecution.objects.filter(pk=execution_id).update(event_seq=F("event_seq") + len(lines))
        last = FailoverExecution.objects.filter(pk=execution_id).values_list("event_seq", flat=True).get()
        first = last - len(lines) + 1
        events = ExecutionEvent.objects.bulk_create(
            ExecutionEvent(
                execution_id=execution_id,
                seq=first + i,
                step_run_id=step_id,
                kind=ExecutionEvent.Kind.LOG,
                message=redactor.redact(line),
                data={"step": key},
            )
            for i, (step_id, key, line) in enumerate(lines)
        )
        transaction.on_commit(lambda: [publish(event) for event in events])


def _duration(step: StepRun, finished: datetime, measured: float) -> float:
    if step.started_at:
        return max(measured, (finished - step.started_at).total_seconds())
    return measured


def _plan_data(execution: FailoverExecution) -> dict[str, Any] | None:
    plan = execution.plan
    if plan is None:
        return None
    return {
        "id": plan.pk,
        "plan_id": plan.plan_id,
        "name": plan.name,
        "rto_seconds": plan.rto_seconds,
        "rpo_seconds": plan.rpo_seconds,
        "primary_site": getattr(plan.primary_site, "code", None) if plan.primary_site_id else None,
        "dr_site": getattr(plan.dr_site, "code", None) if plan.dr_site_id else None,
    }


def _record_outcome(execution_id: int) -> None:
    from failover import services

    record = getattr(services, "record_outcome", None)
    if record is None:
        return
    try:
        record(execution_id)
    except Exception:  # the execution's outcome is stored; analytics must not undo or hide it
        logger.exception("record_outcome failed for execution %s", execution_id)
