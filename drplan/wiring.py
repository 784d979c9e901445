"""Where a lower app is handed what it needs from a higher one: every such seam, wired in one place.

The apps import one way only (docs/architecture.md, "Layers"). Where a lower layer needs something done
above it, it declares a small interface and the project fills it here, once, when Django starts
(DRPlanConfig.ready, so in every process: web, workers, management commands, tests):

- the execution engine (failover/engine/hooks.py): enqueue a coordinator, record a finished
  execution's outcome, expire approval requests, notify the subscribers of an event
  (analytics.notifications.services.notify_execution_event).
- a plan's predicted RTO (plans/predictions.py): the ML service's client, mlservice.client.
- a plan's downtime cost model (plans/costs.py, the console's meter): its business processes
  (analytics.impact.costs); the what-if scenarios' recovery estimator (analytics/impact/estimates.py):
  the ML service's client.
- the console's recovery-time estimate of the remaining steps (failover/estimates.py): the same client.
- what `lab up` sets up above the lab (lab/hooks.py): the lab's monitors, analytics.monitoring.services.
"""

from __future__ import annotations

from analytics import outcomes
from analytics.impact import costs as impact_costs
from analytics.impact import estimates as whatif_estimates
from analytics.monitoring import services as monitoring
from analytics.notifications import services as notifications
from failover import approvals, tasks
from failover import estimates as console_estimates
from failover import selectors as failover_selectors
from failover.engine import hooks
from lab import hooks as lab_hooks
from mlservice import client
from plans import costs, predictions
from runbooks import library


def engine_hooks() -> hooks.EngineHooks:
    """The engine's default hooks: django-q2 for coordinators, the outcome recorder, the approvals' expiry."""
    return hooks.EngineHooks(
        enqueue=tasks.enqueue_execution,
        record_outcome=outcomes.record_outcome,
        expire_approvals=approvals.expire_approval_requests,
        notify_event=notifications.notify_execution_event,
    )


def connect() -> None:
    """Install every seam's default (idempotent)."""
    hooks.install(engine_hooks())
    predictions.install(client.predict_plan_rto)
    costs.install(impact_costs.plan_cost_model)
    whatif_estimates.install(client.estimate_recovery_time)
    console_estimates.install(client.estimate_remaining_recovery)
    lab_hooks.install(monitoring.ensure_lab_monitors)
    library.install_run_finder(failover_selectors.last_completed_real_run)
