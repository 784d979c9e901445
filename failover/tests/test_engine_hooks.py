"""The engine's interface to the layers above it (failover/engine/hooks.py): what it calls, when,
and that the project installs the default set at start-up."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from analytics import outcomes
from drplan import wiring
from failover import approvals, tasks
from failover.engine import hooks
from failover.engine.lease import hand_off
from failover.engine.reaper import REQUEUE_RESERVATION_SECONDS, reap
from failover.engine.runner import run_execution
from failover.tests.engine_support import make_execution

pytestmark = pytest.mark.django_db


class Recorder:
    """EngineHooks that write down what the engine asked for."""

    def __init__(self, *, expired: int = 0, fail: str = "") -> None:
        self.enqueued: list[int] = []
        self.outcomes: list[int] = []
        self.expiries = 0
        self.expired = expired
        self.fail = fail

    def hooks(self) -> hooks.EngineHooks:
        return hooks.EngineHooks(enqueue=self.enqueue, record_outcome=self.record, expire_approvals=self.expire)

    def enqueue(self, execution_id: int) -> None:
        self.enqueued.append(execution_id)

    def record(self, execution_id: int) -> None:
        self.outcomes.append(execution_id)
        if self.fail == "record":
            raise RuntimeError("analytics is down")

    def expire(self) -> int:
        self.expiries += 1
        if self.fail == "expire":
            raise RuntimeError("approvals are down")
        return self.expired


def test_the_project_installs_the_default_hooks_at_start_up():
    default = hooks.installed()
    assert default == wiring.engine_hooks()
    assert default.enqueue is tasks.enqueue_execution
    assert default.record_outcome is outcomes.record_outcome
    assert default.expire_approvals is approvals.expire_approval_requests


def test_the_coordinator_records_the_outcome_once_after_the_end():
    recorder = Recorder()
    execution = make_execution([{"key": "a"}])
    assert run_execution(execution.pk, hooks=recorder.hooks()) == "completed"
    assert recorder.outcomes == [execution.pk]
    assert recorder.enqueued == []


def test_a_failing_outcome_hook_is_logged_and_never_changes_the_result(caplog):
    recorder = Recorder(fail="record")
    execution = make_execution([{"key": "a"}])
    with caplog.at_level(logging.ERROR, logger="failover.engine.records"):
        assert run_execution(execution.pk, hooks=recorder.hooks()) == "completed"
    assert recorder.outcomes == [execution.pk]
    assert [r.getMessage() for r in caplog.records] == [f"record_outcome failed for execution {execution.pk}"]
    execution.refresh_from_db()
    assert execution.status == "completed"


def test_the_reaper_enqueues_and_expires_through_its_hooks():
    now = timezone.now()
    stale = make_execution([], status="running", coordinator="gone:1:x", lease_expires_at=now - timedelta(seconds=1))
    recorder = Recorder(expired=2)
    assert reap(now, hooks=recorder.hooks()) == [
        "expired 2 approval request(s)",
        f"execution {stale.pk} (running): lease of gone:1:x expired; re-enqueued",
    ]
    assert recorder.enqueued == [stale.pk]
    assert recorder.expiries == 1


def test_a_failing_expiry_is_reported_and_the_reaper_goes_on():
    now = timezone.now()
    stale = make_execution([], status="running", coordinator="", lease_expires_at=None)
    recorder = Recorder(fail="expire")
    assert reap(now, hooks=recorder.hooks()) == [
        "expire_approval_requests failed (see the log)",
        f"execution {stale.pk} (running): no coordinator; re-enqueued",
    ]
    assert recorder.enqueued == [stale.pk]


def test_a_hand_off_reserves_the_execution_and_enqueues_it():
    execution = make_execution([], status="running", coordinator="me:1:a", lease_expires_at=timezone.now())
    enqueued: list[int] = []
    before = timezone.now() - timedelta(milliseconds=1)  # the database's clock: SQLite's counts milliseconds
    hand_off(execution.pk, "me:1:a", enqueued.append)
    assert enqueued == [execution.pk]
    execution.refresh_from_db()
    assert execution.coordinator == ""
    assert execution.lease_expires_at >= before + timedelta(seconds=REQUEUE_RESERVATION_SECONDS)
