"""Executions: read-only list/detail with step runs and validation results, and the event backfill."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import AuditEntry
from failover.models import FailoverExecution
from failover.tests.factories import add_events, make_execution
from plans.tests.factories import make_plan

URL = "/api/v1/dr/executions"


def test_list_is_a_summary_and_detail_has_evidence(api_for, users, db):
    plan = make_plan("orders-dr")
    execution = make_execution(
        plan,
        execution_type="planned",
        triggered_by=users["operator"],
        trigger_reason="Maintenance",
        actual_rto_seconds=420.0,
    )
    step = execution.step_runs.create(step_key="promote", title="Promote replica", action="shell", status="succeeded")
    check = execution.validation_results.create(
        name="API up",
        check_type="connectivity",
        status="passed",
        measured="120",
        threshold="500",
        unit="ms",
        checked_at=timezone.now(),
    )
    client = api_for("viewer")

    listed = client.get(URL).json()
    assert listed["count"] == 1
    item = listed["results"][0]
    assert item["id"] == execution.pk
    assert item["plan_slug"] == "orders-dr"
    assert item["triggered_by"] == "operator"
    assert item["runbook"] is None
    assert "step_runs" not in item

    body = client.get(f"{URL}/{execution.pk}").json()
    assert body["execution_type"] == "planned"
    assert body["status"] == "completed"
    assert body["trigger_reason"] == "Maintenance"
    assert body["actual_rto_seconds"] == 420.0
    assert [(s["id"], s["step_key"], s["status"]) for s in body["step_runs"]] == [(step.pk, "promote", "succeeded")]
    assert body["validation_results"] == [
        {
            "id": check.pk,
            "name": "API up",
            "check_type": "connectivity",
            "severity": "high",
            "status": "passed",
            "measured": "120.000",
            "threshold": "500.000",
            "unit": "ms",
            "message": "",
            "checked_at": body["validation_results"][0]["checked_at"],
        }
    ]


def test_filters(api_for, db):
    a, b = make_plan("a-dr"), make_plan("b-dr")
    test_run = make_execution(a, execution_type="test", status="completed")
    failover = make_execution(b, execution_type="planned", status="failed")
    client = api_for("viewer")

    def ids(query: str) -> set[int]:
        response = client.get(f"{URL}?{query}")
        assert response.status_code == 200, response.content
        return {e["id"] for e in response.json()["results"]}

    assert ids("") == {test_run.pk, failover.pk}
    assert ids(f"plan={a.pk}") == {test_run.pk}
    assert ids("status=failed") == {failover.pk}
    assert ids("execution_type=test") == {test_run.pk}
    assert ids("plan_slug=b-dr") == {failover.pk}


def test_events_after_seq_paginated(api_for, db):
    execution = make_execution(make_plan())
    add_events(execution, 7)
    other = make_execution(None, execution_type="runbook")
    add_events(other, 3)
    client = api_for("operator")

    page = client.get(f"{URL}/{execution.pk}/events?after=2&page_size=3").json()
    assert page["count"] == 5
    assert [e["seq"] for e in page["results"]] == [3, 4, 5]
    assert page["results"][0] == {
        "seq": 3,
        "kind": "log",
        "step_run": None,
        "message": "line 3",
        "data": {},
        "created_at": page["results"][0]["created_at"],
    }
    second = client.get(page["next"]).json()
    assert [e["seq"] for e in second["results"]] == [6, 7]
    assert client.get(f"{URL}/{execution.pk}/events").json()["count"] == 7
    assert client.get(f"{URL}/{execution.pk}/events?after=7").json()["results"] == []


@pytest.mark.parametrize("after", ["abc", "-1"])
def test_events_bad_after_is_400(api_for, db, after):
    execution = make_execution(make_plan())
    response = api_for("viewer").get(f"{URL}/{execution.pk}/events?after={after}")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["after"]


def test_events_of_unknown_execution_is_404(api_for, db):
    assert api_for("viewer").get(f"{URL}/999999/events").status_code == 404


def test_list_query_count_is_constant(api_for, users, db):
    plan = make_plan()
    for _ in range(12):
        make_execution(plan, triggered_by=users["operator"])
    client = api_for("viewer")
    client.get(URL)
    sizes = []
    for size in (2, 12):
        with CaptureQueriesContext(connection) as ctx:
            assert len(client.get(f"{URL}?page_size={size}").json()["results"]) == size
        sizes.append(len(ctx.captured_queries))
    assert sizes[0] == sizes[1]


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), ("viewer", 200), ("operator", 200), ("approver", 200), ("auditor", 200), ("admin", 200)],
)
def test_read_permissions(api_for, db, role, expected):
    execution = make_execution(make_plan())
    for url in (URL, f"{URL}/{execution.pk}", f"{URL}/{execution.pk}/events"):
        assert api_for(role).get(url).status_code == expected, url


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), ("viewer", 403), ("auditor", 403), ("operator", 405), ("approver", 405), ("admin", 405)],
)
def test_executions_are_read_only(api_for, db, method, role, expected):
    execution = make_execution(make_plan())
    url = URL if method == "post" else f"{URL}/{execution.pk}"
    before = (FailoverExecution.objects.count(), AuditEntry.objects.count())
    if method == "delete" and role in {"operator", "approver"}:
        expected = 403  # they may add and change executions (through the engine) but never delete them
    response = getattr(api_for(role), method)(url, {"status": "running"}, format="json")
    assert response.status_code == expected
    assert (FailoverExecution.objects.count(), AuditEntry.objects.count()) == before
    execution.refresh_from_db()
    assert execution.status == "completed"
