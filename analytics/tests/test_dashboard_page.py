"""The dashboard: who gets it, and the rows of each section (approvals for me, active executions, plans
against their targets, upcoming tests, SLA breaches). Also the landing redirect."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule

from analytics.tests.factories import make_result, make_target
from failover.models import ApprovalDecision
from failover.tests.engine_support import make_execution
from plans.tests.factories import make_app, make_plan
from runbooks.models import ApprovalLevel, Runbook, RunbookVersion

pytestmark = pytest.mark.django_db

POLICY = [{"level": 1, "role": "approver", "approvers": 2}]


def page(user: User) -> str:
    client = Client()
    client.force_login(user)
    response = client.get("/dashboard/")
    assert response.status_code == 200
    return response.content.decode()


def rows(html: str, table_id: str, attribute: str) -> list[str]:
    """The data-<attribute> values of the rows of one table (empty if the table is absent)."""
    match = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    return re.findall(rf'data-{attribute}="([^"]+)"', match.group(1)) if match else []


def section(html: str, section_id: str) -> str:
    return re.search(rf'<section [^>]*id="{section_id}">(.*?)</section>', html, re.S).group(1)


def test_anonymous_is_sent_to_sign_in_and_keeps_the_landing_page() -> None:
    response = Client().get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/dashboard/"
    landing = Client().get("/")
    assert landing.status_code == 200
    assert "Disaster-recovery plans, runbooks" in landing.content.decode()


def test_signed_in_users_are_redirected_from_the_root(users: dict[str, User]) -> None:
    client = Client()
    client.force_login(users["viewer"])
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"


def test_base_template_navigation_and_landmarks(users: dict[str, User]) -> None:
    html = page(users["viewer"])
    assert '<nav aria-label="Main">' in html
    assert '<main id="main"' in html
    assert 'href="/dashboard/" aria-current="page">Dashboard</a>' in html
    assert 'href="/builder/runbooks/new/"' in html
    assert 'href="/admin/"' in html and 'href="/api/docs/"' in html
    assert 'action="/admin/logout/"' in html
    assert 'class="skip-link" href="#main"' in html


def test_execution_approvals_pending_for_me(users: dict[str, User]) -> None:
    mine = make_execution([], status="awaiting_approval", approval_policy=POLICY, triggered_by=users["operator"])
    own = make_execution([], status="awaiting_approval", approval_policy=POLICY, triggered_by=users["approver"])
    decided = make_execution([], status="awaiting_approval", approval_policy=POLICY, triggered_by=users["operator"])
    ApprovalDecision.objects.create(execution=decided, level=1, user=users["approver"], decision="approve")
    other_role = make_execution(
        [],
        status="awaiting_approval",
        approval_policy=[{"level": 1, "role": "admin", "approvers": 1}],
        triggered_by=users["operator"],
    )
    make_execution([], status="running", approval_policy=POLICY, triggered_by=users["operator"])

    assert rows(page(users["approver"]), "execution-approvals", "execution") == [str(mine.pk)]
    # an admin holds every role, and did not trigger any of them
    assert sorted(rows(page(users["admin"]), "execution-approvals", "execution"), key=int) == sorted(
        [str(mine.pk), str(own.pk), str(decided.pk), str(other_role.pk)], key=int
    )
    assert rows(page(users["operator"]), "execution-approvals", "execution") == []
    assert "Nothing waits for your approval." in page(users["viewer"])


def _version(runbook: Runbook, number: str, author: User, role: str = "approver") -> RunbookVersion:
    version = RunbookVersion.objects.create(runbook=runbook, version=number, created_by=author)
    ApprovalLevel.objects.create(version=version, level=1, role=role, min_approvers=1)
    RunbookVersion.objects.filter(pk=version.pk).update(status="pending_approval", submitted_at=timezone.now())
    return version


def test_runbook_versions_pending_my_approval(users: dict[str, User]) -> None:
    runbook = Runbook.objects.create(slug="db-failover")
    theirs = _version(runbook, "1.0.0", users["admin"])
    _version(runbook, "1.1.0", users["approver"])  # mine: separation of duties
    _version(runbook, "1.2.0", users["admin"], role="auditor")  # a role I do not hold
    _version(runbook, "1.3.0", users["admin"]).contributors.add(users["approver"])  # I edited or submitted it
    RunbookVersion.objects.create(runbook=runbook, version="2.0.0", created_by=users["admin"])  # a draft

    assert rows(page(users["approver"]), "runbook-approvals", "version") == [str(theirs.pk)]
    assert rows(page(users["operator"]), "runbook-approvals", "version") == []


def test_active_executions_link_to_their_consoles(users: dict[str, User]) -> None:
    running = make_execution([], status="running")
    paused = make_execution([], status="paused")
    make_execution([], status="completed")
    html = page(users["viewer"])
    active = section(html, "active-executions")
    assert sorted(re.findall(r'data-execution="(\d+)"', active), key=int) == sorted(
        [str(running.pk), str(paused.pk)], key=int
    )
    assert f'href="/console/executions/{running.pk}/"' in active


def test_plans_against_their_last_measurement(users: dict[str, User]) -> None:
    slow = make_plan("slow-dr", rto_seconds=600, rpo_seconds=60)
    make_result(slow, test_date=timezone.now() - timedelta(days=40), actual_rto_seconds=100, actual_rpo_seconds=10)
    make_result(slow, test_date=timezone.now() - timedelta(days=2), actual_rto_seconds=900, actual_rpo_seconds=30)
    make_plan("untested-dr")
    make_plan("old-dr", status="archived")
    html = section(page(users["viewer"]), "plans")
    assert re.findall(r'data-plan="([^"]+)"', html) == ["slow-dr", "untested-dr"]
    slow_row = re.search(r'data-plan="slow-dr">(.*?)</tr>', html, re.S).group(1)
    assert "15 min" in slow_row and "✗ missed" in slow_row  # RTO: the latest test, not the average
    assert "30 s" in slow_row and "✓ met" in slow_row  # RPO met
    assert "not measured" in re.search(r'data-plan="untested-dr">(.*?)</tr>', html, re.S).group(1)


def test_upcoming_scheduled_tests_and_due_dates(users: dict[str, User]) -> None:
    active = make_plan("payments-dr", status="active")
    make_plan("draft-dr", status="draft")
    Schedule.objects.create(
        name="dr-test:payments-dr",
        func="failover.services.run_scheduled_test",
        args=repr(active.pk),
        schedule_type=Schedule.WEEKLY,
        next_run=timezone.now() + timedelta(days=3),
        repeats=-1,
    )
    Schedule.objects.create(name="housekeeping", func="x.y", schedule_type=Schedule.DAILY, next_run=timezone.now())
    html = page(users["viewer"])
    assert rows(html, "scheduled-tests", "plan") == ["payments-dr"]
    assert rows(html, "tests-due", "plan") == ["payments-dr"]


def test_recent_sla_breaches(users: dict[str, User]) -> None:
    plan = make_plan("payments-dr", rto_seconds=600, rpo_seconds=60)
    make_target(make_app("orders-db"), breach_count=3)
    make_target(make_app("orders-api"), breach_count=0)
    missed = make_result(plan, actual_rto_seconds=601, actual_rpo_seconds=10)
    rpo_missed = make_result(plan, test_date=timezone.now() - timedelta(days=1), actual_rpo_seconds=61)
    make_result(plan, actual_rto_seconds=100, actual_rpo_seconds=10)  # within targets
    make_result(plan, test_date=timezone.now() - timedelta(days=100), actual_rto_seconds=9999)  # too old
    html = page(users["viewer"])
    assert rows(html, "breached-targets", "application") == ["orders-db"]
    assert rows(html, "missed-tests", "test-result") == [str(missed.pk), str(rpo_missed.pk)]


def test_sections_say_so_when_empty(users: dict[str, User]) -> None:
    html = page(users["viewer"])
    assert "No execution is running." in html
    assert "No DR test is scheduled." in html
    assert "No SLA breach recorded." in html
