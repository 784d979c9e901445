"""Drafts, immutability and the multi-level approval flow."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from core.exceptions import Conflict, PermissionDenied
from core.models import AuditEntry
from runbooks import documents, services
from runbooks.choices import VersionStatus
from runbooks.models import ApprovalLevel, FrozenVersionError, RunbookApproval, RunbookParameter, RunbookVersion
from runbooks.tests.factories import row_counts

BASE = "/api/v1/dr/runbooks/"


@pytest.fixture
def author(users):
    return users["approver"]


@pytest.fixture
def people(make_user):
    """Approvers beyond the shared role users: two more DR managers and a second admin."""
    return {
        "mgr1": make_user("mgr1", "approver"),
        "mgr2": make_user("mgr2", "approver"),
        "boss1": make_user("boss1", "admin"),
    }


def imported(make_doc, author, **overrides) -> RunbookVersion:
    return services.import_runbook_document(make_doc(**overrides), actor=author)


def test_import_is_audited_and_authored(make_doc, author) -> None:
    version = imported(make_doc, author)
    assert version.created_by == author
    actions = list(AuditEntry.objects.order_by("seq").values_list("action", "object_type"))
    assert actions == [("create", "runbooks.runbook"), ("import", "runbooks.runbookversion")]


def test_single_level_flow_and_superseding(make_doc, author, people, users) -> None:
    v1 = imported(make_doc, author)
    with pytest.raises(Conflict, match="only versions pending approval"):
        services.decide(v1, people["mgr1"], "approve")
    services.submit_for_approval(v1, author)
    with pytest.raises(
        PermissionDenied, match=r"Separation of duties: approver created, edited or submitted test-failover@1\.0\.0"
    ):
        services.decide(v1, author, "approve")
    with pytest.raises(PermissionDenied, match="approve_runbookversion"):
        services.decide(v1, users["operator"], "approve")
    services.decide(v1, people["mgr1"], "approve", "looks good")
    v1.refresh_from_db()
    assert v1.status == VersionStatus.APPROVED and v1.approved_at is not None

    v2 = services.create_draft(v1, author)
    assert (v2.version, v2.status) == ("1.0.1", VersionStatus.DRAFT)
    assert documents.version_content(documents.document_from_version(v2)) == {
        **documents.version_content(documents.document_from_version(v1)),
        "version": "1.0.1",
    }
    with pytest.raises(Conflict, match=r"already has a draft \(1.0.1\)"):
        services.create_draft(v1, author)
    services.submit_for_approval(v2, author)
    services.decide(v2, people["mgr2"], "approve")
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v1.status, v2.status) == (VersionStatus.SUPERSEDED, VersionStatus.APPROVED)
    entry = AuditEntry.objects.filter(object_type="runbooks.runbookversion", object_id=str(v1.pk)).first()
    assert (entry.before, entry.after["status"]) == ({"status": "approved"}, "superseded")


def test_two_level_flow(make_doc, author, people, users) -> None:
    approvals = [{"level": 1, "role": "approver"}, {"level": 2, "role": "admin", "approvers": 2}]
    version = imported(make_doc, author, approvals=approvals)
    services.submit_for_approval(version, author)

    # Level order: an admin-only holder may not act while level 1 is open.
    Group.objects.get(name="admin").user_set.add(people["mgr2"])
    people["mgr2"].groups.remove(Group.objects.get(name="approver"))
    people["mgr2"].is_superuser = False
    people["mgr2"].save()
    mgr2 = type(people["mgr2"]).objects.get(pk=people["mgr2"].pk)  # fresh permission cache
    with pytest.raises(Conflict, match=r"Level 1 \(approver\) must be approved before level 2 \(admin\)"):
        services.decide(version, mgr2, "approve")

    services.decide(version, people["mgr1"], "approve")
    # mgr1 holds only the approver role: level 2 needs admin.
    with pytest.raises(Conflict, match="already decided"):
        services.decide(version, people["mgr1"], "approve")
    other_manager = users["approver"].__class__.objects.create_user("mgr3")
    other_manager.groups.add(Group.objects.get(name="approver"))
    with pytest.raises(
        PermissionDenied, match=r"Level 2 of test-failover@1\.0\.0 must be decided by a holder of role 'admin'"
    ):
        services.decide(version, other_manager, "approve")

    services.decide(version, users["admin"], "approve")
    version.refresh_from_db()
    assert version.status == VersionStatus.PENDING_APPROVAL  # level 2 needs two distinct admins
    services.decide(version, people["boss1"], "approve")
    version.refresh_from_db()
    assert version.status == VersionStatus.APPROVED
    assert list(version.decisions.values_list("level", "user__username", "decision")) == [
        (1, "mgr1", "approve"),
        (2, "admin", "approve"),
        (2, "boss1", "approve"),
    ]


def test_rejection_ends_the_flow(make_doc, author, people) -> None:
    version = imported(make_doc, author, approvals=[{"role": "approver"}, {"role": "admin"}])
    services.submit_for_approval(version, author)
    with pytest.raises(Exception, match="a rejection needs a comment"):
        services.decide(version, people["mgr1"], "reject", "  ")
    services.decide(version, people["mgr1"], "reject", "step 2 lacks a rollback")
    version.refresh_from_db()
    assert version.status == VersionStatus.REJECTED
    with pytest.raises(Conflict, match="is rejected"):
        services.decide(version, people["boss1"], "approve")
    rejected = AuditEntry.objects.filter(action="reject", object_type="runbooks.runbookversion").get()
    assert rejected.comment == "step 2 lacks a rollback"
    # A rejected version is still not editable; a new draft is.
    with pytest.raises(Conflict, match="only drafts can be edited"):
        services.update_draft(version, make_doc(), people["mgr1"])
    draft = services.create_draft(version, people["mgr1"])
    assert draft.version == "1.0.1"


def test_concurrent_transitions_cannot_both_win(make_doc, author, people) -> None:
    version = imported(make_doc, author)
    services.submit_for_approval(version, author)
    stale_a = RunbookVersion.objects.get(pk=version.pk)
    stale_b = RunbookVersion.objects.get(pk=version.pk)
    entries = AuditEntry.objects.count()
    services.transition(stale_a, VersionStatus.APPROVED, actor=people["mgr1"])
    assert (
        RunbookVersion.objects.filter(pk=version.pk, status=VersionStatus.PENDING_APPROVAL).update(
            status=VersionStatus.APPROVED
        )
        == 0
    )
    with pytest.raises(Conflict, match="is approved; it cannot become rejected"):
        services.transition(stale_b, VersionStatus.REJECTED, actor=people["mgr2"])
    assert AuditEntry.objects.count() == entries + 1


def test_losing_decision_records_nothing(make_doc, author, people, django_capture_on_commit_callbacks) -> None:
    version = imported(make_doc, author)
    services.submit_for_approval(version, author)
    stale = RunbookVersion.objects.get(pk=version.pk)
    services.decide(version, people["mgr1"], "approve")
    entries, decisions = AuditEntry.objects.count(), RunbookApproval.objects.count()
    with pytest.raises(Conflict, match="is approved"):
        services.decide(stale, people["mgr2"], "reject", "too late")
    assert (AuditEntry.objects.count(), RunbookApproval.objects.count()) == (entries, decisions)


def test_orm_refuses_changes_to_frozen_versions(make_doc, author) -> None:
    version = imported(make_doc, author, approvals=[{"role": "approver"}])
    step = version.steps.get(step_id="promote")
    step.title = "fine while draft"
    step.save()
    services.submit_for_approval(version, author)
    before = row_counts()
    step.title = "sneaky"
    with pytest.raises(FrozenVersionError, match="Cannot change runbook step of a pending_approval runbook version"):
        step.save()
    with pytest.raises(FrozenVersionError):
        step.delete()
    param = version.parameters.get()
    with pytest.raises(FrozenVersionError):
        param.delete()
    with pytest.raises(FrozenVersionError):
        RunbookParameter(version=version, name="new").save()
    with pytest.raises(FrozenVersionError):
        ApprovalLevel.objects.get(version=version).delete()
    version.description = "rewritten"
    with pytest.raises(FrozenVersionError, match=r"content \(description\) cannot change"):
        version.save()
    with pytest.raises(FrozenVersionError, match="cannot be deleted"):
        version.delete()
    assert row_counts() == before
    assert version.steps.get(step_id="promote").title == "fine while draft"


@pytest.fixture
def pending(api_for, make_doc, users, people):
    version = imported(make_doc, users["approver"], approvals=[{"role": "approver"}, {"role": "admin"}])
    services.submit_for_approval(version, users["approver"])
    return version


def test_api_approval_flow(pending, api_for, people) -> None:
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def client_for(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        return client

    url = f"{BASE}{pending.runbook_id}/versions/1.0.0/"
    response = api_for("approver").post(url + "approve/", {}, format="json")  # the author
    assert response.status_code == 403
    assert response.json()["error"]["message"].startswith("Separation of duties")
    assert api_for("viewer").post(url + "approve/", {}, format="json").status_code == 403
    assert api_for("operator").post(url + "approve/", {}, format="json").status_code == 403
    assert api_for("auditor").post(url + "reject/", {"comment": "no"}, format="json").status_code == 403
    assert RunbookApproval.objects.count() == 0

    response = api_for("admin").post(url + "approve/", {"comment": "ok"}, format="json")  # superuser: level 1
    assert response.status_code == 200
    assert response.json()["decisions"][0]["user"] == "admin"
    response = client_for(people["mgr1"]).post(url + "approve/", {}, format="json")  # level 2 needs admin
    assert response.status_code == 403
    assert "role 'admin'" in response.json()["error"]["message"]
    response = client_for(people["boss1"]).post(url + "approve/", {"comment": "ship it"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    assert response.json()["approved_at"] is not None
    assert [(d["level"], d["user"]) for d in response.json()["decisions"]] == [(1, "admin"), (2, "boss1")]
    assert AuditEntry.objects.filter(action="approve", actor_username="boss1").count() == 2  # decision + transition


def test_api_rejects_edits_of_frozen_versions(pending, api_for, make_doc) -> None:
    url = f"{BASE}{pending.runbook_id}/versions/1.0.0/"
    client = api_for("admin")
    before = row_counts()
    response = client.put(url, make_doc(description="edited"), format="json")
    assert response.status_code == 409
    assert "only drafts can be edited" in response.json()["error"]["message"]
    assert client.post(url + "submit/", {}, format="json").status_code == 409
    assert row_counts() == before
    # Editing = a new draft version, from the latest by default.
    response = client.post(f"{BASE}{pending.runbook_id}/versions/", {}, format="json")
    assert response.status_code == 201
    assert (response.json()["version"], response.json()["status"]) == ("1.0.1", "draft")
    draft_url = f"{BASE}{pending.runbook_id}/versions/1.0.1/"
    response = client.put(draft_url, make_doc(description="edited"), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"version": ["'1.0.0' does not match this draft's version '1.0.1'"]}
    doc = make_doc(description="edited")
    del doc["version"]
    response = client.put(draft_url, doc, format="json")
    assert response.status_code == 200
    assert response.json()["description"] == "edited"
    assert response.json()["content_hash"] == documents.content_hash(
        documents.normalise(make_doc(description="edited", version="1.0.1"))
    )
    assert client.post(f"{BASE}{pending.runbook_id}/versions/", {}, format="json").status_code == 409
    response = client.post(
        f"{BASE}{pending.runbook_id}/versions/", {"from_version": "1.0.0", "version": "1.0.1"}, format="json"
    )
    assert response.status_code == 409


def test_api_new_version_from_document(pending, api_for, make_doc) -> None:
    doc = make_doc(version="2.0.0")
    del doc["slug"]
    response = api_for("admin").post(f"{BASE}{pending.runbook_id}/versions/", {"document": doc}, format="json")
    assert response.status_code == 201
    other = api_for("admin").post(f"{BASE}{pending.runbook_id}/versions/", make_doc(slug="other"), format="json")
    assert other.status_code == 400
    assert other.json()["error"]["fields"] == {"slug": ["the document is for runbook 'other', not 'test-failover'"]}
