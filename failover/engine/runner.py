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
Terminal transitions and the SUMMARY event share one transaction; the outcome hook runs after it.
While only people are awaited the coordinator polls (two small reads every 0.2 s); shortly before
the django-q2 task timeout an idle coordinator hands over to a fresh task.
A database outage is ridden out within the coordinator's fence (outage.py, lease.py): a write turn
that fails is rolled back in memory too and run again when the database returns; when it does not
return before `lease - margin` since the last renewal, the coordinator fences itself (Fenced: it stops
as when its lease is lost) before the lease can expire.

What the engine needs from above it (enqueueing a hand-off, recording the outcome) it gets as
EngineHooks (hooks.py): given to run_execution, else the set installed at start-up.

The Coordinator keeps the loop and the phases; its helpers live by concept: lease.py (take, renew,
release, hand off), dispatch.py (starting ready steps, retries), step_results.py (what steps report),
records.py (log events, measurements, summary, outcome), dry_run.py.
"""

from __future__ import annotations

import functools
import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from core.secrets import Redactor, allowed_hosts_of, get_secret_value, read_secret
from failover.choices import ExecutionStatus as ES
from failover.choices import OnFailure
from failover.choices import StepStatus as SS
from failover.engine import outage, reaper, records, rollback, validation
from failover.engine.actions import ActionResult, StepContext, WakingEvent, abandon_unclaimed, run_action, start_action
from failover.engine.approval_policy import ApprovalRequired
from failover.engine.dispatch import Attempt, dispatch, due_retries
from failover.engine.dry_run import check_and_skip
from failover.engine.events import batched, emit
from failover.engine.hooks import EngineHooks, installed
from failover.engine.lease import (
    COORDINATED,
    DB_ERRORS,
    Fence,
    Fenced,
    LeaseLost,
    fenced_writes,
    hand_off,
    lease_seconds,
    release_lease,
    renew_lease,
    ride_out,
    take_lease,
    worker_identity,
)
from failover.engine.rawsql import deferred_step_moves
from failover.engine.records import MAX_LOG_EVENTS_PER_STEP, write_log_events
from failover.engine.states import TERMINAL_EXECUTION, transition_execution
from failover.engine.step_results import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    cancel_unstarted,
    cancel_waiting,
    failed,
    handle,
    release_dependents,
    write_logs,
)
from failover.models import ExecutionEvent, FailoverExecution, StepRun
from runbooks.templating import TemplateContext, render_step_params

# Re-exported: callers import these from the runner.
__all__ = [
    "BACKOFF_BASE_SECONDS",
    "BACKOFF_CAP_SECONDS",
    "COORDINATED",
    "MAX_LOG_EVENTS_PER_STEP",
    "Coordinator",
    "LeaseLost",
    "lease_seconds",
    "run_execution",
    "take_lease",
    "worker_identity",
    "write_log_events",
]

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # how often the coordinator looks for cancel requests, confirmations and gate approvals
MAX_POOL = 64  # steps at once (threads) when the execution sets no parallelism
HANDOFF_MARGIN_SECONDS = 600  # an idle coordinator hands over this long before the task timeout
DONE_OK = (SS.SUCCEEDED, SS.SKIPPED)
# The values and the allow-lists (name -> hosts, only secrets that have one) of the secrets a step used.
SecretScope = tuple[frozenset[str], dict[str, list[str]]]


def run_execution(execution_id: int, *, worker_id: str | None = None, hooks: EngineHooks | None = None) -> str:
    """Run the coordinator of one execution in this process until the execution is terminal
    or PAUSED (or another coordinator holds it). Returns the execution's status at the end.
    `hooks` default to the ones installed at start-up (failover/engine/hooks.py).

    Safe to call for any execution at any time: without the lease it writes nothing."""
    return Coordinator(execution_id, worker_id or worker_identity(), hooks or installed()).run()


class Coordinator:
    def __init__(self, execution_id: int, worker_id: str, hooks: EngineHooks) -> None:
        self.execution_id = execution_id
        self.worker = worker_id
        self.hooks = hooks
        self.queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.cancel_event = WakingEvent()  # steps waiting in select() wake when it is set (shell.py)
        self.redactor = Redactor()
        self.pool: ThreadPoolExecutor | None = None
        self.steps: dict[int, StepRun] = {}
        self.by_key: dict[str, StepRun] = {}
        self.dependents: dict[str, list[str]] = {}
        self.unmet: dict[int, int] = {}
        self.ready: list[tuple[int, int, int]] = []  # heap of (-priority, tier, id)
        self.running: dict[int, Attempt] = {}
        self.waiting: set[int] = set()
        self.outputs: dict[str, dict[str, Any]] = {}
        self.real_params: dict[int, dict[str, Any]] = {}
        self.secret_scopes: dict[int, SecretScope] = {}  # step id -> what its last rendering used
        self.failure = ""  # why the execution is failing (a step failed without continue_on_failure)
        self.cancelling = False
        self.rollback_on_cancel = False
        self.lease_lost = False
        self.fence = Fence()  # when to stop if the lease cannot be renewed (lease.py)
        self.committing = False  # a guarded turn reached its commit (outage.py)
        self.defer_moves = True  # the next turn's step moves may wait for its events (off again after a conflict)
        self.started = time.monotonic()
        self.next_poll = 0.0
        self.measured: dict[str, float] = {}
        self.validation_trigger = ""
        self.limit = MAX_POOL

    # ----------------------------------------------------------------- lifecycle
    def run(self) -> str:
        if not take_lease(self.execution_id, self.worker, fence=self.fence):
            return self._status()
        watchdog = outage.Watchdog(self).start()
        try:
            with fenced_writes(self.execution_id, self.worker):  # every write conditional on the lease (lease.py)
                return self._run()
        except LeaseLost:
            self.lease_lost = True
            self.cancel_event.set()  # our copies of the steps must not race the new coordinator's
            logger.warning("execution %s: lease lost by %s; stopped", self.execution_id, self.worker)
            return self._status()
        except Fenced as fenced:
            self.lease_lost = True
            self.cancel_event.set()  # as when the lease is lost: the next coordinator resolves our steps
            logger.error("execution %s: %s fenced itself (%s); stopped", self.execution_id, self.worker, fenced)
            try:
                return self._status()
            except DB_ERRORS:
                return ""
        except Exception:
            # Leave the lease to expire: the reaper re-enqueues, the next coordinator recovers.
            self.cancel_event.set()
            logger.exception("execution %s: coordinator %s crashed", self.execution_id, self.worker)
            raise
        finally:
            watchdog.stop()
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
            try:
                started = transition_execution(
                    self.execution_id,
                    ES.RUNNING,
                    only_from={ES.PENDING},
                    message=f"execution started by {self.worker}",
                    started_at=timezone.now(),
                )
            except ApprovalRequired as refused:  # never reached through the services; refuse loudly if it is
                return self._finish(ES.FAILED, error=refused.message)
            if not started:
                self._release()
                return self._status()
            status = ES.RUNNING
        problem = self._load_steps()
        # Steps left RUNNING by an earlier coordinator (none on a fresh start: no second read then).
        if status == ES.RUNNING and not execution.dry_run and any(s.status == SS.RUNNING for s in self.steps.values()):
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
        release_lease(self.execution_id, self.worker)

    def _handoff(self) -> str:
        """Before the task timeout: give the execution to a fresh task (only while nothing runs)."""
        hand_off(self.execution_id, self.worker, self.hooks.enqueue)
        return self._status()

    # ----------------------------------------------------------------- lease
    def _renew(self) -> None:
        def renew() -> None:
            renew_lease(self.execution_id, self.worker, heartbeat_steps=bool(self.running), fence=self.fence)

        ride_out(self.fence, renew, what=f"execution {self.execution_id}: renewing the lease")

    def keep_lease(self) -> None:
        if self.fence.due():
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
                self.remember_output(step)
        return ""

    def remember_output(self, step: StepRun) -> None:
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
        """(real, masked) parameters; feeds the Redactor and remembers, for the step's StepContext, the
        secrets used and their allow-lists (read here: executors do not touch the database). Raises
        InvalidInput naming what is missing."""
        rendered = render_step_params(params or {}, self._template_context(step, dry_run=dry_run), dry_run=dry_run)
        for value in rendered.secrets_used:
            self.redactor.add(value)
        if not dry_run:
            hosts = allowed_hosts_of(rendered.secret_names) if rendered.secret_names else {}
            self.secret_scopes[step.pk] = (frozenset(rendered.secrets_used), hosts)
        return rendered.value, rendered.masked

    def secret_for_check(self, name: str) -> str:
        return self._secret(name)

    def _secret(self, name: str, ctx: StepContext | None = None) -> str:
        """ctx.secret for actions: read in the step's thread, remembered by the Redactor and, with its
        allow-list, by the step's context."""
        try:
            value, hosts = read_secret(name)
        finally:
            connection.close()  # this pool thread's own connection
        self.redactor.add(value)
        if ctx is not None:
            ctx.secret_values.add(value)
            if hosts:
                ctx.allowed_hosts[name] = hosts
        return value

    def _step_context(
        self, step_id: int, key: str, timeout: float | None, cancelled: threading.Event, scope: SecretScope | None
    ) -> StepContext:
        values, hosts = scope or (frozenset(), {})
        ctx = StepContext(
            execution_id=self.execution_id,
            step_key=key,
            timeout=timeout,
            log=lambda line: self.queue.put(("log", step_id, line)),
            cancelled=cancelled,
            secret_values=set(values),
            allowed_hosts={name: list(patterns) for name, patterns in hosts.items()},
        )
        ctx.secret = lambda name: self._secret(name, ctx)
        return ctx

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
                outage.guarded(self, "polling", self._poll)
            messages = self._drain()
            submit: list[tuple[StepRun, Attempt]] = []
            if messages or self._has_work():  # (no empty write transactions while idle)
                submit = outage.guarded(self, "recording steps", self._write_turn, messages)
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

    def _write_turn(self, messages: list[tuple[Any, ...]]) -> list[tuple[StepRun, Attempt]]:
        """One transaction: what the steps reported, cancellations, retries and new dispatches. On PostgreSQL its
        step moves wait and go with its events in one round trip (rawsql.deferred_step_moves); a move that finds
        its row changed behind the coordinator's back rolls the turn back, and outage.guarded runs it again with
        each move checked as it is made."""
        submit: list[tuple[StepRun, Attempt]] = []
        defer, self.defer_moves = self.defer_moves, True
        with transaction.atomic():
            with deferred_step_moves(defer), batched():  # the turn's events stored together at its end
                handle(self, messages)
                if self.cancelling:
                    cancel_unstarted(self)
                elif self.failure:
                    cancel_waiting(self, f"not started: {self.failure}")
                due_retries(self, submit)
                if not self.failure and not self.cancelling:
                    dispatch(self, submit)
            self.committing = True
        return submit

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
            while True:  # everything already there: one transaction stores it all and fills every free slot
                messages.append(message)
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
                        self.remember_output(step)
                    release_dependents(self, step)
                elif step.status == SS.FAILED:  # gate rejected
                    failed(self, step, step.error or "rejected")
                else:
                    self.failure = self.failure or f"step '{step.step_key}' is {step.status}"

    def _submit(self, step: StepRun, attempt: Attempt) -> None:
        """Hand a step whose start the turn committed to the pool; its action's starter runs first, here (a shell
        step's process starts now, not once a pool thread has picked the step up: actions.starter)."""
        attempt.first = attempt.first or attempt.number
        self.running[step.pk] = attempt
        assert self.pool is not None
        submitted = time.monotonic()
        timeout = float(step.timeout_seconds) if step.timeout_seconds else None
        ctx = self._step_context(step.pk, step.step_key, timeout, self.cancel_event, self.secret_scopes.get(step.pk))
        start_action(step.action, attempt.params, ctx)
        task = self.pool.submit(self._execute, step.pk, step.action, attempt.params, ctx, submitted)
        if ctx.started is not None:
            task.add_done_callback(functools.partial(abandon_unclaimed, ctx))

    def _execute(self, step_id: int, action: str, params: dict[str, Any], ctx: StepContext, submitted: float) -> None:
        """In a pool thread: one attempt of one step. Never touches the database (except ctx.secret)."""
        try:
            result = run_action(action, params, ctx)
        except BaseException as exc:  # run_action never raises; belt and braces for the coordinator
            result = ActionResult(False, error=f"{type(exc).__name__}: {exc}")
        self.queue.put(("done", step_id, result, timezone.now(), time.monotonic() - submitted))

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

            def write() -> None:
                with transaction.atomic():
                    write_logs(self, lines[: MAX_LOG_EVENTS_PER_STEP * max(1, len(self.steps))])
                    self.committing = True

            outage.guarded(self, "storing log lines", write)

    def action_context(self, step: StepRun, timeout: float | None) -> StepContext:
        """For a step's rollback action, right after rendering its parameters (render)."""
        # A rollback is not interrupted by the cancel that caused it: its own event.
        return self._step_context(step.pk, step.step_key, timeout, threading.Event(), self.secret_scopes.get(step.pk))

    # ----------------------------------------------------------------- phases after the steps
    def _to(self, status: str, message: str, **fields: Any) -> None:
        self.keep_lease()

        def move() -> bool:
            redact = self.redactor.redact
            return transition_execution(self.execution_id, status, message=message, redact=redact, **fields)

        if not outage.guarded(self, f"moving to {status}", move):
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
        """COMPLETED with the measured RTO: from the declared disaster (else the trigger) to recovery.
        A recovery before that start (clocks of two machines disagreeing) is not an RTO of 0: none is recorded."""
        start = self.execution.disaster_declared_at or self.execution.triggered_at
        rto = (recovered_at - start).total_seconds()
        if rto < 0:
            emit(
                self.execution_id,
                ExecutionEvent.Kind.STATUS,
                f"RTO not measured: recovery at {recovered_at.isoformat()} precedes its start {start.isoformat()}",
                {"rto_measured": False},
            )
            return self._finish(ES.COMPLETED)
        return self._finish(ES.COMPLETED, actual_rto_seconds=rto)

    def _finish(self, status: str, *, error: str = "", **fields: Any) -> str:
        """Terminal status and the SUMMARY event in one transaction; then the outcome hook."""
        self.keep_lease()
        redact = self.redactor.redact
        if error:
            fields["error"] = redact(error)

        def finish() -> None:
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
                    records.summary(self.execution_id, status),
                    redact=redact,
                )
                self.committing = True

        outage.guarded(self, f"finishing ({status})", finish)
        records.record_outcome(self.execution_id, self.hooks.record_outcome)
        return status

    # ----------------------------------------------------------------- dry run
    def _dry_run(self) -> str:
        """Render every step and check its action exists; run nothing (failover/engine/dry_run.py)."""
        problems = check_and_skip(self)
        if problems:
            return self._finish(ES.FAILED, error=f"dry run found {len(problems)} problem(s): " + "; ".join(problems))
        return self._finish(ES.COMPLETED)


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
