"""Failure detection: a failure must last the plan's detection window, then the failover mode
decides: automatic starts an unplanned failover, semi-automatic starts one that waits for
approval, manual only alerts. One outage, one reaction."""

from __future__ import annotations

import time

import pytest

from core.models import AuditEntry
from failover.models import FailoverExecution
from failover.monitoring import PlanMonitor
from failover.tests.engine_factories import three_app_plan

pytestmark = pytest.mark.django_db


class Switch:
    """A probe whose answer the test sets: the stand-in for the monitored system."""

    def __init__(self) -> None:
        self.healthy = True

    def __call__(self) -> tuple[bool, str]:
        return self.healthy, "primary answers" if self.healthy else "primary 127.0.0.1:5432 refuses connections"


def _watch(mode: str, window: float = 0.2) -> tuple[PlanMonitor, Switch]:
    plan, _ = three_app_plan(failover_mode=mode)
    switch = Switch()
    return PlanMonitor(plan.plan_id, switch, window_seconds=window), switch


def test_a_short_blip_shorter_than_the_window_does_nothing(enqueued):
    monitor, switch = _watch("automatic", window=5)
    switch.healthy = False
    assert monitor.observe() is None
    switch.healthy = True
    assert monitor.observe() is None
    assert not FailoverExecution.objects.exists()


def test_automatic_mode_starts_one_unplanned_failover_after_the_window(enqueued):
    monitor, switch = _watch("automatic")
    switch.healthy = False
    assert monitor.observe() is None  # first failure: the window starts
    time.sleep(0.25)
    action = monitor.observe()
    execution = FailoverExecution.objects.get()
    assert action == f"failover #{execution.pk} (pending)"
    assert (execution.execution_type, execution.trigger_type) == ("unplanned", "automatic")
    assert "refuses connections" in execution.trigger_reason
    assert execution.disaster_declared_at is not None
    assert execution.disaster_declared_at < execution.triggered_at
    assert monitor.observe() is None  # same outage: no second failover
    assert FailoverExecution.objects.count() == 1


def test_semi_automatic_mode_starts_a_failover_that_waits_for_approval_and_alerts(enqueued):
    monitor, switch = _watch("semi_automatic")
    switch.healthy = False
    monitor.observe()
    time.sleep(0.25)
    monitor.observe()
    execution = FailoverExecution.objects.get()
    assert execution.status == "awaiting_approval"
    assert execution.approval_policy == [{"level": 1, "role": "approver", "approvers": 1}]
    assert AuditEntry.objects.filter(action="alert", comment__contains="waits for approval").exists()


def test_manual_mode_only_alerts(enqueued):
    monitor, switch = _watch("manual")
    switch.healthy = False
    monitor.observe()
    time.sleep(0.25)
    assert monitor.observe() == "alerted"
    assert not FailoverExecution.objects.exists()
    alert = AuditEntry.objects.get(action="alert")
    assert "refuses connections" in alert.comment
