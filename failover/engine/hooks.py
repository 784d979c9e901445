"""What the engine needs from the layers above it, handed to it explicitly.

The engine (failover/engine/) runs executions and imports nothing of failover's use cases, its
task queue or analytics. Three things it sets off belong up there:

- `enqueue(execution_id)`: queue a coordinator for the execution (django-q2,
  failover.tasks.enqueue_execution). The reaper re-enqueues stale executions with it, and an idle
  coordinator hands its execution to a fresh task with it.
- `record_outcome(execution_id)`: what a finished execution leaves behind (analytics: the DR test
  result, the RTO targets), called after the terminal transaction. It appends the SUMMARY event
  `records.OUTCOME_MARKER` the live feed waits for; the engine logs its failure and never raises it.
- `expire_approvals() -> int`: end the approval requests past their deadline
  (failover.approvals.expire_approval_requests); the reaper calls it on each pass and reports the count.
- `notify_event(event)` (optional): tell people what an execution's event means for them (analytics:
  analytics.notifications.services.notify_execution_event, which queues its deliveries). Called by
  `events.emit` after the event's transaction commits, for every event but log lines; it must return
  quickly and never send anything itself. Its failure is logged, never raised.

The project installs the set once at start-up (drplan/wiring.py, from the drplan app's ready()); the
entry points `runner.run_execution` and `reaper.reap` use it unless they are given another (tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from failover.models import ExecutionEvent


@dataclass(frozen=True)
class EngineHooks:
    enqueue: Callable[[int], None]
    record_outcome: Callable[[int], None]
    expire_approvals: Callable[[], int]
    notify_event: Callable[[ExecutionEvent], Any] | None = None


_installed: EngineHooks | None = None


def install(hooks: EngineHooks) -> None:
    """Make `hooks` the engine's default (drplan.wiring does, at start-up)."""
    global _installed
    _installed = hooks


def installed_or_none() -> EngineHooks | None:
    """The hooks installed at start-up, or None (for what is optional: `events.emit`'s notification)."""
    return _installed


def installed() -> EngineHooks:
    """The hooks installed at start-up; an error naming where they come from if none were."""
    if _installed is None:
        raise RuntimeError(
            "the execution engine has no hooks installed: drplan.wiring.connect() installs them when Django "
            "starts (the drplan app's ready()); is 'drplan' in INSTALLED_APPS?"
        )
    return _installed
