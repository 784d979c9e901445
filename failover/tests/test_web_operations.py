"""One-click operations from the plan page: the confirmation shows what will run; a start goes through
failover.services (the API's use cases), so roles, an active plan, approvals and one active failover per
plan hold; refusals are 4xx with the reason and store nothing; a wrong confirmation id does nothing; the
same form submitted twice starts one execution."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from failover.models import FailoverExecution
from failover.tests.engine_factories import add_approval_levels, three_app_plan
from failover.web.operations import new_token

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_tokens():
    cache.clear()
    yield
    cache.clear()


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    """The page's text: tags removed, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def post(user: User, plan_id: str, key: str, **data: str):
    data.setdefault("token", new_token())
    return client_for(user).post(f"/plans/{plan_id}/run/{key}/", data)


@pytest.fixture
def plan():
    plan, _ = three_app_plan("shop-dr", categories=("failover", "failback", "test"), rto_seconds=900)
    add_approval_levels(plan, ("approver", 1))
    return plan


def test_the_confirmation_shows_steps_critical_path_and_approvals(users, plan) -> None:
    response = client_for(users["operator"]).get("/plans/shop-dr/run/planned/")
    assert response.status_code == 200
    page_html = response.content.decode()
    keys = re.findall(r'<tr data-step-key="([^"]+)"', page_html)
    assert keys[:3] == ["shop-db.stop", "shop-db.promote", "shop-db.check"] and len(keys) == 9
    page = text(response)
    assert "Critical path estimate: 2 min" in page  # 3 applications x (5 + 30 + 5) s, one chain
    assert "longer than the RTO target" not in page  # 2 min against 15 min
    plan.rto_seconds = 60
    plan.save()
    assert "⚠ longer than the RTO target" in text(client_for(users["operator"]).get("/plans/shop-dr/run/planned/"))
    assert "level 1: 1 × approver" in page
    assert "Type the plan's id, shop-dr , to confirm" in page
    assert 'name="token" value="' in page_html
    dry = text(client_for(users["operator"]).get("/plans/shop-dr/run/dry-run/"))
    assert "no approval needed (a dry run executes nothing)" in dry and "Type the plan's id" not in dry


def test_planned_failover_starts_through_the_service_and_lands_on_the_console(users, plan) -> None:
    response = post(users["operator"], "shop-dr", "planned", confirm_plan_id="shop-dr", reason="maintenance")
    execution = FailoverExecution.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/console/executions/{execution.pk}/"
    assert (execution.execution_type, execution.status, execution.trigger_type) == (
        "planned",
        "awaiting_approval",
        "manual",
    )
    assert execution.triggered_by == users["operator"] and execution.trigger_reason == "maintenance"
    assert execution.approval_policy == [{"level": 1, "role": "approver", "approvers": 1}]


def test_a_wrong_confirmation_id_does_nothing(users, plan) -> None:
    for typed in ("", "shop", "SHOP-DR", "other-dr"):
        response = post(users["operator"], "shop-dr", "planned", confirm_plan_id=typed)
        assert response.status_code == 400
        assert "To confirm, type the plan's id exactly: shop-dr. Nothing was started." in text(response)
    response = post(users["operator"], "shop-dr", "failback", confirm_plan_id="nope")
    assert response.status_code == 400
    assert not FailoverExecution.objects.exists()


def test_the_same_form_twice_starts_one_execution(users, plan) -> None:
    token = new_token()
    first = post(users["operator"], "shop-dr", "test", token=token)
    second = post(users["operator"], "shop-dr", "test", token=token)
    execution = FailoverExecution.objects.get()
    assert first["Location"] == second["Location"] == f"/console/executions/{execution.pk}/"
    # a new form (new token) is a new request: DR tests may run side by side
    post(users["operator"], "shop-dr", "test")
    assert FailoverExecution.objects.count() == 2


