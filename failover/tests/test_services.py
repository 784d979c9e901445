"""Use cases of failover.services: starting executions, parameters, approvals, control, outcome."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied
from core.models import AuditEntry, Secret
from failover import services
from failover.models import ApprovalDecision, ExecutionEvent, FailoverExecution, StepRun
from failover.tests.engine_factories import add_approval_levels, make_runbook, runbook_doc, three_app_plan
from plans.tests.factories import make_app, make_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan():
    return three_app_plan()[0]


def start(plan, users, capture, **kwargs):
    with capture(execute=True):
        return services.start_failover(plan, actor=users["operator"], reason="maintenance", **kwargs)


# --- Starting -----------------------------------------------------------------------


def test_failover_creates_a_pending_execution_with_steps_audit_and_one_enqueue(
    plan, users, enqueued, django_capture_on_commit_callbacks
):
    audits = AuditEntry.objects.count()
    execution = start(plan, users, django_capture_on_commit_callbacks, execution_type="unplanned")
    assert (execution.status, execution.execution_type, execution.triggered_by, execution.trigger_reason) == (
        "pending",
        "unplanned",
        users["operator"],
        "maintenance",
    )
    assert execution.approval_policy == [] and execution.approval_deadline is None
    assert execution.step_runs.count() == 9
    assert enqueued == [execution.pk]
    entry = AuditEntry.objects.order_by("-seq").first()
    assert AuditEntry.objects.count() == audits + 1
    assert (entry.action, entry.object_id, entry.actor_username) == ("execute", str(execution.pk), "operator")
    assert ExecutionEvent.objects.filter(execution=execution, seq=1, kind="status").exists()


@pytest.mark.parametrize("status", ["draft", "archived"])
def test_only_active_plans_fail_over(status, users, enqueued):
    plan, _ = three_app_plan(status=status)
    with pytest.raises(Conflict, match=f"plan 'shop-dr' is {status}"):
        services.start_failover(plan, actor=users["operator"])
    assert FailoverExecution.objects.count() == 0 and enqueued == []


def test_second_trigger_of_the_same_plan_conflicts(plan, users, enqueued, django_capture_on_commit_callbacks):
    first = start(plan, users, django_capture_on_commit_callbacks)
    with pytest.raises(Conflict, match=rf"plan 'shop-dr' already has an active failover #{first.pk}"):
        services.start_failback(plan, actor=users["operator"])
    with pytest.raises(Conflict, match=rf"already has an active failover #{first.pk}"):
        services.start_failover(plan, actor=users["approver"])
    assert FailoverExecution.objects.count() == 1
    # runbook runs (other than failover/failback runbooks) are not failovers: they may run alongside
    services.execute_runbook(make_runbook("side", category="maintenance"), actor=users["operator"])


def test_integrity_error_of_the_constraint_becomes_a_conflict(plan, users, enqueued, monkeypatch):
    first = services.start_failover(plan, actor=users["operator"])
    # the pre-check misses a concurrent insert; the partial unique constraint catches it
    calls = iter([None])
    real = services._active_failover
    monkeypatch.setattr(services, "_active_failover", lambda p: next(calls, real(p)))
    with pytest.raises(Conflict, match=rf"already has an active failover #{first.pk}"):
        services.start_failover(plan, actor=users["operator"])
    assert FailoverExecution.objects.count() == 1


def test_viewer_cannot_trigger(plan, users, enqueued):
    with pytest.raises(PermissionDenied, match=r"failover.run_failover"):
        services.start_failover(plan, actor=users["viewer"])
    with pytest.raises(PermissionDenied, match=r"failover.run_test"):
        services.start_test(plan, actor=users["auditor"])


def test_approval_levels_are_snapshotted_and_the_execution_waits(users, enqueued, django_capture_on_commit_callbacks):
    plan, _ = three_app_plan(approval_timeout_seconds=600)
    add_approval_levels(plan, ("approver", 2), ("admin", 1))
    execution = start(plan, users, django_capture_on_commit_callbacks)
    assert execution.status == "awaiting_approval"
    assert execution.approval_policy == [
        {"level": 1, "role": "approver", "approvers": 2},
        {"level": 2, "role": "admin", "approvers": 1},
    ]
    assert timedelta(seconds=599) < execution.approval_deadline - execution.triggered_at <= timedelta(seconds=600)
    assert enqueued == []
    # a dry run executes nothing, so it needs no go/no-go
    services.cancel(execution, users["operator"])
    dry = start(plan, users, django_capture_on_commit_callbacks, dry_run=True)
    assert (dry.status, dry.dry_run, dry.approval_policy) == ("pending", True, [])


def test_tests_use_the_test_runbooks_and_need_them(users, enqueued):
    plan, _ = three_app_plan(categories=("failover",))
    with pytest.raises(Conflict, match="plan 'shop-dr' has no test runbook"):
        services.start_test(plan, actor=users["operator"])
    for slug in ("shop-db", "shop-api", "shop-web"):
        make_runbook(f"{slug}-test", application=slug, category="test")
    add_approval_levels(plan, ("approver", 1))
    execution = services.start_test(plan, actor=users["operator"])
    assert (execution.execution_type, execution.status, execution.approval_policy) == ("test", "pending", [])
    assert set(execution.step_runs.values_list("runbook_step__version__category", flat=True)) == {"test"}


def test_failback_uses_failback_runbooks(users, enqueued):
    plan, _ = three_app_plan(categories=("failover", "failback"))
    execution = services.start_failback(plan, actor=users["operator"])
    assert execution.execution_type == "failback"
    assert set(execution.step_runs.values_list("runbook_step__version__runbook__slug", flat=True)) == {
        "shop-db-failback",
        "shop-api-failback",
        "shop-web-failback",
    }


def test_execute_runbook_needs_an_approved_version_unless_dry_run(users, enqueued):
    draft = make_runbook("solo", approved=False)
    with pytest.raises(Conflict, match=r"solo@1.0.0 is draft"):
        services.execute_runbook(draft, actor=users["operator"])
    with pytest.raises(Conflict, match="runbook 'solo' has no approved version"):
        services.execute_runbook(draft.runbook, actor=users["operator"])
    assert FailoverExecution.objects.count() == 0
    dry = services.execute_runbook(draft, actor=users["operator"], dry_run=True)
    assert (dry.execution_type, dry.dry_run, dry.runbook_version, dry.plan) == ("runbook", True, draft, None)
    approved = make_runbook("solo2", parallelism=2, category="maintenance")
    run = services.execute_runbook(approved.runbook, actor=users["operator"])
    assert (run.runbook_version, run.parallelism, run.status) == (approved, 2, "pending")
    # runbook runs do not block each other
    services.execute_runbook(approved, actor=users["operator"])


# --- Parameters ---------------------------------------------------------------------


@pytest.fixture
def parameterised(db):
    Secret.objects.create(name="db-password", ciphertext="x")
    return make_runbook(
        "params",
        category="maintenance",
        parameters={
            "host": {"type": "string"},
            "port": {"type": "integer", "default": 5432},
            "ratio": {"type": "number", "default": 0.5},
            "force": {"type": "boolean", "default": False},
            "password": {"type": "string", "secret": True},
        },
    )


def test_parameters_get_defaults_and_are_type_checked(parameterised, users, enqueued):
    run = services.execute_runbook(
        parameterised, actor=users["operator"], parameters={"host": "db2", "password": "db-password"}
    )
    assert run.parameters == {"host": "db2", "port": 5432, "ratio": 0.5, "force": False, "password": "db-password"}
    cases = [
        ({}, "parameter 'host' is required", "parameters.host"),
        ({"host": 5}, "parameter 'host' must be a string", "parameters.host"),
        ({"host": "h", "port": "80"}, "parameter 'port' must be an integer", "parameters.port"),
        ({"host": "h", "port": True}, "parameter 'port' must be an integer", "parameters.port"),
        ({"host": "h", "force": "yes"}, "parameter 'force' must be a boolean", "parameters.force"),
        ({"host": "h", "nope": 1}, "unknown parameter 'nope'", "parameters.nope"),
        ({"host": "h", "password": "hunter2-literal"}, "must be the name of a defined secret", "parameters.password"),
        (["host"], "parameters must be an object", "parameters"),
    ]
    for given, message, field in cases:
        with pytest.raises(InvalidInput, match=message) as info:
            services.execute_runbook(parameterised, actor=users["operator"], parameters=given)
        assert info.value.field == field
        assert "hunter2-literal" not in info.value.message
    assert FailoverExecution.objects.count() == 1


def test_cli_strings_are_coerced_to_the_declared_types(parameterised, users, enqueued):
    run = services.execute_runbook(
        parameterised,
        actor=users["operator"],
        parameters={"host": "h", "port": "6432", "ratio": "1.5", "force": "true", "password": "db-password"},
        coerce_strings=True,
    )
    assert (run.parameters["port"], run.parameters["ratio"], run.parameters["force"]) == (6432, 1.5, True)


# --- Approvals ----------------------------------------------------------------------


@pytest.fixture
def awaiting(users, enqueued, make_user):
    plan, _ = three_app_plan()
    add_approval_levels(plan, ("approver", 2), ("admin", 1))
    execution = services.start_failover(plan, actor=users["approver"])
    return execution


def test_levels_in_order_distinct_people_never_the_requester(
    awaiting, users, make_user, enqueued, django_capture_on_commit_callbacks
):
    second = make_user("approver2", "approver")
    with pytest.raises(PermissionDenied, match="Separation of duties: approver triggered execution"):
        services.decide_execution(awaiting, users["approver"], "approve")
    with pytest.raises(PermissionDenied, match=r"failover.approve_execution"):
        services.decide_execution(awaiting, users["operator"], "approve")
    services.decide_execution(awaiting, users["admin"], "approve", "go")  # superuser holds every role
    with pytest.raises(Conflict, match="admin already decided"):
        services.decide_execution(awaiting, users["admin"], "approve")
    # level 2 (admin role) cannot be reached before level 1 has its two approvers
    with django_capture_on_commit_callbacks(execute=True):
        services.decide_execution(awaiting, second, "approve")
    awaiting.refresh_from_db()
    assert awaiting.status == "awaiting_approval" and enqueued == []
    third = make_user("approver3", "approver")
    with pytest.raises(PermissionDenied, match=r"level 2 .* role 'admin'; approver3 is not"):
        services.decide_execution(awaiting, third, "approve")
    boss = make_user("boss", "admin")
    with django_capture_on_commit_callbacks(execute=True):
        result = services.decide_execution(awaiting, boss, "approve", "go")
    assert result.status == "pending"
    assert enqueued == [awaiting.pk]
    assert list(ApprovalDecision.objects.filter(execution=awaiting).values_list("level", "user__username")) == [
        (1, "admin"),
        (1, "approver2"),
        (2, "boss"),
    ]
    with pytest.raises(Conflict, match="is pending; only executions awaiting approval"):
        services.decide_execution(awaiting, third, "approve")


def test_rejection_needs_a_comment_and_ends_the_execution(awaiting, users, enqueued):
    with pytest.raises(InvalidInput, match="needs a comment"):
        services.decide_execution(awaiting, users["admin"], "reject", " ")
    with pytest.raises(InvalidInput, match="decision must be one of"):
        services.decide_execution(awaiting, users["admin"], "maybe")
    services.decide_execution(awaiting, users["admin"], "reject", "not during trading hours")
    awaiting.refresh_from_db()
    assert awaiting.status == "rejected"
    assert "not during trading hours" in awaiting.error
    assert awaiting.finished_at is not None
    assert enqueued == []


def test_expired_requests_fail(awaiting, users):
    FailoverExecution.objects.filter(pk=awaiting.pk).update(approval_deadline=timezone.now() - timedelta(seconds=1))
    assert services.expire_approval_requests() == 1
    awaiting.refresh_from_db()
    assert (awaiting.status, awaiting.error) == ("expired", "approval request expired")
    assert services.expire_approval_requests() == 0


# --- Steps: gates, confirmation, retry, resume -----------------------------------------


def waiting_step(execution, key, waiting_for, **fields):
    StepRun.objects.filter(execution=execution, step_key=key).update(
        status="waiting", waiting_for=waiting_for, **fields
    )
    return StepRun.objects.get(execution=execution, step_key=key)


@pytest.fixture
def running(users, enqueued):
    plan, _ = three_app_plan()
    execution = services.start_failover(plan, actor=users["approver"])
    FailoverExecution.objects.filter(pk=execution.pk).update(status="running", started_at=timezone.now())
    execution.refresh_from_db()
    return execution


def test_step_gate_needs_its_approvers(running, users, make_user):
    waiting_step(running, "shop-db.promote", "approval", approval={"role": "approver", "approvers": 2})
    with pytest.raises(PermissionDenied, match="Separation of duties"):
        services.decide_step(running, "shop-db.promote", users["approver"], "approve")
    with pytest.raises(PermissionDenied, match=r"failover.approve_execution"):
        services.decide_step(running, "shop-db.promote", users["operator"], "approve")
    services.decide_step(running, "shop-db.promote", users["admin"], "approve")
    assert StepRun.objects.get(execution=running, step_key="shop-db.promote").gate_approved_at is None
    step = services.decide_step(running, "shop-db.promote", make_user("a2", "approver"), "approve")
    assert step.gate_approved_at is not None and step.status == "waiting"
    with pytest.raises(Conflict, match="not waiting for approval"):
        services.decide_step(running, "shop-db.promote", make_user("a3", "approver"), "approve")
    with pytest.raises(NotFound, match="has no step 'nope'"):
        services.decide_step(running, "nope", users["admin"], "approve")


def test_step_gate_rejection_fails_the_step(running, users):
    waiting_step(running, "shop-db.promote", "approval", approval={"role": "approver", "approvers": 1})
    step = services.decide_step(running, "shop-db.promote", users["admin"], "reject", "replica lagging")
    assert step.status == "failed" and "replica lagging" in step.error


def test_confirm_manual_step(running, users):
    with pytest.raises(Conflict, match="not waiting for confirmation"):
        services.confirm_step(running, "shop-db.stop", users["operator"])
    waiting_step(running, "shop-db.stop", "confirmation", started_at=timezone.now())
    with pytest.raises(PermissionDenied, match=r"failover.confirm_step"):
        services.confirm_step(running, "shop-db.stop", users["viewer"])
    step = services.confirm_step(running, "shop-db.stop", users["operator"], "done, called the bank")
    assert (step.status, step.confirmed_by, step.output["comment"]) == (
        "succeeded",
        users["operator"],
        "done, called the bank",
    )
    assert step.confirmed_at is not None and step.duration_seconds is not None
    assert AuditEntry.objects.filter(action="confirm", object_id=str(step.pk)).count() == 1


def test_cancel_before_start_is_immediate(users, enqueued):
    plan, _ = three_app_plan()
    execution = services.start_failover(plan, actor=users["operator"])
    result = services.cancel(execution, users["operator"], rollback=False)
    assert result.status == "cancelled" and result.cancel_requested
    assert set(result.step_runs.values_list("status", flat=True)) == {"cancelled"}
    with pytest.raises(Conflict, match="is cancelled; it is not running"):
        services.cancel(execution, users["operator"])
    # the plan is free again
    services.start_failover(plan, actor=users["operator"])


def test_cancel_running_sets_the_flag_for_the_coordinator(running, users):
    with pytest.raises(PermissionDenied):
        services.cancel(running, users["viewer"])
    result = services.cancel(running, users["operator"], rollback=True)
    assert (result.status, result.cancel_requested, result.rollback_on_cancel) == ("running", True, True)


def test_cancel_paused_with_rollback_hands_it_to_a_coordinator(
    running, users, enqueued, django_capture_on_commit_callbacks
):
    FailoverExecution.objects.filter(pk=running.pk).update(status="paused", coordinator="w1")
    with django_capture_on_commit_callbacks(execute=True):
        result = services.cancel(running, users["operator"], rollback=True)
    assert (result.status, result.coordinator, result.rollback_on_cancel) == ("running", "", True)
    assert enqueued[-1] == running.pk


def test_resume_requeues_failed_lost_cancelled_steps_only(running, users, enqueued, django_capture_on_commit_callbacks):
    StepRun.objects.filter(execution=running, step_key="shop-db.stop").update(status="succeeded")
    StepRun.objects.filter(execution=running, step_key="shop-db.promote").update(status="failed", error="boom")
    StepRun.objects.filter(execution=running, step_key="shop-api.stop").update(status="lost")
    with pytest.raises(Conflict, match="only failed or paused executions can be resumed"):
        services.resume(running, users["operator"])
    FailoverExecution.objects.filter(pk=running.pk).update(status="failed", error="step failed", coordinator="w1")
    with django_capture_on_commit_callbacks(execute=True):
        result = services.resume(running, users["operator"])
    assert (result.status, result.error, result.coordinator, result.lease_expires_at) == ("running", "", "", None)
    statuses = dict(result.step_runs.values_list("step_key", "status"))
    assert statuses["shop-db.stop"] == "succeeded"
    assert statuses["shop-db.promote"] == "pending"
    assert statuses["shop-api.stop"] == "pending"
    assert enqueued[-1] == running.pk


def test_retry_one_step(running, users, enqueued, django_capture_on_commit_callbacks):
    with pytest.raises(Conflict, match="only failed, lost or cancelled steps can be retried"):
        services.retry_step(running, "shop-db.stop", users["operator"])
    StepRun.objects.filter(execution=running, step_key__in=["shop-db.stop", "shop-api.stop"]).update(status="failed")
    FailoverExecution.objects.filter(pk=running.pk).update(status="failed")
    with django_capture_on_commit_callbacks(execute=True):
        step = services.retry_step(running, "shop-db.stop", users["operator"])
    assert step.status == "pending"
    assert StepRun.objects.get(execution=running, step_key="shop-api.stop").status == "failed"
    running.refresh_from_db()
    assert running.status == "running" and enqueued[-1] == running.pk


def test_mark_lost_step_done(running, users):
    StepRun.objects.filter(execution=running, step_key="shop-db.stop").update(status="lost")
    with pytest.raises(InvalidInput, match="say how you verified"):
        services.mark_step_done(running, "shop-db.stop", users["operator"], "")
    step = services.mark_step_done(running, "shop-db.stop", users["operator"], "checked pg_is_in_recovery")
    assert (step.status, step.confirmed_by) == ("succeeded", users["operator"])
    with pytest.raises(Conflict, match="only lost steps"):
        services.mark_step_done(running, "shop-db.stop", users["operator"], "again")


# --- Readiness, schedules, compliance ---------------------------------------------------


def test_readiness_reports_each_check(users, make_user):
    import socket

    plan, _ = three_app_plan(status="draft")
    make_runbook("extra", application="shop-db", approved=False)
    steps = runbook_doc("x")["steps"]
    steps[0]["with"] = {"message": "{{ secrets.api_token }}"}
    steps[1] = {
        "id": "promote",
        "action": "sql",
        "with": {"dsn_secret": "db-dsn", "query": "select 1"},
        "needs": ["stop"],
    }
    steps.append({"id": "cache", "action": "redis.replication_status", "with": {"url_secret": "cache-url"}})
    make_runbook("web2", application="shop-web", steps=steps)
    Secret.objects.create(name="db-dsn", ciphertext="x")
    add_approval_levels(plan, ("approver", 2))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    strategy = plan.recovery_strategies.create(name="fo", kind="failover")
    strategy.validation_checks.create(
        name="db", check_type="connectivity", target=f"127.0.0.1:{listener.getsockname()[1]}"
    )
    strategy.validation_checks.create(name="web", check_type="connectivity", target=f"http://127.0.0.1:{closed_port}/x")
    try:
        checks = {c["name"]: c for c in services.validate_readiness(plan, requester=users["approver"])}
    finally:
        listener.close()
    assert list(checks) == [
        "plan_active",
        "runbooks_approved",
        "secrets_present",
        "targets_reachable",
        "approvers_available",
    ]
    assert checks["plan_active"] == {"name": "plan_active", "passed": False, "detail": "plan 'shop-dr' is draft"}
    assert checks["runbooks_approved"]["passed"] is False and "extra" in checks["runbooks_approved"]["detail"]
    assert checks["secrets_present"] == {
        "name": "secrets_present",
        "passed": False,
        "detail": "not defined: api_token, cache-url",
    }
    assert checks["targets_reachable"]["passed"] is False
    assert f"web (127.0.0.1:{closed_port})" in checks["targets_reachable"]["detail"]
    assert "db (" not in checks["targets_reachable"]["detail"]
    # approvers: admin (superuser) only, the requester excluded → 1 of 2
    assert checks["approvers_available"] == {
        "name": "approvers_available",
        "passed": False,
        "detail": "level 1 needs 2 x 'approver', 1 available",
    }
    make_user("approver2", "approver")
    checks = {c["name"]: c for c in services.validate_readiness(plan, requester=users["approver"])}
    assert checks["approvers_available"]["passed"] is True


def test_readiness_of_a_ready_plan_passes(users):
    plan, _ = three_app_plan()
    checks = services.validate_readiness(plan)
    assert all(c["passed"] for c in checks), checks


def test_schedule_test(users):
    from django_q.models import Schedule

    plan, _ = three_app_plan(categories=("test",))
    with pytest.raises(InvalidInput, match="either cron or frequency"):
        services.schedule_test(plan, actor=users["operator"])
    with pytest.raises(InvalidInput, match="not a valid cron"):
        services.schedule_test(plan, cron="61 * * * *", actor=users["operator"])
    with pytest.raises(InvalidInput, match="frequency must be one of"):
        services.schedule_test(plan, frequency="hourly", actor=users["operator"])
    schedule = services.schedule_test(plan, frequency="weekly", actor=users["operator"])
    assert (schedule.name, schedule.func, schedule.args, schedule.schedule_type) == (
        "dr-test:shop-dr",
        "failover.services.run_scheduled_test",
        repr(plan.pk),
        "W",
    )
    again = services.schedule_test(plan, cron="0 3 * * 1", actor=users["operator"])
    assert again.pk == schedule.pk and again.schedule_type == "C" and again.next_run > timezone.now()
    assert Schedule.objects.count() == 1
    no_tests = make_plan("bare", status="active", applications=[make_app("bare-app")])
    with pytest.raises(Conflict, match="plan 'bare' has no test runbook"):
        services.schedule_test(no_tests, frequency="daily", actor=users["operator"])


def test_scheduled_test_runs_the_plan_test(users, enqueued):
    plan, _ = three_app_plan(categories=("test",))
    execution_id = services.run_scheduled_test(plan.pk)
    execution = FailoverExecution.objects.get(pk=execution_id)
    assert (execution.execution_type, execution.trigger_type, execution.triggered_by) == ("test", "scheduled", None)
    assert services.run_scheduled_test(10**9) is None
