"""Issue 8's reproductions for runbooks: nobody approves a version they created, edited or submitted, and an
approved version — everything that decides how it runs — never changes and is never deleted.

Each test failed on the code before the fix; each asserts that a refused request changed nothing."""

from __future__ import annotations

import pytest

from core.models import AuditEntry
from failover.engine import graph
from plans.models import Application
from plans.tests.factories import make_plan
from runbooks import services
from runbooks.models import FrozenVersionError, Runbook, RunbookApproval, RunbookVersion
from runbooks.tests.factories import row_counts

pytestmark = pytest.mark.django_db
BASE = "/api/v1/dr/runbooks/"


def evidence() -> tuple:
    return (
        row_counts(),
        list(RunbookVersion.objects.order_by("pk").values_list("status", "name", "category", "application_id")),
        list(RunbookApproval.objects.order_by("pk").values_list("version_id", "user_id", "decision")),
        AuditEntry.objects.count(),
    )


@pytest.fixture
def people(make_user, users):
    return {"alice": make_user("alice", "approver"), "bob": make_user("bob", "approver"), **users}


def test_an_approver_who_edited_someone_elses_draft_cannot_approve_it(people, make_doc, applications, api_for):
    draft = services.import_runbook_document(make_doc(), actor=people["alice"])
    # bob rewrites alice's draft (the service behind the builder's and the API's PUT): he is now a contributor
    edited = make_doc(description="bob's steps now", steps=[{"id": "go", "action": "noop"}])
    services.update_draft(draft, edited, people["bob"])
    services.submit_for_approval(draft, people["alice"])
    before = evidence()
    with pytest.raises(services.PermissionDenied, match=r"bob created, edited or submitted test-failover@1\.0\.0"):
        services.decide(draft, people["bob"], "approve")
    with pytest.raises(services.PermissionDenied, match="alice created, edited or submitted"):
        services.decide(draft, people["alice"], "approve")
    assert evidence() == before
    # the third person approves; the API shows who may not
    services.decide(draft, people["approver"], "approve", "reviewed bob's change")
    detail = api_for("viewer").get(f"{BASE}test-failover/versions/1.0.0/").json()
    assert detail["status"] == "approved"
    assert sorted(detail["contributors"]) == ["alice", "bob"]


def test_the_submitter_cannot_approve_what_they_submitted(people, make_doc, applications, api_for):
    services.import_runbook_document(make_doc(), actor=people["alice"])
    response = api_for("approver").post(f"{BASE}test-failover/versions/1.0.0/submit/", {}, format="json")
    assert response.status_code == 200
    before = evidence()
    response = api_for("approver").post(f"{BASE}test-failover/versions/1.0.0/approve/", {}, format="json")
    assert response.status_code == 403
    assert "Separation of duties: approver created, edited or submitted" in response.json()["error"]["message"]
    assert evidence() == before


@pytest.fixture
def composed(people, make_doc, applications):
    """An approved failover runbook of orders-db, in a plan's scope."""
    version = services.import_runbook_document(make_doc(application="orders-db"), actor=people["alice"])
    services.submit_for_approval(version, people["alice"])
    services.decide(version, people["bob"], "approve")
    plan = make_plan("orders-dr", status="active", applications=[applications["orders-db"]])
    return plan, version


def test_category_and_application_are_frozen_with_the_approved_version(composed, people, make_doc, api_for):
    plan, approved = composed
    client = api_for("approver")
    before = evidence()
    for body in ({"category": "test"}, {"application": "orders-api"}):
        assert client.patch(f"{BASE}test-failover/", body, format="json").status_code == 405
    approved.refresh_from_db()
    with pytest.raises(FrozenVersionError, match=r"its content .*category.* cannot change"):
        approved.category = "test"
        approved.save()
    assert evidence() == before
    # A draft that moves the runbook to another category and application changes nothing until approved:
    services.import_runbook_document(
        make_doc(version="1.1.0", category="test", application="orders-api"), actor=people["alice"]
    )
    assert [(rb.slug, v.pk) for rb, v in graph.plan_runbook_versions(plan, "failover")] == [
        ("test-failover", approved.pk)
    ]
    assert client.get(f"{BASE}test-failover/").json()["category"] == "failover"


def test_an_approved_version_and_its_decisions_survive_any_delete(composed, api_for):
    before = evidence()
    response = api_for("admin").delete(f"{BASE}test-failover/")
    assert response.status_code == 409, response.content
    assert "evidence and cannot be deleted" in response.json()["error"]["message"]
    with pytest.raises(FrozenVersionError):
        Runbook.objects.get().delete()
    with pytest.raises(FrozenVersionError):
        RunbookVersion.objects.all().delete()
    assert api_for("admin").delete("/api/v1/dr/applications/orders-db/").status_code == 409
    assert Application.objects.filter(slug="orders-db").exists()
    assert evidence() == before


def test_a_rejected_version_keeps_its_decision(people, make_doc, applications, api_for):
    version = services.import_runbook_document(make_doc(), actor=people["alice"])
    services.submit_for_approval(version, people["alice"])
    services.decide(version, people["bob"], "reject", "no rollback step")
    before = evidence()
    assert api_for("admin").delete(f"{BASE}test-failover/").status_code == 409
    assert evidence() == before


@pytest.mark.parametrize("slug", ["42", "0"])
def test_a_runbook_slug_is_never_all_digits(slug, make_doc, applications, api_for):
    response = api_for("approver").post(f"{BASE}import/", {"document": make_doc(slug=slug)}, format="json")
    assert response.status_code == 400
    assert f"slug: '{slug}' is all digits" in response.json()["error"]["message"]
    assert row_counts() == (0, 0, 0, 0, 0)
