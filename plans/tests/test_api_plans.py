"""DR plan API: CRUD, derived statistics, validation, deletion rules, audit, query counts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.tests.factories import make_result
from core.models import AuditEntry
from failover.tests.factories import make_execution
from plans.models import DRPlan
from plans.tests.factories import make_app, make_plan, make_site

URL = "/api/v1/dr/plans"


def detail(plan: DRPlan) -> str:
    return f"{URL}/{plan.pk}"


@pytest.fixture
def scope(db):
    return {
        "fra1": make_site("fra1"),
        "ams1": make_site("ams1"),
        "orders-api": make_app("orders-api"),
        "orders-db": make_app("orders-db"),
    }


def payload(**extra):
    data = {
        "plan_id": "orders-dr",
        "name": "Orders DR",
        "description": "Orders platform",
        "status": "active",
        "applications": ["orders-api", "orders-db"],
        "sites": ["fra1", "ams1"],
        "rto_seconds": 1800,
        "rpo_seconds": 60,
        "data_loss_threshold_mb": "10.50",
        "downtime_threshold_seconds": 900,
        "strategy": "pilot_light",
        "primary_site": "fra1",
        "dr_site": "ams1",
        "replication_mode": "synchronous",
        "failover_mode": "semi_automatic",
        "test_frequency": "monthly",
        "compliance_frameworks": ["sox", "iso_22301"],
        "last_audit_date": "2025-01-15",
        "next_audit_date": "2026-01-15",
        "compliance_status": "partially_compliant",
        "dr_infrastructure_cost_monthly": "12000.00",
        "testing_cost_monthly": "800.00",
        "downtime_cost_per_hour": "250000.00",
    }
    data.update(extra)
    return data


def test_create_plan_returns_every_field_and_sets_creator(api_for, users, scope):
    response = api_for("approver").post(URL, payload(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    plan = DRPlan.objects.get(plan_id="orders-dr")
    created = plan.created_at
    assert body == {
        **payload(),
        "applications": ["orders-api", "orders-db"],
        "sites": ["ams1", "fra1"],
        "id": plan.pk,
        "detection_window_seconds": 10,
        "approval_timeout_seconds": None,
        "created_by": "approver",
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
        "last_test_date": None,
        "next_test_due": (created + timedelta(days=30)).isoformat().replace("+00:00", "Z"),
        "tests_total": 0,
        "success_rate": None,
        "average_rto_seconds": None,
        "average_rpo_seconds": None,
    }
    assert plan.created_by == users["approver"]
    assert sorted(plan.applications.values_list("slug", flat=True)) == ["orders-api", "orders-db"]
    assert plan.primary_site.code == "fra1" and plan.dr_site.code == "ams1"


def test_create_rejects_created_by_from_client(api_for, users, scope):
    response = api_for("approver").post(URL, payload(created_by="admin"), format="json")
    assert response.status_code == 201
    assert DRPlan.objects.get().created_by == users["approver"]


def test_minimal_plan_gets_defaults(api_for, db, users):
    response = api_for("admin").post(
        URL, {"plan_id": "p1", "name": "P1", "rto_seconds": 60, "rpo_seconds": 1}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft"
    assert body["applications"] == [] and body["sites"] == []
    assert body["primary_site"] is None and body["dr_site"] is None
    assert body["compliance_frameworks"] == []
    assert body["test_frequency"] == "quarterly"


def test_zero_rpo_is_a_valid_target_for_synchronous_replication(api_for, db):
    response = api_for("approver").post(
        URL,
        {"plan_id": "sync", "name": "Sync", "rto_seconds": 300, "rpo_seconds": 0, "replication_mode": "synchronous"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert DRPlan.objects.get(plan_id="sync").rpo_seconds == 0


def test_retrieve_by_id_and_by_plan_id(api_for, scope):
    plan = make_plan("orders-dr", applications=[scope["orders-api"]])
    for url in (detail(plan), f"{URL}/orders-dr", f"{URL}/orders-dr/"):
        response = api_for("viewer").get(url)
        assert response.status_code == 200, url
        assert response.json()["id"] == plan.pk
        assert response.json()["applications"] == ["orders-api"]
    assert api_for("viewer").get(f"{URL}/nope").status_code == 404
    assert api_for("viewer").get(f"{URL}/99999").json()["error"]["code"] == "not_found"


def test_put_replaces_fields_and_scope(api_for, scope):
    plan = make_plan("orders-dr", applications=[scope["orders-api"]], sites=[scope["fra1"]])
    data = payload(applications=["orders-db"], sites=[], name="Renamed", compliance_frameworks=["hipaa"])

    response = api_for("approver").put(detail(plan), data, format="json")

    assert response.status_code == 200, response.content
    plan.refresh_from_db()
    assert plan.name == "Renamed"
    assert list(plan.applications.values_list("slug", flat=True)) == ["orders-db"]
    assert plan.sites.count() == 0
    assert plan.compliance_frameworks == ["hipaa"]
    assert response.json()["applications"] == ["orders-db"]
    assert response.json()["sites"] == []


def test_patch_changes_only_given_fields(api_for, scope):
    plan = make_plan("orders-dr", primary_site=scope["fra1"], dr_site=scope["ams1"], rto_seconds=100)
    response = api_for("admin").patch(detail(plan), {"rto_seconds": 120}, format="json")
    assert response.status_code == 200
    plan.refresh_from_db()
    assert plan.rto_seconds == 120
    assert plan.dr_site == scope["ams1"]
    assert response.json()["rto_seconds"] == 120


def test_patch_dr_site_equal_to_existing_primary_is_rejected(api_for, scope):
    plan = make_plan("orders-dr", primary_site=scope["fra1"], dr_site=scope["ams1"])
    response = api_for("admin").patch(detail(plan), {"dr_site": "fra1"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["dr_site"]
    plan.refresh_from_db()
    assert plan.dr_site == scope["ams1"]


def test_delete_plan_without_history(api_for, scope):
    plan = make_plan("orders-dr")
    response = api_for("approver").delete(detail(plan))
    assert response.status_code == 204
    assert not DRPlan.objects.exists()


@pytest.mark.parametrize("evidence", ["execution", "test_result"])
def test_delete_plan_with_history_is_409_and_keeps_plan(api_for, scope, evidence):
    plan = make_plan("orders-dr")
    if evidence == "execution":
        make_execution(plan)
    else:
        make_result(plan)
    audits = AuditEntry.objects.count()

    response = api_for("admin").delete(detail(plan))

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "plan_has_history"
    assert "archive it instead" in error["message"]
    assert DRPlan.objects.filter(pk=plan.pk).exists()
    assert AuditEntry.objects.count() == audits


BAD_INPUTS = [
    ("wrong type", {"rto_seconds": "soon"}, "rto_seconds"),
    ("negative rto", {"rto_seconds": -5}, "rto_seconds"),
    ("zero rto", {"rto_seconds": 0}, "rto_seconds"),
    ("negative rpo", {"rpo_seconds": -1}, "rpo_seconds"),
    ("negative cost", {"downtime_cost_per_hour": "-1"}, "downtime_cost_per_hour"),
    ("invalid choice", {"strategy": "yolo"}, "strategy"),
    ("unknown application", {"applications": ["orders-api", "ghost"]}, "applications"),
    ("unknown site", {"primary_site": "mars1"}, "primary_site"),
    ("applications not a list", {"applications": "orders-api"}, "applications"),
    ("invalid framework", {"compliance_frameworks": ["sox", "gdpr"]}, "compliance_frameworks.1"),
    ("frameworks not a list", {"compliance_frameworks": "sox"}, "compliance_frameworks"),
    ("same dr and primary", {"dr_site": "fra1"}, "dr_site"),
    ("bad date", {"last_audit_date": "yesterday"}, "last_audit_date"),
    ("bad slug", {"plan_id": "not a slug!"}, "plan_id"),
]


@pytest.mark.parametrize(("case", "change", "field"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_400_naming_the_field_and_stores_nothing(api_for, scope, case, change, field):
    audits = AuditEntry.objects.count()
    response = api_for("approver").post(URL, payload(**change), format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert field in error["fields"], error
    assert field in error["message"]
    assert DRPlan.objects.count() == 0
    assert AuditEntry.objects.count() == audits


@pytest.mark.parametrize("missing", ["plan_id", "name", "rto_seconds", "rpo_seconds"])
def test_missing_required_field(api_for, scope, missing):
    data = payload()
    del data[missing]
    response = api_for("approver").post(URL, data, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {missing: ["This field is required."]}
    assert DRPlan.objects.count() == 0


def test_duplicate_plan_id_is_409(api_for, scope):
    make_plan("orders-dr")
    response = api_for("approver").post(URL, payload(), format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert response.json()["error"]["fields"] == {"plan_id": ["DR plan with this plan id already exists."]}
    assert DRPlan.objects.count() == 1


def test_malformed_json_is_400(api_for, scope):
    response = api_for("approver").generic("POST", URL, '{"plan_id": "x", ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert DRPlan.objects.count() == 0


def test_oversized_body_is_413(api_for, scope):
    body = json.dumps(payload(description="x" * (settings.DRPLAN_MAX_REQUEST_BYTES + 1)))
    response = api_for("approver").generic("POST", URL, body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert DRPlan.objects.count() == 0


def test_derived_stats(api_for, db):
    plan = make_plan("orders-dr", test_frequency="quarterly")
    now = timezone.now().replace(microsecond=0)
    make_result(
        plan, outcome="passed", test_date=now - timedelta(days=40), actual_rto_seconds=100, actual_rpo_seconds=10
    )
    make_result(plan, outcome="failed", test_date=now - timedelta(days=10), actual_rto_seconds=300)
    make_result(
        plan, outcome="passed", test_date=now - timedelta(days=20), actual_rto_seconds=200, actual_rpo_seconds=30
    )
    make_result(plan, outcome="partial", test_date=now - timedelta(days=30))
    untested = make_plan("idle-dr", test_frequency="annual")

    body = api_for("viewer").get(detail(plan)).json()

    assert body["tests_total"] == 4
    assert body["success_rate"] == pytest.approx(0.5)
    assert body["average_rto_seconds"] == pytest.approx(200.0)
    assert body["average_rpo_seconds"] == pytest.approx(20.0)
    last = now - timedelta(days=10)
    assert body["last_test_date"] == last.isoformat().replace("+00:00", "Z")
    assert body["next_test_due"] == (last + timedelta(days=91)).isoformat().replace("+00:00", "Z")

    idle = api_for("viewer").get(detail(untested)).json()
    assert idle["tests_total"] == 0
    assert idle["success_rate"] is None
    assert idle["next_test_due"] == (untested.created_at + timedelta(days=365)).isoformat().replace("+00:00", "Z")


def test_list_filters_search_and_ordering(api_for, scope):
    make_plan("a-dr", name="Alpha", status="active", applications=[scope["orders-api"]], primary_site=scope["fra1"])
    make_plan("b-dr", name="Beta", status="draft", applications=[scope["orders-api"], scope["orders-db"]])
    make_plan("c-dr", name="Gamma", status="archived", sites=[scope["fra1"]])
    client = api_for("viewer")

    def ids(query: str) -> list[str]:
        response = client.get(f"{URL}?{query}")
        assert response.status_code == 200, response.content
        return [p["plan_id"] for p in response.json()["results"]]

    assert ids("") == ["a-dr", "b-dr", "c-dr"]
    assert ids("status=active&status=draft") == ["a-dr", "b-dr"]
    assert ids("application=orders-api") == ["a-dr", "b-dr"]
    assert ids("site=fra1") == ["a-dr", "c-dr"]
    assert ids("search=gamma") == ["c-dr"]
    assert ids("ordering=-name") == ["c-dr", "b-dr", "a-dr"]
    assert client.get(f"{URL}?status=bogus").status_code == 400
    assert client.get(URL).json()["count"] == 3


def test_list_filtered_by_application_keeps_stats(api_for, scope):
    plan = make_plan("a-dr", applications=[scope["orders-api"], scope["orders-db"]])
    make_result(plan)
    make_result(plan, outcome="failed")
    body = api_for("viewer").get(f"{URL}?application=orders-api").json()
    assert body["results"][0]["tests_total"] == 2


def test_list_query_count_does_not_grow_with_page_size(api_for, scope):
    for i in range(60):
        plan = make_plan(
            f"plan-{i:02d}",
            applications=[scope["orders-api"], scope["orders-db"]],
            sites=[scope["fra1"]],
            primary_site=scope["fra1"],
            dr_site=scope["ams1"],
        )
        make_result(plan)
    client = api_for("viewer")
    client.get(URL)  # warm up the token/permission caches of this client's user

    counts = []
    for size in (5, 50):
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(f"{URL}?page_size={size}")
        assert response.status_code == 200
        assert len(response.json()["results"]) == size
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


def _plans_with_varied_results(count: int, prefix: str = "plan") -> list[DRPlan]:
    """`count` plans over every test frequency; some never tested, others with 1-4 results of mixed outcomes."""
    now = timezone.now()
    frequencies = ["monthly", "quarterly", "semi_annual", "annual"]
    outcomes = ["passed", "failed", "partial", "passed"]
    plans = []
    for i in range(count):
        plan = make_plan(f"{prefix}-{i:02d}", test_frequency=frequencies[i % 4])
        for k in range(i % 5):
            make_result(
                plan,
                outcome=outcomes[(i + k) % 4],
                test_date=now - timedelta(days=3 + 7 * k + i, microseconds=123 * i),
                actual_rto_seconds=100 + 10 * k if k % 2 == 0 else None,
                actual_rpo_seconds=5.5 * k if k else None,
            )
        plans.append(plan)
    return plans


STATISTICS = ("last_test_date", "next_test_due", "tests_total", "success_rate", "average_rto_seconds",
              "average_rpo_seconds")  # fmt: skip


@pytest.mark.parametrize("ordering", ["", "success_rate", "-next_test_due", "last_test_date,plan_id"])
def test_list_statistics_are_the_plans_own(api_for, db, ordering):
    """The list computes its page's statistics apart from the plan's own (plans_with_stats, what
    /plans/{id} shows); both must agree, whichever ordering picks the list's way of computing them."""
    _plans_with_varied_results(12)
    client = api_for("viewer")
    listed = client.get(URL, {"ordering": ordering} if ordering else {}).json()["results"]
    assert len(listed) == 12
    for row in listed:
        whole = client.get(f"{URL}/{row['id']}").json()
        assert {name: row[name] for name in STATISTICS} == {name: whole[name] for name in STATISTICS}
    ordered = client.get(URL, {"ordering": "success_rate,plan_id"}).json()["results"]
    rated = [(row["success_rate"], row["plan_id"]) for row in ordered if row["success_rate"] is not None]
    assert len(rated) == 9 and rated == sorted(rated)  # where NULLs go is the database's choice


