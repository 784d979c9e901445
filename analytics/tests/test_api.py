"""Analytics API: RTO targets, DR test results with nested rows, impact analyses."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics import models as m
from analytics.models import ActionItem, DRTestResult, ImpactAnalysis, RTOTarget
from analytics.tests.factories import make_impact, make_result, make_target
from core.models import AuditEntry
from failover.tests.factories import make_execution
from plans.models import DRPlan
from plans.tests.factories import make_app, make_plan

TARGETS = "/api/v1/dr/rto-targets"
RESULTS = "/api/v1/dr/test-results"
IMPACTS = "/api/v1/dr/impact-analyses"


def result_counts():
    models = (DRTestResult, m.TestFinding, m.TestParticipant, ActionItem, AuditEntry)
    return tuple(model.objects.count() for model in models)


def result_payload(for_plan: DRPlan, **extra):
    data = {
        "plan": for_plan.pk,
        "test_type": "compliance",
        "test_date": "2025-03-01T10:00:00Z",
        "outcome": "partial",
        "target_rto_seconds": 3600,
        "target_rpo_seconds": 300,
        "actual_rto_seconds": 4000.5,
        "actual_rpo_seconds": 120.0,
        "data_loss_mb": "1.50",
        "summary": "DB promotion slow",
        "lessons_learned": "Pre-warm caches",
        "findings": [
            {"severity": "high", "category": "technology", "description": "Promotion took 40 min", "remediation": ""}
        ],
        "participants": [
            {"name": "Ana", "user": "operator", "role": "DBA", "actions": "Promoted replica"},
            {"name": "External", "role": "Vendor"},
        ],
        "action_items": [{"description": "Automate promotion", "assignee": "Ana", "due_date": "2025-04-01"}],
    }
    data.update(extra)
    return data


# --- RTO targets -------------------------------------------------------------


def test_rto_target_crud(api_for, db):
    make_app("orders-api")
    client = api_for("approver")
    data = {
        "application": "orders-api",
        "tier": 1,
        "rto_target_seconds": 900,
        "rpo_target_seconds": 60,
        "availability_target_percent": "99.9500",
        "current_rto_seconds": 1200.0,
        "current_rpo_seconds": 30.0,
        "current_availability_percent": "99.9000",
        "trend": "degrading",
        "sla_breach_threshold_seconds": 1800,
        "rpo_breach_window_seconds": 600,
        "breach_count": 2,
        "penalty_per_breach": "5000.00",
    }
    created = client.post(TARGETS, data, format="json")
    assert created.status_code == 201, created.content
    target = RTOTarget.objects.get()
    assert created.json() == {**data, "id": target.pk, "updated_at": created.json()["updated_at"]}

    patched = client.patch(f"{TARGETS}/{target.pk}", {"current_rto_seconds": 800}, format="json")
    assert patched.status_code == 200 and patched.json()["current_rto_seconds"] == 800.0
    assert client.delete(f"{TARGETS}/{target.pk}").status_code == 204
    assert not RTOTarget.objects.exists()
    actions = AuditEntry.objects.filter(object_type="analytics.rtotarget").order_by("seq")
    assert [e.action for e in actions] == ["create", "update", "delete"]
    assert actions[1].before["current_rto_seconds"] == 1200.0 and actions[1].after["current_rto_seconds"] == 800.0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"application": "ghost"}, "application"),
        ({"tier": 7}, "tier"),
        ({"rto_target_seconds": -1}, "rto_target_seconds"),
        ({"rto_target_seconds": 0}, "rto_target_seconds"),
        ({"rpo_target_seconds": "x"}, "rpo_target_seconds"),
        ({"availability_target_percent": "101"}, "availability_target_percent"),
        ({"current_rto_seconds": -3}, "current_rto_seconds"),
        ({"trend": "sideways"}, "trend"),
        ({"penalty_per_breach": "-5"}, "penalty_per_breach"),
        ({"sla_breach_threshold_seconds": None}, "sla_breach_threshold_seconds"),
    ],
)
def test_rto_target_bad_input(api_for, db, change, field):
    make_app("orders-api")
    make_target(make_app("taken"))
    data = {"application": "orders-api", "tier": 1, "rto_target_seconds": 900, "rpo_target_seconds": 60}
    data["sla_breach_threshold_seconds"] = 1800
    data.update(change)
    audits = AuditEntry.objects.count()
    response = api_for("approver").post(TARGETS, data, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert RTOTarget.objects.count() == 1 and AuditEntry.objects.count() == audits


def test_a_second_target_for_an_application_is_409(api_for, db):
    make_target(make_app("taken"))
    data = {"application": "taken", "tier": 1, "rto_target_seconds": 900, "rpo_target_seconds": 60}
    response = api_for("approver").post(TARGETS, {**data, "sla_breach_threshold_seconds": 1800}, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["error"]["fields"] == {"application": ["This application already has a target."]}
    assert RTOTarget.objects.count() == 1


def test_rto_target_filters(api_for, db):
    make_target(make_app("a"), tier=1)
    make_target(make_app("b"), tier=2)
    make_target(make_app("c"), tier=3)
    client = api_for("viewer")

    def apps(query: str) -> list[str]:
        return [t["application"] for t in client.get(f"{TARGETS}?{query}").json()["results"]]

    assert apps("") == ["a", "b", "c"]
    assert apps("tier=2") == ["b"]
    assert apps("application=c") == ["c"]


# --- Test results ------------------------------------------------------------


def test_create_test_result_with_nested_rows(api_for, users, db):
    plan = make_plan("orders-dr")
    response = api_for("approver").post(RESULTS, result_payload(plan), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    result = DRTestResult.objects.get()
    finding = m.TestFinding.objects.get()
    ana, vendor = m.TestParticipant.objects.order_by("id")
    item = ActionItem.objects.get()
    assert body == {
        "id": result.pk,
        "plan": plan.pk,
        "plan_slug": "orders-dr",
        "execution": None,
        "test_type": "compliance",
        "test_date": "2025-03-01T10:00:00Z",
        "outcome": "partial",
        "target_rto_seconds": 3600,
        "target_rpo_seconds": 300,
        "actual_rto_seconds": 4000.5,
        "actual_rpo_seconds": 120.0,
        "rto_met": False,
        "rpo_met": True,
        "data_loss_mb": "1.50",
        "summary": "DB promotion slow",
        "lessons_learned": "Pre-warm caches",
        "findings": [
            {
                "id": finding.pk,
                "severity": "high",
                "category": "technology",
                "description": "Promotion took 40 min",
                "remediation": "",
            }
        ],
        "participants": [
            {"id": ana.pk, "name": "Ana", "user": "operator", "role": "DBA", "actions": "Promoted replica"},
            {"id": vendor.pk, "name": "External", "user": None, "role": "Vendor", "actions": ""},
        ],
        "action_items": [
            {
                "id": item.pk,
                "description": "Automate promotion",
                "assignee": "Ana",
                "due_date": "2025-04-01",
                "status": "open",
            }
        ],
        "recorded_by": "approver",
        "created_at": body["created_at"],
    }
    assert ana.user == users["operator"]
    entry = AuditEntry.objects.get(object_type="analytics.drtestresult")
    assert entry.action == "create"
    assert [f["description"] for f in entry.after["findings"]] == ["Promotion took 40 min"]
    assert len(entry.after["participants"]) == 2


def test_put_replaces_nested_rows_and_patch_keeps_them(api_for, db):
    plan = make_plan()
    client = api_for("admin")
    pk = client.post(RESULTS, result_payload(plan), format="json").json()["id"]

    patched = client.patch(f"{RESULTS}/{pk}", {"summary": "Edited"}, format="json")
    assert patched.status_code == 200
    assert len(patched.json()["participants"]) == 2

    data = result_payload(plan, findings=[], action_items=[{"description": "New", "assignee": "Bo"}])
    del data["participants"]
    put = client.put(f"{RESULTS}/{pk}", data, format="json")
    assert put.status_code == 200, put.content
    assert put.json()["findings"] == [] and put.json()["participants"] == []
    assert [a["description"] for a in put.json()["action_items"]] == ["New"]
    assert (m.TestFinding.objects.count(), m.TestParticipant.objects.count(), ActionItem.objects.count()) == (0, 0, 1)
    update = AuditEntry.objects.filter(object_type="analytics.drtestresult", action="update").order_by("seq").last()
    assert len(update.before["participants"]) == 2 and update.after["participants"] == []


BAD_RESULTS = [
    ("missing outcome", {"outcome": None}, "outcome"),
    ("invalid outcome", {"outcome": "meh"}, "outcome"),
    ("bad date", {"test_date": "last week"}, "test_date"),
    ("negative actual", {"actual_rto_seconds": -1}, "actual_rto_seconds"),
    ("zero target", {"target_rto_seconds": 0}, "target_rto_seconds"),
    ("negative data loss", {"data_loss_mb": "-2"}, "data_loss_mb"),
    ("unknown plan", {"plan": 424242}, "plan"),
    ("unknown execution", {"execution": 424242}, "execution"),
    (
        "finding bad severity",
        {"findings": [{"severity": "x", "category": "people", "description": "d"}]},
        "findings[0].severity",
    ),
    (
        "finding missing description",
        {"findings": [{"severity": "low", "category": "people"}]},
        "findings[0].description",
    ),
    (
        "participant unknown user",
        {"participants": [{"name": "A", "role": "r", "user": "ghost"}]},
        "participants[0].user",
    ),
    (
        "action item bad date",
        {"action_items": [{"description": "d", "assignee": "a", "due_date": "soon"}]},
        "action_items[0].due_date",
    ),
    (
        "action item bad status",
        {"action_items": [{"description": "d", "assignee": "a", "status": "x"}]},
        "action_items[0].status",
    ),
]


@pytest.mark.parametrize(("case", "change", "field"), BAD_RESULTS, ids=[b[0] for b in BAD_RESULTS])
def test_test_result_bad_input(api_for, users, db, case, change, field):
    plan = make_plan()
    data = {k: v for k, v in result_payload(plan, **change).items() if v is not None}
    before = result_counts()
    response = api_for("approver").post(RESULTS, data, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert result_counts() == before


def test_execution_of_another_plan_is_rejected(api_for, db):
    plan, other = make_plan("a-dr"), make_plan("b-dr")
    execution = make_execution(other)
    before = result_counts()
    response = api_for("approver").post(RESULTS, result_payload(plan, execution=execution.pk), format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["execution"]
    assert result_counts() == before
    ok = api_for("approver").post(RESULTS, result_payload(other, execution=execution.pk), format="json")
    assert ok.status_code == 201 and ok.json()["execution"] == execution.pk


def test_malformed_and_oversized_bodies(api_for, db):
    plan = make_plan()
    client = api_for("approver")
    before = result_counts()
    bad = client.generic("POST", RESULTS, "{not json", content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_request"
    big = json.dumps(result_payload(plan, summary="x" * (settings.DRPLAN_MAX_REQUEST_BYTES + 10)))
    assert client.generic("POST", RESULTS, big, content_type="application/json").status_code == 413
    assert result_counts() == before


def test_test_result_filters(api_for, db):
    a, b = make_plan("a-dr"), make_plan("b-dr")
    r1 = make_result(a, outcome="passed", test_date=datetime.fromisoformat("2025-01-10T12:00:00+00:00"))
    r2 = make_result(
        a, outcome="failed", test_date=datetime.fromisoformat("2025-02-10T12:00:00+00:00"), test_type="ad_hoc"
    )
    r3 = make_result(b, outcome="passed", test_date=datetime.fromisoformat("2025-03-10T12:00:00+00:00"))
    client = api_for("viewer")

    def ids(query: str) -> list[int]:
        response = client.get(f"{RESULTS}?{query}")
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    assert ids("") == [r3.pk, r2.pk, r1.pk]
    assert ids(f"plan={a.pk}") == [r2.pk, r1.pk]
    assert ids("outcome=passed") == [r3.pk, r1.pk]
    assert ids("test_type=ad_hoc") == [r2.pk]
    assert ids("test_date_after=2025-02-01&test_date_before=2025-02-28") == [r2.pk]
    assert ids("test_date_before=2025-01-10") == [r1.pk]
    assert ids("plan_slug=b-dr") == [r3.pk]
    assert client.get(f"{RESULTS}?test_date_after=notadate").status_code == 400


def test_test_result_list_query_count_is_constant(api_for, users, db):
    plan = make_plan()
    client = api_for("viewer")
    for i in range(12):
        client_data = result_payload(plan, summary=f"t{i}")
        api_for("approver").post(RESULTS, client_data, format="json")
    client.get(RESULTS)
    sizes = []
    for size in (2, 12):
        with CaptureQueriesContext(connection) as ctx:
            assert len(client.get(f"{RESULTS}?page_size={size}").json()["results"]) == size
        sizes.append(len(ctx.captured_queries))
    assert sizes[0] == sizes[1]


# --- Impact analyses ---------------------------------------------------------


def impact_payload(for_plan: DRPlan | None, **extra):
    data = {
        "plan": for_plan.pk if for_plan else None,
        "scenario": "Loss of FRA1",
        "description": "Whole region down",
        "revenue_per_hour": "100000.00",
        "downtime_cost_1h": "120000.00",
        "downtime_cost_4h": "500000.00",
        "downtime_cost_24h": "3000000.00",
        "recovery_cost": "40000.00",
        "affected_processes": ["checkout", "invoicing"],
        "critical_processes": ["checkout"],
        "affected_employees": 120,
        "affected_customers": 50000,
        "customer_sentiment": "negative",
        "media_exposure": "high",
        "brand_damage": "medium",
        "customer_churn_percent": "2.5000",
        "regulatory_frameworks": ["pci_dss", "gdpr"],
        "potential_violations": ["PCI DSS 12.10"],
        "estimated_fines": "250000.00",
    }
    data.update(extra)
    return data


def test_impact_analysis_crud(api_for, users, db):
    plan = make_plan("orders-dr")
    client = api_for("approver")
    created = client.post(IMPACTS, impact_payload(plan), format="json")
    assert created.status_code == 201, created.content
    analysis = ImpactAnalysis.objects.get()
    body = created.json()
    assert body == {
        **impact_payload(plan),
        "id": analysis.pk,
        "plan_slug": "orders-dr",
        "created_by": "approver",
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert analysis.created_by == users["approver"]
    put = client.put(f"{IMPACTS}/{analysis.pk}", impact_payload(None, scenario="Ransomware"), format="json")
    assert put.status_code == 200 and put.json()["plan"] is None and put.json()["plan_slug"] is None
    assert client.delete(f"{IMPACTS}/{analysis.pk}").status_code == 204
    assert [e.action for e in AuditEntry.objects.filter(object_type="analytics.impactanalysis").order_by("seq")] == [
        "create",
        "update",
        "delete",
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scenario": ""}, "scenario"),
        ({"revenue_per_hour": "-1"}, "revenue_per_hour"),
        ({"downtime_cost_1h": "lots"}, "downtime_cost_1h"),
        ({"affected_employees": -4}, "affected_employees"),
        ({"affected_processes": "checkout"}, "affected_processes"),
        ({"customer_sentiment": "angry"}, "customer_sentiment"),
        ({"customer_churn_percent": "150"}, "customer_churn_percent"),
        ({"plan": 987654}, "plan"),
    ],
)
def test_impact_analysis_bad_input(api_for, db, change, field):
    audits = AuditEntry.objects.count()
    response = api_for("approver").post(IMPACTS, impact_payload(None, **change), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert ImpactAnalysis.objects.count() == 0 and AuditEntry.objects.count() == audits


def test_impact_analysis_filter_by_plan(api_for, db):
    plan = make_plan("orders-dr")
    mine = make_impact(plan, "Mine")
    make_impact(None, "Org-wide")
    body = api_for("viewer").get(f"{IMPACTS}?plan={plan.pk}").json()
    assert [a["id"] for a in body["results"]] == [mine.pk]
    assert [a["scenario"] for a in api_for("viewer").get(f"{IMPACTS}?search=org").json()["results"]] == ["Org-wide"]


def test_measured_seconds_are_bounded_so_statistics_stay_finite(api_for, db):
    """Two results of 1.7e308 s averaged to infinity: GET /plans/{id} answered 500."""
    plan = make_plan("huge-dr")
    data = {
        "plan": plan.pk,
        "test_type": "ad_hoc",
        "test_date": "2026-01-01T00:00:00Z",
        "outcome": "passed",
        "target_rto_seconds": 600,
        "target_rpo_seconds": 60,
        "actual_rto_seconds": 1.7e308,
    }
    response = api_for("approver").post(RESULTS, data, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["actual_rto_seconds"]
    assert api_for("viewer").get(f"/api/v1/dr/plans/{plan.plan_id}").status_code == 200
