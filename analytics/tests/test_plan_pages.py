"""The plans pages: the list (status, strategy, targets against the last test, next test, readiness) and a
plan's page (scope, dependency map in recovery order, strategy and targets, runbooks with their approval
state, test history, findings and action items, operations by role)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from analytics.models import ActionItem
from analytics.models import TestFinding as Finding
from analytics.tests.factories import make_result
from failover.tests.engine_factories import add_approval_levels, make_runbook, three_app_plan
from plans.tests.factories import make_plan

pytestmark = pytest.mark.django_db


def get(user: User | None, url: str, status: int = 200) -> str:
    client = Client()
    if user is not None:
        client.force_login(user)
    response = client.get(url)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


def row(html: str, attribute: str, value: str) -> str:
    """The row's HTML with runs of whitespace as one space."""
    return " ".join(re.search(rf'data-{attribute}="{re.escape(value)}"[^>]*>(.*?)</tr>', html, re.S).group(1).split())


def test_plan_list_shows_targets_next_test_and_readiness(users) -> None:
    ready, _ = three_app_plan("shop-dr", rto_seconds=900, rpo_seconds=86400, categories=("failover", "test"))
    make_result(ready, test_date=timezone.now() - timedelta(days=3), actual_rto_seconds=3720, actual_rpo_seconds=30)
    make_plan("draft-dr", status="draft", rto_seconds=3600, rpo_seconds=60)
    make_plan("old-dr", status="archived")
    html = get(users["viewer"], "/plans/")
    assert re.findall(r'<tr data-plan="([^"]+)"', html) == ["draft-dr", "shop-dr", "old-dr"]  # archived last
    shop = row(html, "plan", "shop-dr")
    assert "15 min / 1 h 02 min" in shop and "✗ missed" in shop  # RTO target vs the last test
    assert "24 h / 30 s" in shop and "✓ met" in shop
    assert "✓ ready" in shop
    draft = row(html, "plan", "draft-dr")
    assert "✗ not ready" in draft and "plan is draft" in draft and "no failover runbook" in draft
    assert 'href="/plans/shop-dr/"' in html


def test_plan_page_shows_scope_map_runbooks_tests_and_findings(users) -> None:
    plan, _ = three_app_plan("shop-dr", categories=("failover", "failback"), downtime_cost_per_hour="120000")
    make_runbook("shop-db-test", application="shop-db", category="test", approved=False)
    add_approval_levels(plan, ("approver", 1))
    result = make_result(plan, outcome="partial", actual_rto_seconds=5400, actual_rpo_seconds=45)
    Finding.objects.create(test_result=result, severity="high", category="process", description="DNS TTL too long")
    ActionItem.objects.create(test_result=result, description="Lower the TTL", assignee="Platform", status="open")
    ActionItem.objects.create(test_result=result, description="Already done", assignee="Platform", status="done")
    html = get(users["viewer"], "/plans/shop-dr/")

    # Dependency map: recovery order db → api → web, arrows from a dependency to what waits for it.
    assert re.findall(r'<tr data-application="([^"]+)"><td>(\d+)</td>', html) == [
        ("shop-db", "1"),
        ("shop-api", "2"),
        ("shop-web", "3"),
    ]
    svg = re.search(r'<svg class="dag" id="dependency-graph".*?</svg>', html, re.S).group(0)
    assert re.findall(r'data-from="([^"]+)" data-to="([^"]+)"', svg) == [
        ("shop-db", "shop-api"),
        ("shop-api", "shop-web"),
    ]
    assert "Tier 3 · #1 to recover" in svg and "Tier 1 · #3 to recover" in svg

    # Strategy, targets, money, go/no-go.
    assert "$120,000.00 per hour" in html
    assert "level 1: 1 × approver" in html
    # Runbooks by category with their approval state; the unapproved test runbook runs in dry runs only.
    failover = re.search(r'<table data-category="failover">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r'data-runbook="([^"]+)"', failover) == [
        "shop-web-failover",
        "shop-api-failover",
        "shop-db-failover",
    ]
    assert failover.count("✓ approved") == 3
    test = re.search(r'<table data-category="test">(.*?)</table>', html, re.S).group(1)
    assert "⏸ draft" in test and "runs in dry runs only" in test
    # Test history with achieved against target; findings; only open action items.
    history = row(html, "test-result", str(result.pk))
    assert "1 h 30 min / 1 h" in history and "✗ missed" in history and "45 s / 5 min" in history
    assert "DNS TTL too long" in html and "Lower the TTL" in html and "Already done" not in html


def test_operations_by_role(users) -> None:
    three_app_plan("shop-dr")
    viewer = get(users["viewer"], "/plans/shop-dr/")
    assert 'data-operation="' not in viewer and 'id="no-operations"' in viewer
    assert 'data-operation="' not in get(users["auditor"], "/plans/shop-dr/")
    operator = get(users["operator"], "/plans/shop-dr/")
    assert re.findall(r'data-operation="([^"]+)"', operator) == [
        "validate",
        "dry-run",
        "test",
        "planned",
        "unplanned",
        "failback",
    ]


def test_refusals_are_4xx(users) -> None:
    three_app_plan("shop-dr")
    get(users["viewer"], "/plans/nope/", 404)
    get(users["viewer"], "/plans/12345/", 404)
    assert get(None, "/plans/", 302) == ""  # to the sign-in page
    nobody = User.objects.create_user("nobody", password="x")
    get(nobody, "/plans/", 403)
    get(nobody, "/plans/shop-dr/", 403)


def test_pages_query_counts_stay_flat(users, django_assert_max_num_queries) -> None:
    for index in range(5):
        make_plan(f"plan-{index}", status="active")
    three_app_plan("shop-dr")
    client = Client()
    client.force_login(users["viewer"])
    with django_assert_max_num_queries(60):
        assert client.get("/plans/").status_code == 200
    with django_assert_max_num_queries(60):
        assert client.get("/plans/shop-dr/").status_code == 200