@pytest.mark.parametrize("ordering", ["", "-success_rate"])
def test_list_queries_do_not_grow_with_the_number_of_plans(api_for, db, ordering, django_assert_max_num_queries):
    """No query per plan (N+1): token with its user, their permissions (two), count, page, the page's
    statistics (none when ordered by a statistic: the page query computes them)."""
    client = api_for("viewer")
    query = {"page_size": 50, **({"ordering": ordering} if ordering else {})}
    counts = []
    for total, prefix in ((1, "plan"), (40, "more")):
        for plan in _plans_with_varied_results(total - DRPlan.objects.count(), prefix):
            make_result(plan, outcome="failed")
        with django_assert_max_num_queries(6), CaptureQueriesContext(connection) as ctx:
            response = client.get(URL, query)
        assert response.status_code == 200
        assert len(response.json()["results"]) == total
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


def _drf_list_body(plans: list[DRPlan]) -> dict:
    """The page DRF's own machinery writes for `plans`: DRPlanSummarySerializer's fields through
    ModelSerializer.to_representation (not the list's shortcut), rendered by DRF's JSONRenderer."""
    from rest_framework.renderers import JSONRenderer
    from rest_framework.serializers import ModelSerializer

    from plans.api.serializers import DRPlanSummarySerializer
    from plans.selectors import plans_with_stats

    serializer = DRPlanSummarySerializer()
    rows = [
        ModelSerializer.to_representation(serializer, p)
        for p in plans_with_stats().filter(pk__in=[p.pk for p in plans]).order_by("plan_id")
    ]
    return json.loads(JSONRenderer().render({"count": len(rows), "next": None, "previous": None, "results": rows}))


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_list_writes_the_json_drf_writes_for_plans_with_every_field_set(api_for, db, settings, zone):
    """The list's shortcuts (rows as dicts, statistics by SQL, fields converted without DRF's per-field
    machinery, orjson) change nothing in the document: every field set, odd text, fractions, microseconds."""
    settings.TIME_ZONE = zone
    now = timezone.now().replace(microsecond=654321)
    full = make_plan(
        "a-full",
        name='Zürich \u2028 "quoted" \\ back\u2029slash — 東京',
        status="archived",
        strategy="pilot_light",
        replication_mode="synchronous",
        failover_mode="semi_automatic",
        rto_seconds=1800,
        rpo_seconds=0,
        test_frequency="semi_annual",
        compliance_status="partially_compliant",
    )
    for k, outcome in enumerate(("passed", "failed", "partial")):
        make_result(
            full,
            outcome=outcome,
            test_date=now - timedelta(days=10 * k, microseconds=7 * k),
            actual_rto_seconds=1000 / 3 + k,
            actual_rpo_seconds=0.1 * (k + 1),
        )
    untested = make_plan("b-untested", test_frequency="annual")
    response = api_for("viewer").get(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body == _drf_list_body([full, untested])
    row = body["results"][0]
    assert row["tests_total"] == 3 and row["success_rate"] == pytest.approx(1 / 3)
    assert None not in row.values()  # every field set


def test_list_indented_on_request_as_drf_indents_it(api_for, db):
    make_plan("a-dr")
    response = api_for("viewer").get(URL, HTTP_ACCEPT="application/json; indent=2")
    assert response.status_code == 200
    assert response.content.decode().startswith('{\n  "count": 1,')
    assert json.loads(response.content) == _drf_list_body([DRPlan.objects.get()])


def test_audit_entries_for_create_update_delete(api_for, users, scope):
    client = api_for("approver")
    plan_pk = client.post(URL, payload(), format="json").json()["id"]
    client.patch(f"{URL}/{plan_pk}", {"name": "Orders DR v2"}, format="json")
    client.delete(f"{URL}/{plan_pk}")

    entries = list(AuditEntry.objects.filter(object_type="plans.drplan", object_id=str(plan_pk)).order_by("seq"))
    assert [e.action for e in entries] == ["create", "update", "delete"]
    create, update, delete = entries
    assert create.before is None
    assert create.after["plan_id"] == "orders-dr"
    assert create.after["created_by"] == users["approver"].pk
    assert create.actor_username == "approver" and create.auth_method == "token"
    assert update.before["name"] == "Orders DR" and update.after["name"] == "Orders DR v2"
    assert delete.before["name"] == "Orders DR v2" and delete.after is None
