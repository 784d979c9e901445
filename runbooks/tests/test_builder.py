"""The visual runbook builder: page access per role, the actions endpoint, saving through the
API path the page uses, the error shape the page parses, and approvals in the page and admin."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from core.models import AuditEntry
from runbooks import actions, selectors, services
from runbooks.choices import VersionStatus
from runbooks.models import ApprovalLevel, RunbookApproval, RunbookVersion
from runbooks.tests.factories import row_counts

NEW = "/builder/runbooks/new/"
EDIT = "/builder/runbooks/test-failover/"
API = "/api/v1/dr/runbooks"
# What builder.js expects of a step's error in the API's message (STEP_PART in builder.js).
STEP_PART = re.compile(r"^steps\[(\d+)\](?: \(([^)]*)\))?(?:\.(.+?))?: (.*)$")


@pytest.fixture
def version(make_doc, users) -> RunbookVersion:
    return services.import_runbook_document(make_doc(), actor=users["approver"])


def browser(user, csrf: bool = True) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def config_of(response) -> dict:
    match = re.search(r'<script id="builder-config" type="application/json">(.*?)</script>', response.content.decode())
    return json.loads(match.group(1))


# --- The actions endpoint --------------------------------------------------------------------


def test_actions_endpoint_lists_every_action_with_its_schema(api_for) -> None:
    response = api_for("viewer").get("/api/v1/dr/actions")
    assert response.status_code == 200
    body = response.json()
    assert [a["name"] for a in body] == actions.action_names()
    shell = next(a for a in body if a["name"] == "shell")
    assert shell["description"] == actions.get_action("shell").description
    assert shell["params_schema"] == actions.get_action("shell").params_schema
    assert shell["params_schema"]["required"] == ["argv"]


def test_actions_endpoint_one_action_and_errors(api_for) -> None:
    assert api_for("operator").get("/api/v1/dr/actions/wait/").json()["params_schema"]["required"] == ["seconds"]
    dotted = api_for("operator").get("/api/v1/dr/actions/aws.ec2_start/")
    assert dotted.status_code == 200 and dotted.json()["name"] == "aws.ec2_start"
    dotted = api_for("operator").get("/api/v1/dr/actions/redis.promote/")
    assert dotted.status_code == 200 and dotted.json()["name"] == "redis.promote"
    promote = api_for("viewer").get("/api/v1/dr/actions/postgres.promote/")
    assert promote.status_code == 200 and promote.json()["params_schema"]["required"] == ["dsn_secret"]
    missing = api_for("operator").get("/api/v1/dr/actions/teleport")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert api_for(None).get("/api/v1/dr/actions").status_code == 401


# --- Page access per role --------------------------------------------------------------------


def test_anonymous_users_are_sent_to_sign_in(db) -> None:
    for url in (NEW, EDIT):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"] == f"/admin/login/?next={url}"


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("operator", 403), ("auditor", 403), ("approver", 200)])
def test_new_page_needs_the_add_permission(users, role, status) -> None:
    response = browser(users[role]).get(NEW)
    assert response.status_code == status
    if status == 200:
        config = config_of(response)
        assert (config["mode"], config["can_edit"]) == ("new", True)
        assert config["urls"]["import"] == f"{API}/import"
        assert 'id="save"' in response.content.decode()


@pytest.mark.parametrize(
    ("role", "editable"),
    [("viewer", False), ("operator", False), ("approver", True), ("auditor", False), ("admin", True)],
)
def test_edit_page_is_read_only_without_the_add_permission(users, version, role, editable) -> None:
    response = browser(users[role]).get(EDIT)
    assert response.status_code == 200
    html = response.content.decode()
    config = config_of(response)
    assert config["can_edit"] is editable
    assert ('id="save"' in html) is editable
    assert ('id="read-only-note"' in html) is not editable
    assert ("palette-item" in html) is editable
    assert config["doc"]["steps"][1]["id"] == "promote"
    assert (config["version"]["version"], config["next_version"]) == ("1.0.0", "1.0.1")
    assert config["urls"]["versions"] == f"{API}/test-failover/versions"
    assert config["server_critical_path"] == {"steps": ["check", "promote", "validate"], "seconds": 0, "human": "0 s"}


def builder_buttons(html: str) -> list[str]:
    """The role-aware controls of the builder page that are present."""
    controls = {
        "save": 'id="save"',
        "submit": 'id="submit"',
        "approve": 'data-decide="approve"',
        "reject": 'data-decide="reject"',
        "palette": "palette-item",
        "load document": 'id="import-yaml"',
        "import from another tool": 'id="foreign-import"',
    }
    return sorted(name for name, marker in controls.items() if marker in html)


EDITING = ["save", "palette", "load document", "import from another tool"]
# The controls per role on a draft and on a version waiting for approval, both authored by another approver.
BUILDER_BUTTONS = {
    "viewer": {"draft": [], "pending": []},
    "operator": {"draft": [], "pending": []},
    "approver": {
        "draft": ["save", "submit", "palette", "load document", "import from another tool"],
        "pending": [*EDITING, "approve", "reject"],
    },
    "auditor": {"draft": [], "pending": []},
    "admin": {
        "draft": ["save", "submit", "palette", "load document", "import from another tool"],
        "pending": [*EDITING, "approve", "reject"],
    },
}


@pytest.mark.parametrize("role", list(BUILDER_BUTTONS))
def test_builder_buttons_per_role(users, make_doc, make_user, role) -> None:
    author = make_user("author", "approver")
    services.import_runbook_document(make_doc(), actor=author)
    pending = services.import_runbook_document(make_doc(slug="pending-failover", name="Pending"), actor=author)
    services.submit_for_approval(pending, author)
    client = browser(users[role])
    assert builder_buttons(client.get(EDIT).content.decode()) == sorted(BUILDER_BUTTONS[role]["draft"])
    pending_page = client.get("/builder/runbooks/pending-failover/").content.decode()
    assert builder_buttons(pending_page) == sorted(BUILDER_BUTTONS[role]["pending"])


def test_edit_page_unknown_runbook_or_version_is_404(users, version) -> None:
    client = browser(users["viewer"])
    assert client.get("/builder/runbooks/nope/").status_code == 404
    assert client.get(EDIT + "?version=9.9.9").status_code == 404
    assert client.get(EDIT + "?version=1.0.0").status_code == 200


def test_user_without_any_role_gets_403(make_user, version) -> None:
    assert browser(make_user("nobody")).get(EDIT).status_code == 403


# --- Saving through the same API path the page uses ------------------------------------------


def _csrf(client: Client, url: str) -> str:
    client.get(url)
    return client.cookies["csrftoken"].value


def test_saving_from_the_page_creates_a_new_draft_version(users, version, make_doc) -> None:
    client = browser(users["admin"])
    token = _csrf(client, EDIT)
    doc = make_doc(version="1.0.1")
    doc["steps"].append({"id": "notify", "action": "noop", "needs": ["validate"], "estimated_duration": "2m"})
    response = client.post(f"{API}/test-failover/versions", json.dumps(doc), "application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    assert (response.json()["version"], response.json()["status"]) == ("1.0.1", "draft")
    draft = RunbookVersion.objects.get(runbook__slug="test-failover", version="1.0.1")
    assert draft.status == VersionStatus.DRAFT and draft.created_by == users["admin"]
    assert list(draft.steps.values_list("step_id", flat=True)) == ["check", "promote", "validate", "notify"]
    page = config_of(client.get(EDIT))
    assert (page["version"]["version"], page["next_version"]) == ("1.0.1", "1.0.2")
    assert page["server_critical_path"]["steps"] == ["check", "promote", "validate", "notify"]
    assert page["server_critical_path"]["seconds"] == 120


def test_a_new_runbook_is_saved_through_import(users, make_doc) -> None:
    client = browser(users["approver"])
    token = _csrf(client, NEW)
    response = client.post(f"{API}/import", json.dumps(make_doc()), "application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    assert RunbookVersion.objects.get(runbook__slug="test-failover").status == VersionStatus.DRAFT


def test_saving_without_the_csrf_token_is_refused(users, version, make_doc) -> None:
    before = row_counts()
    client = browser(users["approver"])
    response = client.post(f"{API}/test-failover/versions", json.dumps(make_doc(version="1.0.1")), "application/json")
    assert response.status_code == 403
    assert row_counts() == before


@pytest.mark.parametrize("role", ["viewer", "operator", "auditor"])
def test_read_only_roles_get_403_when_forging_a_save(users, version, make_doc, role) -> None:
    before = row_counts()
    client = browser(users[role])
    token = _csrf(client, EDIT)
    body = json.dumps(make_doc(version="1.0.1"))
    response = client.post(f"{API}/test-failover/versions", body, "application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    response = client.post(
        f"{API}/import", json.dumps(make_doc(slug="forged")), "application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 403
    assert row_counts() == before


def test_server_errors_name_the_step_and_field_as_the_page_expects(users, version, make_doc) -> None:
    before = row_counts()
    client = browser(users["approver"])
    token = _csrf(client, EDIT)
    doc = make_doc(version="1.0.1")
    doc["steps"][1]["with"] = {"argv": "pg_ctl promote"}
    doc["steps"][2]["with"] = {"url": "ftp://nope"}
    response = client.post(f"{API}/test-failover/versions", json.dumps(doc), "application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 400
    error = response.json()["error"]
    parts = [STEP_PART.match(part) for part in error["message"].split("; ")]
    assert [(m.group(1), m.group(2), m.group(3)) for m in parts] == [
        ("1", "promote", "with.argv"),
        ("2", "validate", "with.url"),
    ]
    assert parts[0].group(4) == "'pg_ctl promote' must be a list, not a string"
    assert row_counts() == before


def test_submit_and_decide_from_the_page(users, version, make_user) -> None:
    author = browser(users["approver"])
    token = _csrf(author, EDIT)
    response = author.post(
        f"{API}/test-failover/versions/1.0.0/submit", "{}", "application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200 and response.json()["status"] == "pending_approval"
    page = author.get(EDIT).content.decode()
    assert 'id="decide-form"' not in page and "You created, edited or submitted this version" in page

    second = make_user("mgr2", "approver")
    client = browser(second)
    page = client.get(EDIT).content.decode()
    assert 'id="decide-form"' in page and "No approval levels" in page
    token = client.cookies["csrftoken"].value
    response = client.post(
        f"{API}/test-failover/versions/1.0.0/approve", '{"comment": "ok"}', "application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200 and response.json()["status"] == "approved"
    page = client.get(EDIT).content.decode()
    assert "✔ approved level 1 by <strong>mgr2</strong>" in page and 'id="decide-form"' not in page


# --- Approval overview (the hints the page shows) ----------------------------------------------


def test_approval_overview_follows_levels_and_people(users, make_doc, make_user) -> None:
    doc = make_doc(approvals=[{"role": "approver", "approvers": 2}, {"role": "admin"}])
    version = services.import_runbook_document(doc, actor=users["approver"])
    mgr1, mgr2 = make_user("mgr1", "approver"), make_user("mgr2", "approver")
    draft = selectors.approval_overview(version, mgr1)
    assert [lv["state"] for lv in draft["levels"]] == ["open", "open"] and draft["may_decide"] is False
    services.submit_for_approval(version, users["approver"])

    overview = selectors.approval_overview(version, mgr1)
    assert [(lv["level"], lv["state"]) for lv in overview["levels"]] == [(1, "current"), (2, "waiting")]
    assert (overview["may_decide"], overview["current_level"]) == (True, 1)
    assert selectors.approval_overview(version, users["approver"])["may_decide"] is False
    assert selectors.approval_overview(version, users["viewer"])["reason"].startswith("You do not hold")

    services.decide(version, mgr1, "approve")
    again = selectors.approval_overview(version, mgr1)
    assert again["levels"][0]["approvers"] == ["mgr1"] and again["may_decide"] is False
    assert "already decided" in again["reason"]
    services.decide(version, mgr2, "approve")
    boss = selectors.approval_overview(version, users["admin"])
    assert [lv["state"] for lv in boss["levels"]] == ["approved", "current"] and boss["may_decide"] is True
    assert selectors.approval_overview(version, make_user("mgr3", "approver"))["reason"] == (
        "Level 2 must be decided by a holder of role 'admin'."
    )


# --- Django Admin: submit / approve / reject through the services -----------------------------


def admin_url(version: RunbookVersion) -> str:
    return f"/admin/runbooks/runbookversion/{version.pk}/approval/"


def test_admin_approval_page_respects_separation_of_duties(users, version, make_user) -> None:
    ApprovalLevel.objects.create(version=version, level=1, role="approver", min_approvers=1)
    ApprovalLevel.objects.create(version=version, level=2, role="admin", min_approvers=1)
    author = browser(users["approver"], csrf=False)
    author.post(admin_url(version), {"decision": "submit"})
    version.refresh_from_db()
    assert version.status == VersionStatus.PENDING_APPROVAL

    # The author may not approve their own version.
    response = author.post(admin_url(version), {"decision": "approve"}, follow=True)
    assert "Separation of duties" in response.content.decode()
    # Level 2 (admin) cannot decide before level 1 (boss holds the admin role only, not as superuser).
    boss = make_user("boss")
    boss.groups.add(Group.objects.get(name="admin"))
    response = browser(boss, csrf=False).post(admin_url(version), {"decision": "approve"}, follow=True)
    assert "Level 1 (approver) must be approved before level 2 (admin)" in response.content.decode()
    # A viewer holds no approval permission.
    browser(users["viewer"], csrf=False).post(admin_url(version), {"decision": "approve"})
    assert RunbookApproval.objects.count() == 0

    mgr = make_user("mgr", "approver")
    browser(mgr, csrf=False).post(admin_url(version), {"decision": "approve", "comment": "fine"})
    # The same person cannot also decide level 2 (mgr is not an admin anyway; an admin-approver can't repeat).
    response = browser(mgr, csrf=False).post(admin_url(version), {"decision": "approve"}, follow=True)
    assert "already decided" in response.content.decode()
    browser(boss, csrf=False).post(admin_url(version), {"decision": "approve"})
    version.refresh_from_db()
    assert version.status == VersionStatus.APPROVED
    assert list(version.decisions.values_list("level", "user__username")) == [(1, "mgr"), (2, "boss")]
    audited = AuditEntry.objects.filter(auth_method="session", action__in=["submit", "approve"])
    assert sorted(audited.values_list("action", "actor_username")) == [
        ("approve", "boss"),
        ("approve", "boss"),  # the decision, and the version's transition to approved
        ("approve", "mgr"),
        ("submit", "approver"),
    ]


def test_admin_reject_needs_a_comment(users, version, make_user) -> None:
    services.submit_for_approval(version, users["approver"])
    mgr = browser(make_user("mgr", "approver"), csrf=False)
    response = mgr.post(admin_url(version), {"decision": "reject"}, follow=True)
    assert "a rejection needs a comment" in response.content.decode()
    version.refresh_from_db()
    assert version.status == VersionStatus.PENDING_APPROVAL
    mgr.post(admin_url(version), {"decision": "reject", "comment": "step 2 is wrong"})
    version.refresh_from_db()
    assert version.status == VersionStatus.REJECTED


def test_admin_page_shows_levels_and_the_decide_form_only_to_who_may_decide(users, version, make_user) -> None:
    services.submit_for_approval(version, users["approver"])
    html = browser(make_user("mgr", "approver")).get(admin_url(version)).content.decode()
    assert "▶ deciding now" not in html  # no levels: one approval by any approver
    assert 'value="approve"' in html and 'value="reject"' in html
    html = browser(users["approver"]).get(admin_url(version)).content.decode()
    assert 'value="approve"' not in html and "You created, edited or submitted this version" in html


def test_admin_list_actions_go_through_the_services(users, version, make_user) -> None:
    changelist = "/admin/runbooks/runbookversion/"
    author = browser(users["approver"], csrf=False)
    author.post(changelist, {"action": "submit_selected", "_selected_action": [version.pk]})
    version.refresh_from_db()
    assert version.status == VersionStatus.PENDING_APPROVAL
    response = author.post(changelist, {"action": "approve_selected", "_selected_action": [version.pk]}, follow=True)
    assert "Separation of duties" in response.content.decode()
    version.refresh_from_db()
    assert version.status == VersionStatus.PENDING_APPROVAL
    browser(make_user("mgr", "approver"), csrf=False).post(
        changelist, {"action": "approve_selected", "_selected_action": [version.pk]}
    )
    version.refresh_from_db()
    assert version.status == VersionStatus.APPROVED


def test_admin_list_actions_are_offered_by_permission(users, version) -> None:
    html = browser(users["operator"]).get("/admin/runbooks/runbookversion/").content.decode()
    assert "submit_selected" not in html and "approve_selected" not in html
    html = browser(users["approver"]).get("/admin/runbooks/runbookversion/").content.decode()
    assert "submit_selected" in html and "approve_selected" in html


def test_the_builder_imports_another_tools_file(users) -> None:
    """The builder's "Import from another tool" form: a multipart upload with the session's CSRF token."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from runbooks.tests.import_support import read

    text, filename = read("rundeck/rundeck-functional-test_test-copyfile-job1.yaml", copied=True)
    client = browser(users["approver"])
    token = _csrf(client, NEW)
    page = client.get(NEW).content.decode()
    assert 'id="foreign-form"' in page and '<option value="rundeck">' in page
    upload = {"file": SimpleUploadedFile(filename, text.encode()), "format": "rundeck"}
    refused = client.post(f"{API}/import", upload)
    assert refused.status_code == 403 and not RunbookVersion.objects.exists()  # no CSRF token
    upload["file"].seek(0)
    response = client.post(f"{API}/import", upload, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["provenance"]["report"]["summary"] == {"converted": 6, "manual": 1, "dropped": 2}
    page = client.get(f"/builder/runbooks/{body['slug']}/?version={body['version']}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Imported from rundeck (rundeck-functional-test_test-copyfile-job1.yaml)" in html
    assert html.count('class="outcome-') == 9 and html.count('class="outcome-manual"') == 1
    assert "copyfile has no DRPlan action" in html
