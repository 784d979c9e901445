"""Where a lower app is handed what it needs from a higher one: every such seam, wired in one place.

The apps import one way only (docs/architecture.md, "Layers"). Where a lower layer needs something done
above it, it declares a small interface and the project fills it here, once, when Django starts
(DRPlanConfig.ready, so in every process: web, workers, management commands, tests):

- the execution engine (failover/engine/hooks.py): enqueue a coordinator, record a finished
  execution's outcome, expire approval requests.
- a plan's predicted RTO (plans/predictions.py): the ML service's client, mlservice.client.
- the console's recovery-time estimate (failover/estimates.py): the same client.
"""

from __future__ import annotations

from analytics import outcomes
from failover import approvals, estimates, tasks
from failover.engine import hooks
from mlservice import client
from plans import predictions


def engine_hooks() -> hooks.EngineHooks:
    """The engine's default hooks: django-q2 for coordinators, the outcome recorder, the approvals' expiry."""
    return hooks.EngineHooks(
        enqueue=tasks.enqueue_execution,
        record_outcome=outcomes.record_outcome,
        expire_approvals=approvals.expire_approval_requests,
    )


def connect() -> None:
    """Install every seam's default (idempotent)."""
    hooks.install(engine_hooks())
    predictions.install(client.predict_plan_rto)
    estimates.install(client.estimate_recovery_time)
