"""The executions list (filters, achieved RTO/RPO, who triggered, a row opens the console), the approvals
inbox (go/no-go and runbook versions waiting for me, decided through the same services as the API) and
the DR test schedules page (create, pause, resume, delete; audited)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule

from core.models import AuditEntry
from failover import services
from failover.models import ApprovalDecision, FailoverExecution
from failover.tests.engine_factories import add_approval_levels, three_app_plan
from failover.tests.factories import make_execution
from failover.web.operations import new_token
from runbooks.choices import VersionStatus
from runbooks.models import RunbookVersion
from runbooks.services import import_runbook_document, submit_for_approval

pytestmark = pytest.mark.django_db


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def ids(response, attribute: str = "execution") -> list[str]:
    return re.findall(rf'<tr data-{attribute}="([^"]+)"', response.content.decode())


# --- Executions ---------------------------------------------------------------------------------


def test_executions_list_filters_and_rows(users) -> None:
    plan, _ = three_app_plan("shop-dr", rto_seconds=900, rpo_seconds=60)
    old = make_execution(plan, execution_type="test", status="completed", actual_rto_seconds=600, actual_rpo_seconds=90)
    FailoverExecution.objects.filter(pk=old.pk).update(triggered_at=timezone.now() - timedelta(days=40))
    failed = make_execution(plan, execution_type="planned", status="failed", triggered_by=users["operator"])
    running = make_execution(None, execution_type="runbook", status="running")
    viewer = client_for(users["viewer"])
    everything = viewer.get("/executions/")
    assert everything.status_code == 200
    assert ids(everything) == [str(running.pk), str(failed.pk), str(old.pk)]  # newest first
    row = " ".join(re.search(rf'data-execution="{old.pk}".*?</tr>', everything.content.decode(), re.S).group(0).split())
    assert f'href="/console/executions/{old.pk}/"' in row
    assert "10 min / 15 min" in row and "1 min 30 s / 1 min" in row and "✗ missed" in row
    assert "operator" in text(viewer.get("/executions/?type=planned"))
    assert ids(viewer.get("/executions/?plan=shop-dr")) == [str(failed.pk), str(old.pk)]
    assert ids(viewer.get("/executions/?type=planned")) == [str(failed.pk)]
    assert ids(viewer.get("/executions/?status=running")) == [str(running.pk)]
    assert ids(viewer.get("/executions/?period=30d")) == [str(running.pk), str(failed.pk)]
    assert ids(viewer.get("/executions/?plan=shop-dr&period=7d&status=failed")) == [str(failed.pk)]


def test_executions_list_refuses_bad_filters_with_4xx(users) -> None:
    viewer = client_for(users["viewer"])
    for query, message in [
        ("type=explode", "type must be one of"),
        ("status=done", "status must be one of"),
        ("period=forever", "period must be one of"),
        ("plan=nope", "no plan 'nope'"),
    ]:
        response = viewer.get(f"/executions/?{query}")
        assert response.status_code == 400 and message in text(response)
    assert viewer.get("/executions/?page=999").status_code == 200  # the last page
    nobody = User.objects.create_user("nobody", password="x")
    assert client_for(nobody).get("/executions/").status_code == 403


# --- Approvals inbox ----------------------------------------------------------------------------


@pytest.fixture
def waiting(users):
    plan, _ = three_app_plan("shop-dr")
    add_approval_levels(plan, ("approver", 1))
    return services.start_failover(plan, actor=users["operator"], reason="maintenance")


def test_an_approver_decides_a_go_no_go_from_the_inbox(users, waiting) -> None:
    approver = client_for(users["approver"])
    inbox = approver.get("/approvals/")
    assert ids(inbox) == [str(waiting.pk)] and "maintenance" in text(inbox)
    response = approver.post(f"/approvals/executions/{waiting.pk}/", {"decision": "approve", "comment": "go"})
    assert response.status_code == 302 and response["Location"] == "/approvals/"
    waiting.refresh_from_db()
    assert waiting.status == "pending"
    decision = ApprovalDecision.objects.get(execution=waiting)
    assert (decision.user, decision.decision, decision.comment) == (users["approver"], "approve", "go")
    assert ids(approver.get("/approvals/")) == []


def test_inbox_refusals_show_why_and_change_nothing(users, waiting) -> None:
    operator = client_for(users["operator"])
    assert 'id="no-approvals-role"' in operator.get("/approvals/").content.decode()
    assert "Approve" not in text(operator.get("/approvals/"))
    denied = operator.post(f"/approvals/executions/{waiting.pk}/", {"decision": "approve"})
    assert denied.status_code == 403 and "failover.approve_execution" in text(denied)
    approver = client_for(users["approver"])
    no_comment = approver.post(f"/approvals/executions/{waiting.pk}/", {"decision": "reject", "comment": " "})
    assert no_comment.status_code == 400 and "a rejection needs a comment" in text(no_comment)
    assert approver.post(f"/approvals/executions/{waiting.pk}/", {"decision": "maybe"}).status_code == 400
    assert approver.post("/approvals/executions/99999/", {"decision": "approve"}).status_code == 404
    assert approver.get(f"/approvals/executions/{waiting.pk}/").status_code == 405
    waiting.refresh_from_db()
    assert waiting.status == "awaiting_approval" and not ApprovalDecision.objects.exists()
    rejected = approver.post(f"/approvals/executions/{waiting.pk}/", {"decision": "reject", "comment": "not now"})
    assert rejected.status_code == 302
    waiting.refresh_from_db()
    assert waiting.status == "rejected"
    again = approver.post(f"/approvals/executions/{waiting.pk}/", {"decision": "approve"})
    assert again.status_code == 409 and "only executions awaiting approval" in text(again)


def test_runbook_versions_are_approved_from_the_inbox(users) -> None:
    version = import_runbook_document(
        {"name": "Inbox demo", "slug": "inbox-demo", "version": "1.0.0", "category": "maintenance",
         "steps": [{"id": "a", "action": "noop"}]},
        actor=users["operator"],
    )  # fmt: skip
    submit_for_approval(version, users["operator"])
    second = User.objects.create_user("approver2", password="x")
    second.groups.add(Group.objects.get(name="approver"))
    approver = client_for(second)
    assert ids(approver.get("/approvals/"), "version") == [str(version.pk)]
    response = approver.post(f"/approvals/runbook-versions/{version.pk}/", {"decision": "approve", "comment": "ok"})
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.status == VersionStatus.APPROVED
    assert RunbookVersion.objects.get(pk=version.pk).decisions.get().user == second


# --- Schedules ----------------------------------------------------------------------------------


def test_schedules_create_pause_resume_delete(users) -> None:
    three_app_plan("shop-dr", categories=("failover", "test"))
    operator = client_for(users["operator"])
    created = operator.post("/schedules/", {"plan": "shop-dr", "kind": "cron", "cron": "0 3 * * 1"})
    assert created.status_code == 302
    schedule = Schedule.objects.get(name="dr-test:shop-dr")
    assert (schedule.cron, schedule.repeats) == ("0 3 * * 1", -1)
    page = operator.get("/schedules/")
    assert ids(page, "plan") == ["shop-dr"] and "▶ active" in text(page)
    assert 'data-plan="shop-dr"' in operator.get("/dashboard/").content.decode()
    assert operator.post("/schedules/shop-dr/pause/").status_code == 302
    schedule.refresh_from_db()
    assert schedule.repeats == 0 and "⏸ paused" in text(operator.get("/schedules/"))
    dashboard = operator.get("/dashboard/").content.decode()
    assert not re.search(r'<table id="scheduled-tests">', dashboard)  # a paused test is not upcoming
    assert operator.post("/schedules/shop-dr/resume/").status_code == 302
    schedule.refresh_from_db()
    assert schedule.repeats == -1 and schedule.next_run > timezone.now()
    assert operator.post("/schedules/shop-dr/delete/").status_code == 302
    assert not Schedule.objects.filter(name="dr-test:shop-dr").exists()
    actions = list(
        AuditEntry.objects.filter(object_type="django_q.schedule").order_by("seq").values_list("action", "comment")
    )
    assert actions == [("create", ""), ("update", "paused"), ("update", "resumed"), ("delete", "deleted")]


def test_schedule_refusals_are_4xx_and_change_nothing(users) -> None:
    three_app_plan("shop-dr", categories=("failover",))  # no test runbook
    operator = client_for(users["operator"])
    for data, status, message in [
        ({"plan": "shop-dr", "kind": "frequency", "frequency": "weekly"}, 409, "has no test runbook"),
        ({"plan": "shop-dr", "kind": "cron", "cron": "every monday"}, 400, "is not a valid cron expression"),
        ({"plan": "shop-dr", "kind": "frequency", "frequency": "hourly"}, 400, "frequency must be one of"),
        ({"plan": "nope", "kind": "frequency", "frequency": "weekly"}, 400, "no plan 'nope'"),
        ({"plan": "shop-dr", "kind": "sometimes"}, 400, "choose a frequency or a cron expression"),
    ]:
        response = operator.post("/schedules/", data)
        assert response.status_code == status and message in text(response), (data, text(response)[:300])
    assert operator.post("/schedules/shop-dr/pause/").status_code == 404
    assert operator.post("/schedules/shop-dr/explode/").status_code in (400, 404)
    viewer = client_for(users["viewer"])
    assert 'id="schedule-form"' not in viewer.get("/schedules/").content.decode()
    assert (
        viewer.post("/schedules/", {"plan": "shop-dr", "kind": "frequency", "frequency": "weekly"}).status_code == 403
    )
    assert not Schedule.objects.exists()


# --- Bad input anywhere: 4xx, never 5xx -------------------------------------------------------------

HUGE = "9" * 30


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_odd_requests_to_every_page_are_4xx_never_5xx(users, role) -> None:
    plan, _ = three_app_plan("shop-dr", categories=("failover", "test"))
    add_approval_levels(plan, ("approver", 1))
    waiting = services.start_failover(plan, actor=users["operator"])
    client = client_for(users[role])
    gets = [
        "/plans/?x=\x00",
        f"/plans/{HUGE}/",
        "/plans/%00/",
        "/plans/shop-dr/run/%00/",
        f"/plans/{HUGE}/run/test/",
        "/executions/?plan=%00",
        "/executions/?plan=" + "x" * 5000,
        "/executions/?page=-1",
        "/executions/?page=abc",
        "/executions/?status=%00&type=%00&period=%00",
        f"/console/executions/{HUGE}/",
        f"/console/executions/{HUGE}/state/",
        "/approvals/?decision=%00",
        "/schedules/?plan=%00",
    ]
    for url in gets:
        assert client.get(url).status_code < 500, url
    posts = [
        ("/plans/shop-dr/run/test/", {"token": "\x00", "reason": "\x00"}),
        ("/plans/shop-dr/run/test/", {"token": new_token(), "reason": "a\x00b"}),
        ("/plans/shop-dr/run/planned/", {"token": new_token(), "confirm_plan_id": "shop-dr\x00"}),
        ("/plans/shop-dr/run/unplanned/", {"token": new_token(), "confirm_plan_id": "shop-dr", "declared_at": "\x00"}),
        ("/plans/shop-dr/run/validate/", {"token": "x" * 5000}),
        (f"/approvals/executions/{HUGE}/", {"decision": "approve"}),
        (f"/approvals/executions/{waiting.pk}/", {"decision": "approve\x00", "comment": "\x00"}),
        (f"/approvals/executions/{waiting.pk}/", {"decision": "reject", "comment": "no\x00"}),
        (f"/approvals/runbook-versions/{HUGE}/", {"decision": "approve"}),
        ("/schedules/", {"plan": "\x00", "kind": "cron", "cron": "\x00"}),
        ("/schedules/", {"plan": "shop-dr", "kind": "cron", "cron": "* * * * * * * * *"}),
        (f"/schedules/{HUGE}/pause/", {}),
        ("/schedules/%00/delete/", {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code < 500, (url, data)
    assert FailoverExecution.objects.count() == 1
    waiting.refresh_from_db()
    assert waiting.status == "awaiting_approval"
