"""Races: two triggers of one plan, two approvers at the same instant (threads, and real processes)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from core.exceptions import Conflict
from failover import services
from failover.models import ApprovalDecision, ExecutionEvent, FailoverExecution
from failover.tests.engine_factories import add_approval_levels, three_app_plan
from failover.tests.engine_support import ROOT, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released at the same instant; results (or exceptions) in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_two_concurrent_triggers_make_one_execution(users, enqueued):
    plan, _ = three_app_plan()
    results = race(
        lambda: services.start_failover(plan, actor=users["operator"]),
        lambda: services.start_failover(plan, actor=users["approver"]),
    )
    created = [r for r in results if isinstance(r, FailoverExecution)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(created) == 1 and len(refused) == 1, results
    assert f"already has an active failover #{created[0].pk}" in refused[0].message
    assert FailoverExecution.objects.count() == 1


@pytest.mark.parametrize("approvers", [1, 2])
def test_two_approvers_at_the_same_instant_make_one_transition(approvers, users, make_user, enqueued):
    plan, _ = three_app_plan()
    add_approval_levels(plan, ("approver", approvers))
    execution = services.start_failover(plan, actor=users["operator"])
    second = make_user("approver2", "approver")
    results = race(
        lambda: services.decide_execution(execution, users["approver"], "approve"),
        lambda: services.decide_execution(execution, second, "approve"),
    )
    execution.refresh_from_db()
    assert execution.status == "pending"
    moves = ExecutionEvent.objects.filter(execution=execution, kind="status", data__status="pending")
    assert moves.count() == 1
    assert enqueued == [execution.pk]
    if approvers == 1:  # the second approver finds it no longer awaiting approval
        assert sum(isinstance(r, Conflict) for r in results) == 1, results
        assert ApprovalDecision.objects.filter(execution=execution).count() == 1
    else:  # both decisions count; the later one completes the level
        assert not any(isinstance(r, Exception) for r in results), results
        assert ApprovalDecision.objects.filter(execution=execution).count() == 2


def test_two_processes_triggering_at_once(users):
    plan, _ = three_app_plan()
    env = subprocess_env()
    command = [sys.executable, "manage.py", "failover", "run", plan.plan_id, "--json", "--user", "operator"]
    procs = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    codes = sorted(proc.returncode for proc in procs)
    assert codes[0] == 0 and codes[1] != 0, outputs
    assert FailoverExecution.objects.count() == 1
    active = FailoverExecution.objects.get()
    assert any(f"already has an active failover #{active.pk}" in err for _, err in outputs), outputs
