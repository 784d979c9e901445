"""Recovery strategies with nested steps, conditions and validation checks."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import AuditEntry
from plans.models import RecoveryStrategy, StrategyCondition, StrategyStep, ValidationCheck
from plans.tests.factories import make_plan, make_strategy

URL = "/api/v1/dr/recovery-strategies"


def payload(plan_pk: int, **extra):
    data = {
        "plan": plan_pk,
        "name": "Failover to AMS",
        "kind": "failover",
        "description": "Promote the replica",
        "rollback_trigger": "any_check_fails",
        "steps": [
            {"action": "Freeze writes", "estimated_duration_seconds": 60, "approval_required": True},
            {"action": "Promote replica", "automation_enabled": True, "automation_script": "promote.sh"},
        ],
        "conditions": [
            {"kind": "prerequisite", "description": "Replica lag < 5s"},
            {"kind": "blocker", "description": "Primary still serving"},
        ],
        "validation_checks": [
            {
                "name": "API latency",
                "check_type": "performance",
                "threshold": "250.000",
                "unit": "ms",
                "severity": "critical",
            }
        ],
    }
    data.update(extra)
    return data


def counts():
    return (
        RecoveryStrategy.objects.count(),
        StrategyStep.objects.count(),
        StrategyCondition.objects.count(),
        ValidationCheck.objects.count(),
        AuditEntry.objects.count(),
    )


def test_create_strategy_with_nested_rows(api_for, db):
    plan = make_plan("orders-dr")
    response = api_for("approver").post(URL, payload(plan.pk), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    strategy = RecoveryStrategy.objects.get()
    assert body == {
        "id": strategy.pk,
        "plan": plan.pk,
        "plan_slug": "orders-dr",
        "name": "Failover to AMS",
        "kind": "failover",
        "description": "Promote the replica",
        "rollback_trigger": "any_check_fails",
        "steps": [
            {
                "order": 1,
                "action": "Freeze writes",
                "description": "",
                "estimated_duration_seconds": 60,
                "automation_enabled": False,
                "automation_script": "",
                "approval_required": True,
            },
            {
                "order": 2,
                "action": "Promote replica",
                "description": "",
                "estimated_duration_seconds": 0,
                "automation_enabled": True,
                "automation_script": "promote.sh",
                "approval_required": False,
            },
        ],
        "conditions": [
            {"kind": "blocker", "description": "Primary still serving"},
            {"kind": "prerequisite", "description": "Replica lag < 5s"},
        ],
        "validation_checks": [
            {
                "name": "API latency",
                "check_type": "performance",
                "target": "",
                "threshold": "250.000",
                "unit": "ms",
                "severity": "critical",
            }
        ],
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    entry = AuditEntry.objects.get(object_type="plans.recoverystrategy")
    assert entry.action == "create"
    assert [s["action"] for s in entry.after["steps"]] == ["Freeze writes", "Promote replica"]
    assert len(entry.after["validation_checks"]) == 1


def test_explicit_step_orders_are_kept_and_sorted(api_for, db):
    plan = make_plan()
    steps = [{"order": 20, "action": "second"}, {"order": 10, "action": "first"}]
    response = api_for("approver").post(URL, payload(plan.pk, steps=steps), format="json")
    assert response.status_code == 201
    assert [(s["order"], s["action"]) for s in response.json()["steps"]] == [(10, "first"), (20, "second")]


def test_put_replaces_all_nested_rows(api_for, db):
    plan = make_plan()
    strategy = make_strategy(plan)
    data = payload(plan.pk, steps=[{"action": "Only step"}], conditions=[])
    del data["validation_checks"]  # omitted on PUT = replaced by nothing

    response = api_for("approver").put(f"{URL}/{strategy.pk}", data, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert [s["action"] for s in body["steps"]] == ["Only step"]
    assert body["conditions"] == [] and body["validation_checks"] == []
    assert StrategyStep.objects.count() == 1
    assert ValidationCheck.objects.count() == 0
    entry = AuditEntry.objects.get(object_type="plans.recoverystrategy", action="update")
    assert [s["action"] for s in entry.before["steps"]] == ["Stop writes", "Promote replica"]
    assert [s["action"] for s in entry.after["steps"]] == ["Only step"]


def test_patch_replaces_only_given_lists(api_for, db):
    strategy = make_strategy(make_plan())
    response = api_for("admin").patch(
        f"{URL}/{strategy.pk}", {"conditions": [{"kind": "blocker", "description": "Freeze"}]}, format="json"
    )
    assert response.status_code == 200
    assert [s["action"] for s in response.json()["steps"]] == ["Stop writes", "Promote replica"]
    assert response.json()["conditions"] == [{"kind": "blocker", "description": "Freeze"}]
    assert ValidationCheck.objects.count() == 1


BAD = [
    ("duplicate order", {"steps": [{"order": 1, "action": "a"}, {"order": 1, "action": "b"}]}, "steps[1].order"),
    ("step missing action", {"steps": [{"order": 1}]}, "steps[0].action"),
    (
        "negative duration",
        {"steps": [{"action": "a", "estimated_duration_seconds": -1}]},
        "steps[0].estimated_duration_seconds",
    ),
    ("zero order", {"steps": [{"action": "a", "order": 0}]}, "steps[0].order"),
    ("bad condition kind", {"conditions": [{"kind": "maybe", "description": "x"}]}, "conditions[0].kind"),
    (
        "bad severity",
        {"validation_checks": [{"name": "c", "check_type": "performance", "severity": "meh"}]},
        "validation_checks[0].severity",
    ),
    (
        "threshold not a number",
        {"validation_checks": [{"name": "c", "check_type": "performance", "threshold": "fast"}]},
        "validation_checks[0].threshold",
    ),
    ("steps not a list", {"steps": {"action": "a"}}, "steps.non_field_errors"),
    ("unknown plan", {"plan": 999999}, "plan"),
    ("plan wrong type", {"plan": "orders-dr"}, "plan"),
    ("bad kind", {"kind": "sideways"}, "kind"),
]


@pytest.mark.parametrize(("case", "change", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_nested_input_is_400_and_stores_nothing(api_for, db, case, change, field):
    plan = make_plan()
    before = counts()
    response = api_for("approver").post(URL, payload(plan.pk, **change), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert counts() == before


def test_bad_put_keeps_existing_rows(api_for, db):
    strategy = make_strategy(make_plan())
    before = counts()
    data = payload(strategy.plan_id, steps=[{"order": 2, "action": "a"}, {"order": 2, "action": "b"}])
    response = api_for("approver").put(f"{URL}/{strategy.pk}", data, format="json")
    assert response.status_code == 400
    assert counts() == before
    assert list(strategy.steps.values_list("action", flat=True)) == ["Stop writes", "Promote replica"]


def test_duplicate_name_in_plan_is_409(api_for, db):
    strategy = make_strategy(make_plan(), name="Failover to AMS")
    response = api_for("approver").post(URL, payload(strategy.plan_id), format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert "non_field_errors" in response.json()["error"]["fields"]
    assert RecoveryStrategy.objects.count() == 1


def test_filters_by_plan_and_kind(api_for, db):
    plan_a, plan_b = make_plan("a-dr"), make_plan("b-dr")
    make_strategy(plan_a, "Failover", kind="failover")
    make_strategy(plan_a, "Failback", kind="failback")
    make_strategy(plan_b, "Restore", kind="restore")
    client = api_for("viewer")

    def names(query: str) -> list[str]:
        return [s["name"] for s in client.get(f"{URL}?{query}").json()["results"]]

    assert names("") == ["Failback", "Failover", "Restore"]
    assert names(f"plan={plan_a.pk}") == ["Failback", "Failover"]
    assert names("kind=restore") == ["Restore"]
    assert names("plan_slug=a-dr&kind=failover") == ["Failover"]


def test_strategy_list_query_count_is_constant(api_for, db):
    plan = make_plan()
    for i in range(12):
        make_strategy(plan, f"s{i:02d}")
    client = api_for("viewer")
    client.get(URL)
    sizes = []
    for size in (2, 12):
        with CaptureQueriesContext(connection) as ctx:
            assert len(client.get(f"{URL}?page_size={size}").json()["results"]) == size
        sizes.append(len(ctx.captured_queries))
    assert sizes[0] == sizes[1]
