"""The engine's endpoints: authorization matrix (nothing changes on denial), bad input, happy paths."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone
from django_q.models import Schedule

from analytics import outcomes
from analytics.models import DRTestResult
from core.models import AuditEntry, Secret
from failover import services
from failover.models import ApprovalDecision, FailoverExecution, StepRun
from failover.tests.engine_factories import add_approval_levels, make_runbook
from plans.tests.factories import make_app, make_plan

pytestmark = pytest.mark.django_db
API = "/api/v1/dr"


@dataclass
class World:
    plan: Any
    runbook: Any
    users: dict


@pytest.fixture
def world(users, enqueued) -> World:
    app = make_app("db", tier=1)
    for category in ("failover", "failback", "test"):
        version = make_runbook(f"db-{category}", application="db", category=category)
    plan = make_plan("db-dr", status="active", applications=[app])
    return World(plan, version.runbook, users)


def running(world: World, *, status: str = "running", step_status: str = "pending", **step_fields: Any):
    """A test execution of the plan (any operator may control it), moved to `status`, its first step as given."""
    execution = services.start_test(world.plan, actor=world.users["operator"])
    FailoverExecution.objects.filter(pk=execution.pk).update(status=status, started_at=timezone.now())
    StepRun.objects.filter(execution=execution, step_key="db.stop").update(status=step_status, **step_fields)
    return execution


def awaiting(world: World):
    add_approval_levels(world.plan, ("approver", 1))
    return services.start_failover(world.plan, actor=world.users["operator"])


def step_url(world: World, verb: str, **step: Any) -> str:
    """The URL of `verb` on step db.stop of a running test execution whose first step is as given."""
    return f"{API}/executions/{running(world, **step).pk}/steps/db.stop/{verb}"


def state() -> tuple:
    return (
        list(FailoverExecution.objects.order_by("pk").values_list("pk", "status", "cancel_requested")),
        list(StepRun.objects.order_by("pk").values_list("pk", "status", "gate_approved_at")),
        ApprovalDecision.objects.count(),
        AuditEntry.objects.count(),
        Schedule.objects.count(),
    )


# (name, build(world) -> (url, body), roles allowed, success status)
RUNNERS = {"operator", "approver", "admin"}
APPROVERS = {"approver", "admin"}
Endpoint = tuple[str, Callable[[World], tuple[str, dict]], set[str], int]
ENDPOINTS: list[Endpoint] = [
    ("failover", lambda w: (f"{API}/failover", {"plan": "db-dr"}), RUNNERS, 201),
    ("failover-test", lambda w: (f"{API}/failover", {"plan": "db-dr", "type": "test"}), RUNNERS, 201),
    ("failback", lambda w: (f"{API}/failback", {"plan": w.plan.pk}), RUNNERS, 201),
    ("test", lambda w: (f"{API}/test", {"plan": "db-dr"}), RUNNERS, 201),
    ("validate", lambda w: (f"{API}/failover/validate", {"plan": "db-dr"}), RUNNERS, 200),
    ("schedule", lambda w: (f"{API}/test/schedule", {"plan": "db-dr", "frequency": "weekly"}), RUNNERS, 201),
    ("runbook-execute", lambda w: (f"{API}/runbooks/{w.runbook.slug}/execute", {}), RUNNERS, 201),
    (
        "failover-cancel",
        lambda w: (f"{API}/failover/cancel", {"execution": running(w).pk, "rollback": True}),
        RUNNERS,
        200,
    ),
    ("approve", lambda w: (f"{API}/executions/{awaiting(w).pk}/approve", {"comment": "go"}), APPROVERS, 200),
    ("reject", lambda w: (f"{API}/executions/{awaiting(w).pk}/reject", {"comment": "no"}), APPROVERS, 200),
    ("cancel", lambda w: (f"{API}/executions/{running(w).pk}/cancel", {}), RUNNERS, 200),
    ("resume", lambda w: (f"{API}/executions/{running(w, status='failed').pk}/resume", {}), RUNNERS, 200),
    (
        "confirm",
        lambda w: (step_url(w, "confirm", step_status="waiting", waiting_for="confirmation"), {"comment": "done"}),
        RUNNERS,
        200,
    ),
    (
        "step-approve",
        lambda w: (
            step_url(w, "approve", step_status="waiting", waiting_for="approval", approval={"role": "approver"}),
            {},
        ),
        APPROVERS,
        200,
    ),
    (
        "step-reject",
        lambda w: (
            step_url(w, "reject", step_status="waiting", waiting_for="approval", approval={"role": "approver"}),
            {"comment": "not now"},
        ),
        APPROVERS,
        200,
    ),
    (
        "retry",
        lambda w: (step_url(w, "retry", status="failed", step_status="failed"), {}),
        RUNNERS,
        200,
    ),
    (
        "mark-done",
        lambda w: (step_url(w, "mark-done", status="paused", step_status="lost"), {"comment": "checked by hand"}),
        RUNNERS,
        200,
    ),
]
ROLES = [None, "viewer", "operator", "approver", "auditor", "admin"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_authorization_matrix(endpoint: Endpoint, role: str | None, world: World, api_for):
    name, build, allowed, success = endpoint
    url, body = build(world)
    before = state()
    response = api_for(role).post(url, body, format="json")
    if role in allowed:
        assert response.status_code == success, response.content
        if name != "validate":
            assert state() != before
        return
    assert response.status_code == (401 if role is None else 403), response.content
    assert response.json()["error"]["code"] in {"not_authenticated", "permission_denied"}
    assert state() == before, "a denied request changed something"


def test_reads_need_view_permission(world, api_for):
    for url in (
        f"{API}/failover/status",
        f"{API}/test/results",
        f"{API}/test/compliance",
        f"{API}/runbooks/db-test/history",
    ):
        assert api_for(None).get(url).status_code == 401
        assert api_for("viewer").get(url).status_code == 200, url


# --- Bad input ---------------------------------------------------------------------------

BAD_INPUT = [
    ("failover", {}, 400, "plan"),
    ("failover", {"plan": "nope"}, 400, "plan"),
    ("failover", {"plan": "db-dr", "type": "sideways"}, 400, "type"),
    ("failover", {"plan": "db-dr", "parameters": ["x"]}, 400, "parameters"),
    ("failover", {"plan": "db-dr", "parameters": {"undeclared": 1}}, 400, "parameters.undeclared"),
    ("failover", {"plan": "db-dr", "parallelism": 0}, 400, "parallelism"),
    ("failover", {"plan": "db-dr", "dry_run": "perhaps"}, 400, "dry_run"),
    ("failover", {"plan": "db-dr", "disaster_declared_at": "yesterday"}, 400, "disaster_declared_at"),
    ("failback", {"plan": 999999}, 400, "plan"),
    ("test", {"plan": ""}, 400, "plan"),
    ("failover/cancel", {"execution": "x"}, 400, "execution"),
    ("failover/cancel", {"execution": 999999}, 400, "execution"),
    ("failover/validate", {}, 400, "plan"),
    ("test/schedule", {"plan": "db-dr"}, 400, "cron"),
    ("test/schedule", {"plan": "db-dr", "cron": "every day"}, 400, "cron"),
    ("test/schedule", {"plan": "db-dr", "frequency": "hourly"}, 400, "frequency"),
    ("test/schedule", {"plan": "db-dr", "cron": "0 3 * * *", "frequency": "daily"}, 400, "frequency"),
]


@pytest.mark.parametrize(("path", "body", "code", "field"), BAD_INPUT)
def test_bad_input_is_a_4xx_naming_the_field_and_stores_nothing(path, body, code, field, world, api_for):
    before = state()
    response = api_for("approver").post(f"{API}/{path}", body, format="json")
    assert response.status_code == code, response.content
    error = response.json()["error"]
    assert field in error["fields"], error
    assert state() == before


def test_malformed_json_is_rejected(world, api_for):
    response = api_for("operator").generic("POST", f"{API}/failover", '{"plan": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_bad_execution_and_step_references(world, api_for):
    client = api_for("admin")
    before = state()
    assert client.post(f"{API}/executions/999999/cancel", {}, format="json").status_code == 404
    execution = running(world, status="failed", step_status="failed")
    before = state()
    response = client.post(f"{API}/executions/{execution.pk}/steps/nope/retry", {}, format="json")
    assert response.status_code == 404 and response.json()["error"]["fields"] == {
        "step_key": [f"execution #{execution.pk} has no step 'nope'"]
    }
    response = client.post(f"{API}/executions/{execution.pk}/reject", {"comment": "no"}, format="json")
    assert response.status_code == 409  # not awaiting approval
    response = client.post(f"{API}/executions/{execution.pk}/steps/db.stop/mark-done", {}, format="json")
    assert response.status_code == 400 and "comment" in response.json()["error"]["fields"]
    assert state() == before


def test_rejecting_without_a_comment_is_refused(world, api_for):
    execution = awaiting(world)
    before = state()
    response = api_for("approver").post(f"{API}/executions/{execution.pk}/reject", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"comment": ["a rejection needs a comment explaining why"]}
    assert state() == before


def test_inactive_plan_and_missing_test_runbooks(world, api_for):
    plan = make_plan("draft-dr", applications=[world.plan.applications.get()])
    response = api_for("operator").post(f"{API}/failover", {"plan": "draft-dr"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        f"plan {plan.plan_id!r} is draft; only active plans can run failovers, failbacks and tests"
    )
    bare = make_plan("bare-dr", status="active", applications=[make_app("lonely")])
    response = api_for("operator").post(f"{API}/test", {"plan": bare.plan_id}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["message"] == "plan 'bare-dr' has no test runbook for any of its applications"
    assert FailoverExecution.objects.count() == 0


# --- Behaviour ---------------------------------------------------------------------------


def test_second_failover_gets_409_naming_the_active_one(world, api_for):
    client = api_for("operator")
    first = client.post(f"{API}/failover", {"plan": "db-dr", "reason": "drill"}, format="json")
    assert first.status_code == 201
    body = first.json()
    assert (body["status"], body["execution_type"], body["trigger_reason"], body["trigger_type"]) == (
        "pending",
        "planned",
        "drill",
        "api",
    )
    assert [s["step_key"] for s in body["step_runs"]] == ["db.stop", "db.promote", "db.check"]
    before = state()
    second = api_for("approver").post(f"{API}/failback", {"plan": "db-dr"}, format="json")
    assert second.status_code == 409
    assert second.json()["error"] == {
        "code": "already_active",
        "message": f"plan 'db-dr' already has an active failover #{body['id']} (planned, pending)",
        "fields": {},
    }
    assert state() == before


def test_status_lists_active_executions_or_one(world, api_for):
    active = running(world)
    done = running(world, status="completed")
    client = api_for("viewer")
    body = client.get(f"{API}/failover/status").json()
    assert body["count"] == 1 and [e["id"] for e in body["executions"]] == [active.pk]
    assert [s["step_key"] for s in body["executions"][0]["step_runs"]] == ["db.stop", "db.promote", "db.check"]
    one = client.get(f"{API}/failover/status?id={done.pk}").json()
    assert [e["id"] for e in one["executions"]] == [done.pk]
    assert client.get(f"{API}/failover/status?id=999999").status_code == 404
    assert client.get(f"{API}/failover/status?id=abc").status_code == 400


def test_approve_through_the_api(world, api_for, django_capture_on_commit_callbacks, enqueued):
    execution = awaiting(world)
    assert api_for("operator").post(f"{API}/executions/{execution.pk}/approve", {}, format="json").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        response = api_for("approver").post(
            f"{API}/executions/{execution.pk}/approve", {"comment": "go"}, format="json"
        )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "pending"
    assert body["approval_policy"] == [{"level": 1, "role": "approver", "approvers": 1}]
    assert [(d["user"], d["decision"], d["comment"], d["level"]) for d in body["approval_decisions"]] == [
        ("approver", "approve", "go", 1)
    ]
    assert enqueued == [execution.pk]


def test_requester_cannot_approve_their_own_failover(world, api_for):
    add_approval_levels(world.plan, ("approver", 1))
    created = api_for("approver").post(f"{API}/failover", {"plan": "db-dr"}, format="json").json()
    before = state()
    response = api_for("approver").post(f"{API}/executions/{created['id']}/approve", {}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["message"].startswith("Separation of duties: approver triggered execution")
    assert state() == before


def test_confirm_shows_instructions_and_who_confirmed(world, api_for):
    execution = running(world, step_status="waiting", waiting_for="confirmation")
    StepRun.objects.filter(execution=execution, step_key="db.stop").update(
        action="manual", params={"instructions": "Flip the DNS switch"}
    )
    detail = api_for("viewer").get(f"{API}/executions/{execution.pk}").json()
    step = next(s for s in detail["step_runs"] if s["step_key"] == "db.stop")
    assert (step["instructions"], step["waiting_for"]) == ("Flip the DNS switch", "confirmation")
    response = api_for("operator").post(
        f"{API}/executions/{execution.pk}/steps/db.stop/confirm", {"comment": "flipped"}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["confirmed_by"]) == ("succeeded", "operator")


def test_secret_parameters_are_shown_as_names_only(world, api_for):
    Secret.objects.create(name="db-password", ciphertext="gAAAA-not-a-value")
    make_runbook("with-secret", category="maintenance", parameters={"password": {"type": "string", "secret": True}})
    client = api_for("operator")
    response = client.post(
        f"{API}/runbooks/with-secret/execute", {"parameters": {"password": "db-password"}}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["parameters"] == {"password": "db-password"}
    assert "gAAAA" not in response.content.decode()
    literal = client.post(
        f"{API}/runbooks/with-secret/execute", {"parameters": {"password": "s3cr3t-typed-in"}}, format="json"
    )
    assert literal.status_code == 400
    assert "s3cr3t-typed-in" not in literal.content.decode()


def test_runbook_execute_and_history(world, api_for):
    draft = make_runbook("drafty", approved=False)
    client = api_for("operator")
    refused = client.post(f"{API}/runbooks/drafty/execute", {"version": "1.0.0"}, format="json")
    assert refused.status_code == 409
    assert client.post(f"{API}/runbooks/drafty/execute", {"version": "9.9.9"}, format="json").status_code == 404
    dry = client.post(f"{API}/runbooks/drafty/execute", {"dry_run": True}, format="json")
    assert dry.status_code == 201 and dry.json()["runbook"] == str(draft) and dry.json()["dry_run"] is True
    history = client.get(f"{API}/runbooks/drafty/history").json()
    assert [e["id"] for e in history["results"]] == [dry.json()["id"]]


def test_validate_reports_checks(world, api_for):
    response = api_for("operator").post(f"{API}/failover/validate", {"plan": "db-dr"}, format="json")
    body = response.json()
    assert body["plan"] == "db-dr" and body["ready"] is True
    assert [c["name"] for c in body["checks"]] == [
        "plan_active",
        "runbooks_approved",
        "secrets_present",
        "targets_reachable",
        "approvers_available",
    ]


def test_test_results_schedule_and_compliance(world, api_for):
    execution = running(world, status="completed")
    FailoverExecution.objects.filter(pk=execution.pk).update(actual_rto_seconds=10.0)
    outcomes.record_outcome(execution.pk)
    client = api_for("viewer")
    results = client.get(f"{API}/test/results?plan=db-dr").json()
    assert results["count"] == 1
    assert results["results"][0]["test_result"]["outcome"] == "passed"
    assert client.get(f"{API}/test/results?plan=other").json()["count"] == 0
    assert DRTestResult.objects.get().execution_id == execution.pk
    scheduled = api_for("operator").post(f"{API}/test/schedule", {"plan": "db-dr", "cron": "0 3 * * 1"}, format="json")
    assert scheduled.status_code == 201
    assert (scheduled.json()["schedule_type"], scheduled.json()["cron"]) == ("C", "0 3 * * 1")
    compliance = client.get(f"{API}/test/compliance").json()
    row = next(r for r in compliance["plans"] if r["plan_id"] == "db-dr")
    assert (row["done"], row["passed"]) == (1, 1)
