"""The execution console page: who may see it, which action buttons each role gets, what it renders
for the live client (state up to last_seq), and that a forged action by a viewer changes nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client

from core.models import AuditEntry
from failover.engine.events import emit
from failover.models import ExecutionEvent, FailoverExecution, StepRun
from failover.tests.engine_support import make_execution
from plans.tests.factories import make_plan

pytestmark = pytest.mark.django_db

APPROVAL_POLICY = [{"level": 1, "role": "approver", "approvers": 1}]


def client_for(user: User | None, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    if user is not None:
        client.force_login(user)
    return client


def url(execution: FailoverExecution) -> str:
    return f"/console/executions/{execution.pk}/"


def actions_in(html: str) -> list[tuple[str, str, str]]:
    """(scope, step key or "", action) of every action button on the page."""
    found = []
    for tag in re.findall(r"<button [^>]*data-action=[^>]*>", html):
        scope = re.search(r'data-scope="([^"]+)"', tag).group(1)
        step = re.search(r'data-step="([^"]*)"', tag)
        found.append((scope, step.group(1) if step else "", re.search(r'data-action="([^"]+)"', tag).group(1)))
    return sorted(found)


@pytest.fixture
def paused_run(users: dict[str, User]) -> FailoverExecution:
    """A paused runbook run: one step done, one failed, one manual step waiting for confirmation."""
    execution = make_execution(
        [
            {"key": "check", "status": "succeeded", "duration_seconds": 3},
            {"key": "promote", "needs": ["check"], "status": "failed", "error": "exit 1"},
            {"key": "call-dba", "action": "manual", "needs": ["check"], "status": "waiting"},
        ],
        status="paused",
        triggered_by=users["operator"],
    )
    StepRun.objects.filter(execution=execution, step_key="call-dba").update(waiting_for="confirmation")
    return execution


@pytest.fixture
def awaiting(users: dict[str, User]) -> FailoverExecution:
    plan = make_plan(rto_seconds=600, downtime_cost_per_hour=Decimal("7200"))
    return make_execution(
        [{"key": "promote"}],
        plan=plan,
        execution_type="planned",
        status="awaiting_approval",
        approval_policy=APPROVAL_POLICY,
        triggered_by=users["operator"],
    )


def test_anonymous_is_sent_to_sign_in(paused_run: FailoverExecution) -> None:
    response = Client().get(url(paused_run))
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={url(paused_run)}"


def test_a_user_without_the_view_permission_gets_403(
    make_user: Callable[..., User], paused_run: FailoverExecution
) -> None:
    nobody = make_user("nobody")
    assert client_for(nobody).get(url(paused_run)).status_code == 403
    assert client_for(nobody).get(url(paused_run) + "state/").status_code == 403


def test_viewer_sees_the_console_without_any_action(users: dict[str, User], paused_run: FailoverExecution) -> None:
    response = client_for(users["viewer"]).get(url(paused_run))
    assert response.status_code == 200
    html = response.content.decode()
    assert actions_in(html) == []
    assert "No action on the execution is available to you now." in html
    # status as text, not colour alone
    assert 'data-step-key="promote"' in html
    assert "Failed" in html and "Waiting (manual or approval)" in html
    state = client_for(users["viewer"]).get(url(paused_run) + "state/").json()
    assert state["actions"] == []
    assert all(step["actions"] == [] for step in state["steps"])


RUNNING_ACTIONS = [
    ("execution", "", "cancel"),
    ("execution", "", "resume"),
    ("step", "call-dba", "confirm"),
    ("step", "promote", "retry"),
]
DECIDING = [("execution", "", "approve"), ("execution", "", "cancel"), ("execution", "", "reject")]

# The action buttons of each role, on a paused run and on a failover waiting for approval (both triggered by the
# operator). The page shows only what the server would allow; the server checks again (test_api_engine.py).
BUTTONS = {
    "viewer": {"paused": [], "awaiting": []},
    "operator": {"paused": RUNNING_ACTIONS, "awaiting": [("execution", "", "cancel")]},  # never its own approval
    "approver": {"paused": RUNNING_ACTIONS, "awaiting": DECIDING},
    "auditor": {"paused": [], "awaiting": []},
    "admin": {"paused": RUNNING_ACTIONS, "awaiting": DECIDING},
}


@pytest.mark.parametrize("role", list(BUTTONS))
def test_action_buttons_per_role(
    users: dict[str, User], paused_run: FailoverExecution, awaiting: FailoverExecution, role: str
) -> None:
    for state, execution in (("paused", paused_run), ("awaiting", awaiting)):
        client = client_for(users[role])
        html = client.get(url(execution)).content.decode()
        assert actions_in(html) == BUTTONS[role][state], f"{role} on the {state} execution"
        refreshed = client.get(url(execution) + "state/").json()  # the periodic refresh offers the same
        offered = [("execution", "", a["name"]) for a in refreshed["actions"]] + [
            ("step", step["key"], a["name"]) for step in refreshed["steps"] for a in step["actions"]
        ]
        assert sorted(offered) == BUTTONS[role][state], f"{role} on the {state} execution (state/)"


def test_approver_who_triggered_or_already_decided_gets_no_approve(
    users: dict[str, User], awaiting: FailoverExecution
) -> None:
    FailoverExecution.objects.filter(pk=awaiting.pk).update(triggered_by=users["approver"])
    html = client_for(users["approver"]).get(url(awaiting)).content.decode()
    assert ("execution", "", "approve") not in actions_in(html)


def test_step_gate_buttons_for_a_holder_of_the_gate_role(users: dict[str, User]) -> None:
    execution = make_execution(
        [{"key": "cutover", "status": "waiting", "approval": {"role": "approver", "approvers": 1}}],
        status="running",
        triggered_by=users["operator"],
    )
    StepRun.objects.filter(execution=execution).update(waiting_for="approval")
    assert ("step", "cutover", "approve") in actions_in(
        client_for(users["approver"]).get(url(execution)).content.decode()
    )
    assert ("step", "cutover", "approve") not in actions_in(
        client_for(users["operator"]).get(url(execution)).content.decode()
    )


def test_page_renders_state_up_to_last_seq_for_the_live_client(
    users: dict[str, User], awaiting: FailoverExecution
) -> None:
    step = StepRun.objects.get(execution=awaiting)
    emit(awaiting.pk, ExecutionEvent.Kind.LOG, "first line", {"step": "promote"}, step_run_id=step.pk)
    emit(awaiting.pk, ExecutionEvent.Kind.STATUS, "execution awaiting approval", {"status": "awaiting_approval"})
    response = client_for(users["viewer"]).get(url(awaiting))
    html = response.content.decode()
    config = json.loads(re.search(r'id="console-config" type="application/json">(.*?)</script>', html).group(1))
    assert config["last_seq"] == 2
    assert config["ws_path"] == f"/ws/executions/{awaiting.pk}/"
    assert config["api_base"] == f"/api/v1/dr/executions/{awaiting.pk}/"
    assert '<span class="line" data-seq="1">first line' in html
    assert "execution awaiting approval" in html  # activity
    assert 'role="log"' in html and 'aria-live="polite"' in html
    # RTO clock and cost meter for a plan with a target and a cost
    assert config["state"]["clock"]["target_seconds"] == 600
    assert config["state"]["clock"]["cost_per_hour"] == "7200.00"
    assert config["state"]["clock"]["downtime_applies"] is True
    assert "csrftoken" in response.cookies


def test_console_warns_when_the_projection_breaches_the_rto(users: dict[str, User]) -> None:
    plan = make_plan(rto_seconds=60)
    execution = make_execution(
        [
            {"key": "a", "estimated_duration_seconds": 50},
            {"key": "b", "needs": ["a"], "estimated_duration_seconds": 50},
        ],
        plan=plan,
        execution_type="planned",
        status="running",
    )
    html = client_for(users["viewer"]).get(url(execution)).content.decode()
    assert re.search(r'<div id="rto-warning" class="rto-warning" role="alert">', html)
    assert "Projected to breach the RTO by 40 s" in html
    assert "At risk: projected to breach the RTO" in html


def test_a_completed_execution_shows_its_measured_rto(users: dict[str, User]) -> None:
    plan = make_plan(rto_seconds=60)
    execution = make_execution(
        [{"key": "promote", "status": "succeeded", "duration_seconds": 12}],
        plan=plan,
        execution_type="planned",
        status="completed",
        actual_rto_seconds=74.4,
    )
    html = client_for(users["viewer"]).get(url(execution)).content.decode()
    assert '<div id="rto-measured-row"><dt>Measured RTO</dt><dd id="rto-measured">1 min 14 s</dd></div>' in html
    config = json.loads(re.search(r'id="console-config" type="application/json">(.*?)</script>', html).group(1))
    assert (config["state"]["clock"]["measured_rto_seconds"], config["state"]["clock"]["measured_rto_text"]) == (
        74.4,
        "1 min 14 s",
    )


def test_an_execution_without_a_measured_rto_hides_the_figure(
    users: dict[str, User], awaiting: FailoverExecution
) -> None:
    html = client_for(users["viewer"]).get(url(awaiting)).content.decode()
    assert '<div id="rto-measured-row" hidden><dt>Measured RTO</dt><dd id="rto-measured">—</dd></div>' in html


def test_unknown_execution_is_404(users: dict[str, User]) -> None:
    assert client_for(users["viewer"]).get("/console/executions/999999/").status_code == 404


def _csrf_post(client: Client, page: str, path: str, body: dict) -> int:
    client.get(page)  # sets the csrftoken cookie as the page does for its buttons
    token = client.cookies["csrftoken"].value
    response = client.post(path, data=json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=token)
    return response.status_code


def test_a_forged_action_by_a_viewer_is_refused_and_changes_nothing(
    users: dict[str, User], paused_run: FailoverExecution, awaiting: FailoverExecution
) -> None:
    viewer = client_for(users["viewer"], csrf=True)
    audits, events = AuditEntry.objects.count(), ExecutionEvent.objects.count()
    api = f"/api/v1/dr/executions/{paused_run.pk}/"
    assert _csrf_post(viewer, url(paused_run), api + "cancel/", {"comment": "forged"}) == 403
    assert _csrf_post(viewer, url(paused_run), api + "resume/", {"comment": "forged"}) == 403
    assert _csrf_post(viewer, url(paused_run), api + "steps/call-dba/confirm/", {"comment": "x"}) == 403
    assert _csrf_post(viewer, url(paused_run), api + "steps/promote/retry/", {"comment": "x"}) == 403
    assert _csrf_post(viewer, url(awaiting), f"/api/v1/dr/executions/{awaiting.pk}/approve/", {"comment": ""}) == 403
    assert FailoverExecution.objects.get(pk=paused_run.pk).status == "paused"
    assert FailoverExecution.objects.get(pk=awaiting.pk).status == "awaiting_approval"
    assert dict(StepRun.objects.filter(execution=paused_run).values_list("step_key", "status")) == {
        "check": "succeeded",
        "promote": "failed",
        "call-dba": "waiting",
    }
    assert (AuditEntry.objects.count(), ExecutionEvent.objects.count()) == (audits, events)


def test_operator_confirms_with_the_session_and_csrf_header_like_the_page(
    users: dict[str, User], paused_run: FailoverExecution
) -> None:
    operator = client_for(users["operator"], csrf=True)
    path = f"/api/v1/dr/executions/{paused_run.pk}/steps/call-dba/confirm/"
    assert _csrf_post(operator, url(paused_run), path, {"comment": "done by phone"}) == 200
    assert StepRun.objects.get(execution=paused_run, step_key="call-dba").status == "succeeded"
    state = operator.get(url(paused_run) + "state/").json()
    confirm = next(s for s in state["steps"] if s["key"] == "call-dba")
    assert confirm["status"] == "succeeded" and confirm["actions"] == []


def test_without_the_csrf_header_a_session_post_is_refused(
    users: dict[str, User], paused_run: FailoverExecution
) -> None:
    operator = client_for(users["operator"], csrf=True)
    response = operator.post(
        f"/api/v1/dr/executions/{paused_run.pk}/cancel/", data="{}", content_type="application/json"
    )
    assert response.status_code == 403
    assert FailoverExecution.objects.get(pk=paused_run.pk).status == "paused"
