"""End to end, in process: trigger → approve → the real coordinator runs it → outcome recorded.

`transactional_db`: the coordinator commits, and a manual step is confirmed from another thread.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from analytics.models import DRTestResult, RTOTarget
from failover import services
from failover.engine.runner import run_execution
from failover.models import FailoverExecution, StepRun
from failover.tests.engine_factories import add_approval_levels, make_runbook
from plans.tests.factories import make_app, make_plan

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def plan(users, enqueued):
    db = make_app("db", tier=2)
    web = make_app("web", tier=1, depends_on=(db,))
    for app in (db, web):
        for category in ("failover", "test"):
            make_runbook(f"{app.slug}-{category}", application=app.slug, category=category)
        RTOTarget.objects.create(
            application=app,
            tier=app.tier,
            rto_target_seconds=600,
            rpo_target_seconds=60,
            sla_breach_threshold_seconds=900,
        )
    return make_plan("e2e-dr", status="active", applications=[db, web], rto_seconds=600, rpo_seconds=60)


def test_failover_approved_then_run_to_completion(plan, users, enqueued):
    add_approval_levels(plan, ("approver", 1))
    execution = services.start_failover(plan, actor=users["operator"], reason="drill")
    assert execution.status == "awaiting_approval" and enqueued == []
    services.decide_execution(execution, users["approver"], "approve", "go")
    assert enqueued == [execution.pk]  # enqueued once, after the commit

    assert run_execution(execution.pk) == "completed"
    execution.refresh_from_db()
    assert execution.actual_rto_seconds is not None and execution.actual_rto_seconds < 60
    order = list(
        StepRun.objects.filter(execution=execution).order_by("started_at", "id").values_list("step_key", flat=True)
    )
    assert order.index("db.check") < order.index("web.stop")  # web waited for its dependency
    assert set(StepRun.objects.filter(execution=execution).values_list("status", flat=True)) == {"succeeded"}
    targets = RTOTarget.objects.order_by("pk")
    assert [t.current_rto_seconds for t in targets] == [execution.actual_rto_seconds] * 2
    assert [t.breach_count for t in targets] == [0, 0]


def test_dr_test_with_a_manual_step_confirmed_through_the_api(plan, users, api_for):
    make_runbook(
        "web-test",
        application="web",
        category="test",
        version="1.1.0",
        steps=[
            {"id": "switch", "action": "manual", "with": {"instructions": "Flip the DNS switch"}},
            {"id": "check", "action": "noop", "needs": ["switch"]},
        ],
    )
    execution = services.start_test(plan, actor=users["operator"])
    statuses: list[str] = []

    def coordinate() -> None:
        try:
            statuses.append(run_execution(execution.pk))
        finally:
            connection.close()

    thread = threading.Thread(target=coordinate)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            step = StepRun.objects.get(execution=execution, step_key="web.switch")
            if step.status == "waiting":
                break
            time.sleep(0.05)
        assert (step.status, step.waiting_for) == ("waiting", "confirmation")
        response = api_for("operator").post(
            f"/api/v1/dr/executions/{execution.pk}/steps/web.switch/confirm", {"comment": "flipped"}, format="json"
        )
        assert response.status_code == 200, response.content
    finally:
        thread.join(30)
    assert statuses == ["completed"]
    execution.refresh_from_db()
    result = DRTestResult.objects.get(execution=execution)
    assert (result.outcome, result.plan_id, result.actual_rto_seconds) == (
        "passed",
        plan.pk,
        execution.actual_rto_seconds,
    )
    assert StepRun.objects.get(execution=execution, step_key="web.switch").confirmed_by == users["operator"]


def test_dry_run_completes_without_running_anything(plan, users):
    execution = services.start_failover(plan, actor=users["operator"], dry_run=True)
    assert run_execution(execution.pk) == "completed"
    assert set(StepRun.objects.filter(execution=execution).values_list("status", flat=True)) == {"skipped"}
    assert not DRTestResult.objects.exists()
    assert FailoverExecution.objects.get(pk=execution.pk).dry_run is True
    assert RTOTarget.objects.filter(current_rto_seconds__isnull=False).count() == 0