def test_a_second_failover_is_refused_with_the_reason(users, plan) -> None:
    post(users["operator"], "shop-dr", "planned", confirm_plan_id="shop-dr")
    first = FailoverExecution.objects.get()
    response = post(users["approver"], "shop-dr", "unplanned", confirm_plan_id="shop-dr")
    assert response.status_code == 409
    assert f"already has an active failover #{first.pk}" in text(response)
    confirm = text(client_for(users["approver"]).get("/plans/shop-dr/run/failback/"))
    assert f"Another failover or failback of this plan is active: execution #{first.pk}" in confirm
    assert FailoverExecution.objects.count() == 1


def test_roles_and_plan_state_are_refused_with_the_reason(users, plan) -> None:
    for role in ("viewer", "auditor"):
        response = post(users[role], "shop-dr", "planned", confirm_plan_id="shop-dr")
        assert response.status_code == 403
        assert "You need the failover.run_failover permission" in text(response)
        page = client_for(users[role]).get("/plans/shop-dr/run/test/")
        assert page.status_code == 200 and 'id="operation-form"' not in page.content.decode()
        assert "Your role does not allow this" in text(page)
    plan.status = "draft"
    plan.save()
    response = post(users["operator"], "shop-dr", "test")
    assert response.status_code == 409 and "plan 'shop-dr' is draft" in text(response)
    assert not FailoverExecution.objects.exists()


def test_unplanned_failover_takes_the_declared_time(users, plan) -> None:
    bad = post(users["operator"], "shop-dr", "unplanned", confirm_plan_id="shop-dr", declared_at="yesterday")
    assert bad.status_code == 400 and "'yesterday' is not a date and time" in text(bad)
    future = post(users["operator"], "shop-dr", "unplanned", confirm_plan_id="shop-dr", declared_at="2999-01-01T00:00")
    assert future.status_code == 400 and "is after the trigger time" in text(future)
    assert not FailoverExecution.objects.exists()
    post(users["operator"], "shop-dr", "unplanned", confirm_plan_id="shop-dr")
    execution = FailoverExecution.objects.get()
    assert execution.execution_type == "unplanned" and execution.disaster_declared_at is not None


def test_dry_run_failback_and_validate(users, plan) -> None:
    dry = post(users["operator"], "shop-dr", "dry-run")
    assert dry.status_code == 302
    # a dry run of a failover holds the plan's one-active-failover guard too, until it ends
    assert post(users["operator"], "shop-dr", "failback", confirm_plan_id="shop-dr").status_code == 409
    FailoverExecution.objects.filter(dry_run=True).update(status="completed")
    failback = post(users["operator"], "shop-dr", "failback", confirm_plan_id="shop-dr")
    assert failback.status_code == 302
    assert sorted(FailoverExecution.objects.values_list("execution_type", "dry_run", "status")) == [
        ("failback", False, "awaiting_approval"),
        ("planned", True, "completed"),
    ]
    plan.status = "draft"
    plan.save()
    confirm = client_for(users["operator"]).get("/plans/shop-dr/run/validate/")
    assert 'id="blockers"' not in confirm.content.decode()  # a draft plan is a finding of the check, not a refusal
    checks = post(users["operator"], "shop-dr", "validate")
    assert checks.status_code == 200
    assert re.findall(r'data-check="([^"]+)"', checks.content.decode()) == [
        "plan_active",
        "runbooks_approved",
        "secrets_present",
        "targets_reachable",
        "approvers_available",
    ]
    assert "✗ Not ready to fail over" in text(checks)
    assert re.search(r'data-check="plan_active">.*?✗ failed.*?is draft', checks.content.decode(), re.S)
    assert post(users["viewer"], "shop-dr", "validate").status_code == 403


def test_bad_requests_are_4xx(users, plan) -> None:
    operator = client_for(users["operator"])
    assert operator.get("/plans/shop-dr/run/explode/").status_code == 404
    assert operator.get("/plans/nope/run/test/").status_code == 404
    assert operator.post("/plans/shop-dr/run/test/", {"token": "not-a-token"}).status_code == 400
    assert operator.post("/plans/shop-dr/run/test/", {}).status_code == 400
    assert operator.put("/plans/shop-dr/run/test/").status_code == 405
    long = post(users["operator"], "shop-dr", "test", reason="x" * 2001)
    assert long.status_code == 400
    assert not FailoverExecution.objects.exists()
