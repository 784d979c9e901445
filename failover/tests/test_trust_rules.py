"""Issue 8's reproductions for executions: go/no-go approvals cannot be bypassed (an expired request, a
resume, a retry, a standalone failover runbook), and the times an RTO is measured from are validated.

Each test failed on the code before the fix; each asserts that a refused request changed nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditEntry
from failover import console, services
from failover.engine.runner import run_execution
from failover.models import ApprovalDecision, FailoverExecution, StepRun
from failover.tests.engine_factories import add_approval_levels, make_runbook, three_app_plan
from failover.tests.engine_support import make_execution, messages

API = "/api/v1/dr"


def snapshot() -> tuple:
    return (
        list(FailoverExecution.objects.order_by("pk").values_list("pk", "status", "error")),
        list(StepRun.objects.order_by("pk").values_list("pk", "status", "attempts")),
        ApprovalDecision.objects.count(),
        AuditEntry.objects.count(),
    )


@pytest.fixture
def gated(users, enqueued):
    """A failover of a plan with one go/no-go level, triggered by the operator, awaiting approval."""
    plan, _ = three_app_plan(approval_timeout_seconds=600)
    add_approval_levels(plan, ("approver", 1))
    return services.start_failover(plan, actor=users["operator"], reason="maintenance")


@pytest.mark.django_db
def test_an_expired_approval_request_ends_expired_and_can_never_run(gated, users, api_for, enqueued):
    FailoverExecution.objects.filter(pk=gated.pk).update(approval_deadline=timezone.now() - timedelta(seconds=1))
    assert services.expire_approval_requests() == 1
    gated.refresh_from_db()
    assert (gated.status, gated.error) == ("expired", "approval request expired")
    assert gated.finished_at is not None

    # The operator who triggered it tries every door: resume, retry a step, approve it themselves.
    before = snapshot()
    operator = api_for("operator")
    response = operator.post(f"{API}/executions/{gated.pk}/resume", {}, format="json")
    assert response.status_code == 409, response.content
    assert "is expired; only failed or paused executions can be resumed" in response.json()["error"]["message"]
    step = StepRun.objects.filter(execution=gated).first()
    assert operator.post(f"{API}/executions/{gated.pk}/steps/{step.step_key}/retry", {}, format="json").status_code in (
        409,
    )
    assert api_for("approver").post(f"{API}/executions/{gated.pk}/approve", {}, format="json").status_code == 409
    assert snapshot() == before
    assert enqueued == []
    # ... and the console offers no way either.
    assert console.execution_actions(users["operator"], gated, [], None) == []
    # A new trigger asks for the approval again: the plan is free.
    again = services.start_failover(gated.plan, actor=users["operator"])
    assert again.status == "awaiting_approval"


@pytest.mark.django_db
def test_no_execution_moves_to_running_while_a_go_no_go_level_is_outstanding(gated, users, enqueued):
    # However it came to be FAILED or PAUSED without its approval (a bug, a hand-edited row), it stays put.
    for status in ("failed", "paused"):
        FailoverExecution.objects.filter(pk=gated.pk).update(status=status)
        gated.refresh_from_db()
        before = snapshot()
        with pytest.raises(services.Conflict, match=r"has not been approved: level 1 needs 1 approval by role"):
            services.resume(gated, users["operator"])
        step = StepRun.objects.filter(execution=gated).first()
        StepRun.objects.filter(pk=step.pk).update(status="failed")
        with pytest.raises(services.Conflict, match="has not been approved"):
            services.retry_step(gated, step.step_key, users["operator"])
        StepRun.objects.filter(pk=step.pk).update(status="pending")
        assert snapshot() == before
        assert console.execution_actions(users["operator"], gated, [], None) == ["cancel"] * (status == "paused")
    assert enqueued == []


@pytest.mark.django_db(transaction=True)
def test_a_coordinator_refuses_to_start_an_unapproved_execution():
    policy = [{"level": 1, "role": "approver", "approvers": 1}]
    execution = make_execution([{"key": "promote", "action": "noop"}], approval_policy=policy)
    assert run_execution(execution.pk) == "failed"
    execution.refresh_from_db()
    assert "has not been approved: level 1 needs 1 approval by role 'approver'" in execution.error
    assert execution.started_at is None
    assert StepRun.objects.get(execution=execution).attempts == 0


@pytest.mark.django_db
@pytest.mark.parametrize("category", ["failover", "failback"])
def test_failover_and_failback_runbooks_run_only_through_their_plan(category, users, api_for, enqueued):
    plan, _ = three_app_plan(categories=("failover", "failback"))
    add_approval_levels(plan, ("approver", 1), ("admin", 1))
    before = snapshot()
    response = api_for("operator").post(f"{API}/runbooks/shop-db-{category}/execute", {}, format="json")
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "use_plan_failover"
    assert f"run it through POST /api/v1/dr/{category} of plan 'shop-dr'" in error["message"]
    assert snapshot() == before and enqueued == []
    # a dry run executes nothing and may take it on its own
    dry = api_for("operator").post(f"{API}/runbooks/shop-db-{category}/execute", {"dry_run": True}, format="json")
    assert dry.status_code == 201, dry.content
    # through the plan, the go/no-go applies
    through_plan = api_for("operator").post(f"{API}/{category}", {"plan": "shop-dr"}, format="json")
    assert through_plan.status_code == 201 and through_plan.json()["status"] == "awaiting_approval"


@pytest.mark.django_db
def test_other_runbooks_still_run_on_their_own(users, enqueued):
    version = make_runbook("rotate-logs", category="maintenance")
    execution = services.execute_runbook(version.runbook, actor=users["operator"])
    assert (execution.status, execution.approval_policy) == ("pending", [])


@pytest.mark.django_db
def test_disaster_declared_at_is_checked_against_the_trigger_time(users, api_for, enqueued):
    three_app_plan()
    client = api_for("operator")
    now = timezone.now()
    before = snapshot()
    cases = [
        (now + timedelta(minutes=5), "is after the trigger time"),
        (now - timedelta(days=8), "is more than 7 days before the trigger time"),
    ]
    for declared, message in cases:
        response = client.post(
            f"{API}/failover",
            {"plan": "shop-dr", "type": "unplanned", "disaster_declared_at": declared.isoformat()},
            format="json",
        )
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert list(error["fields"]) == ["disaster_declared_at"]
        assert message in error["message"]
    assert snapshot() == before
    declared = now - timedelta(minutes=10)
    response = client.post(
        f"{API}/failover",
        {"plan": "shop-dr", "type": "unplanned", "disaster_declared_at": declared.isoformat()},
        format="json",
    )
    assert response.status_code == 201
    assert FailoverExecution.objects.get(pk=response.json()["id"]).disaster_declared_at == declared


@pytest.mark.django_db(transaction=True)
def test_a_recovery_before_its_start_records_no_rto_rather_than_zero():
    # Written behind the service's back (e.g. clocks of two machines disagreeing).
    execution = make_execution(
        [{"key": "promote", "action": "noop"}], disaster_declared_at=timezone.now() + timedelta(hours=1)
    )
    assert run_execution(execution.pk) == "completed"
    execution.refresh_from_db()
    assert execution.actual_rto_seconds is None
    assert any(m.startswith("RTO not measured: recovery at") for m in messages(execution))
