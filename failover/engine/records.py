"""What the coordinator writes besides status transitions: LOG events (batched, with consecutive
sequence numbers), a step's duration, the RPO / data-loss measurements steps report, the data of
the SUMMARY event, and, after the end, the call of the outcome hook (hooks.EngineHooks.record_outcome)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from core.secrets import Redactor
from failover.engine.events import store
from failover.engine.lease import unfenced
from failover.models import ExecutionEvent, FailoverExecution, StepRun

logger = logging.getLogger(__name__)

MAX_LOG_EVENTS_PER_STEP = 1000  # log lines stored as events per step attempt; the rest is counted
# The message of the SUMMARY event the outcome hook appends once it recorded an execution's outcome:
# the live feed waits for it before it calls a finished stream complete (failover/live/).
OUTCOME_MARKER = "outcome recorded"


def write_log_events(execution_id: int, lines: list[tuple[int | None, str, str]], redactor: Redactor) -> None:
    """Append LOG events (step id, step key, line) with consecutive sequence numbers in one transaction
    (or in the current events.batched() block)."""
    store(
        [
            ExecutionEvent(
                execution_id=execution_id,
                step_run_id=step_id,
                kind=ExecutionEvent.Kind.LOG,
                message=redactor.redact(line),
                data={"step": key},
            )
            for step_id, key, line in lines
        ]
    )


def step_duration(step: StepRun, finished: datetime, measured: float) -> float:
    if step.started_at:
        return max(measured, (finished - step.started_at).total_seconds())
    return measured


def store_measurements(execution_id: int, measured: dict[str, float], measurements: dict[str, float]) -> None:
    """Keep the worst RPO / data loss a step measured (in `measured` and on the execution row)."""
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
        if name not in measured or value > measured[name]:
            measured[name] = value
            fields[name] = value if name == "actual_rpo_seconds" else int(value)
    if fields:
        FailoverExecution.objects.filter(pk=execution_id).update(**fields)


def summary(execution_id: int, status: str) -> dict[str, Any]:
    """The data of the SUMMARY event: counts and results of the steps, measurements, validation."""
    execution = FailoverExecution.objects.get(pk=execution_id)
    steps = list(
        StepRun.objects.filter(execution_id=execution_id)
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


def record_outcome(execution_id: int, record: Callable[[int], None]) -> None:
    """The outcome hook, after the terminal transaction; its failure is logged, never raised. That transaction gave
    the execution up (no lease any more), so the hook's writes are not fenced by it (lease.unfenced)."""
    try:
        with unfenced():
            record(execution_id)
    except Exception:  # the execution's outcome is stored; analytics must not undo or hide it
        logger.exception("record_outcome failed for execution %s", execution_id)
