"""Failure detection for plans: a probe watched over the plan's detection window, and what the
plan's failover mode says to do when the failure lasts.

    automatic       start an unplanned failover at once (trigger type "automatic")
    semi_automatic  start it, but waiting for a go/no-go approval (at least one approver)
    manual          alert the operators (audit entry and log); a person triggers the failover

The disaster is declared at the first failed probe, so the measured RTO includes detection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.utils import timezone

from core import audit
from core.choices import AuditAction
from core.exceptions import Conflict
from failover.choices import TriggerType
from plans.choices import FailoverMode
from plans.models import DRPlan

logger = logging.getLogger(__name__)

Probe = Callable[[], tuple[bool, str]]  # () -> (healthy, what was seen)


@dataclass
class PlanMonitor:
    """Watches one plan with one probe. `observe()` is one look; `run()` loops until stopped."""

    plan_id: str
    probe: Probe
    interval: float = 1.0
    window_seconds: float | None = None  # default: the plan's detection_window_seconds
    first_failure: float | None = None  # monotonic time of the first failed probe in a row
    first_failure_at: datetime | None = None
    reacted: bool = False  # already acted on this outage
    actions: list[str] = field(default_factory=list)

    def observe(self) -> str | None:
        """Probe once; act if the failure has lasted the detection window. Returns what was done."""
        try:
            healthy, detail = self.probe()
        except Exception as exc:  # a broken probe is a failed probe
            healthy, detail = False, f"probe error: {exc}"
        if healthy:
            self.first_failure, self.first_failure_at, self.reacted = None, None, False
            return None
        now = time.monotonic()
        if self.first_failure is None:
            self.first_failure, self.first_failure_at = now, timezone.now()
            logger.warning("monitor %s: failure seen: %s", self.plan_id, detail)
        plan = DRPlan.objects.get(plan_id=self.plan_id)
        window = self.window_seconds if self.window_seconds is not None else plan.detection_window_seconds
        if self.reacted or now - self.first_failure < window:
            return None
        self.reacted = True
        action = react(plan, detail, self.first_failure_at or timezone.now())
        self.actions.append(action)
        return action

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.observe()
                stop.wait(self.interval)
        finally:
            connection.close()


def react(plan: DRPlan, detail: str, failed_since: datetime) -> str:
    """Do what the plan's failover mode says about a lasting failure. Returns a short description."""
    from failover import services

    reason = f"detected by monitoring: {detail} (failing since {failed_since:%H:%M:%S} UTC)"
    if plan.failover_mode == FailoverMode.MANUAL:
        alert(plan, reason)
        return "alerted"
    try:
        execution = services.start_failover(
            plan,
            execution_type="unplanned",
            trigger_type=TriggerType.AUTOMATIC,
            reason=reason,
            disaster_declared_at=failed_since,
        )
    except Conflict as exc:  # a failover is already under way
        logger.info("monitor %s: %s", plan.plan_id, exc.message)
        return "already active"
    if execution.status == "awaiting_approval":
        alert(plan, f"{reason}; failover #{execution.pk} waits for approval")
    return f"failover #{execution.pk} ({execution.status})"


def alert(plan: DRPlan, message: str) -> None:
    """Tell the operators: an audit entry (visible to auditors and in the admin) and a log warning."""
    logger.warning("ALERT plan %s: %s", plan.plan_id, message)
    audit.record(AuditAction.ALERT, plan, comment=message, after={"alert": message})
