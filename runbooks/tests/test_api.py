"""Import/export/versions through the API, and bad input rejected without storing anything."""

from __future__ import annotations

import json

import pytest
import yaml

from core.models import AuditEntry
from runbooks import documents
from runbooks.models import Runbook, RunbookVersion
from runbooks.tests.factories import row_counts

BASE = "/api/v1/dr/runbooks/"


@pytest.fixture
def approver(api_for, applications):
    return api_for("approver")


def post_yaml(client, url: str, doc: dict | str):
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
    return client.post(url, data=text, content_type="application/yaml")


def test_import_raw_yaml_creates_runbook_and_draft(approver, make_doc, users) -> None:
    response = post_yaml(approver, BASE + "import/", make_doc(application="orders-db"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "test-failover"
    assert body["version"] == "1.0.0"
    assert body["status"] == "draft"
    assert body["created_by"] == "approver"
    assert [s["step_id"] for s in body["steps"]] == ["check", "promote", "validate"]
    assert body["steps"][2]["needs"] == ["promote"]
    assert body["steps"][2]["timeout_seconds"] == 90
    version = RunbookVersion.objects.get(runbook__slug="test-failover")
    assert (version.name, version.category, version.application.slug) == ("Test failover", "failover", "orders-db")
    assert (body["name"], body["category"], body["application"]) == ("Test failover", "failover", "orders-db")
    entry = AuditEntry.objects.filter(action="import").get()
    assert entry.object_type == "runbooks.runbookversion"
    assert entry.actor_username == "approver"
    assert entry.auth_method == "token"
    assert entry.after["content_hash"] == body["content_hash"]


def test_import_wrapped_json_and_raw_json(approver, make_doc) -> None:
    wrapped = {"document": yaml.safe_dump(make_doc())}
    assert approver.post(BASE + "import/", wrapped, format="json").status_code == 201
    # Same content again (raw JSON this time): idempotent, 200, nothing new.
    before = row_counts()
    response = approver.post(BASE + "import/", json.dumps(make_doc()), content_type="application/json")
    assert response.status_code == 200
    assert row_counts() == before


def test_post_runbooks_is_import(approver, make_doc) -> None:
    response = approver.post(BASE, make_doc(slug="via-post"), format="json")
    assert response.status_code == 201
    assert response.json()["slug"] == "via-post"


def test_same_version_different_content_conflicts(approver, make_doc) -> None:
    post_yaml(approver, BASE + "import/", make_doc())
    before = row_counts()
    response = post_yaml(approver, BASE + "import/", make_doc(description="changed"))
    assert response.status_code == 409
    assert "Version 1.0.0 of runbook 'test-failover' already exists" in response.json()["error"]["message"]
    assert row_counts() == before


def test_new_version_becomes_a_draft(approver, make_doc) -> None:
    post_yaml(approver, BASE + "import/", make_doc())
    response = post_yaml(approver, BASE + "import/", make_doc(version="1.1.0", name="Renamed"))
    assert response.status_code == 201
    assert response.json()["status"] == "draft"
    assert RunbookVersion.objects.count() == 2
    # the name is part of the new version; the runbook shows its latest (no version approved yet)
    assert list(RunbookVersion.objects.order_by("pk").values_list("name", flat=True)) == ["Test failover", "Renamed"]
    assert approver.get(BASE + "test-failover/").json()["name"] == "Renamed"


BAD_INPUTS = {
    "malformed yaml": ("name: x\nsteps:\n  - id: a\n   action: noop\n", "document: invalid YAML at line 4"),
    "malformed json": ('{"name": "x", "version": }', "document: invalid JSON at line 1, column 26"),
    "duplicate ids": (
        lambda d: d["steps"][1].update(id="check"),
        "steps[1] (check).id: duplicate step id 'check'",
    ),
    "unknown needs": (lambda d: d["steps"][1].update(needs=["ghost"]), "steps[1] (promote).needs: unknown step"),
    "cycle": (lambda d: d["steps"][0].update(needs=["validate"]), "cycle: check -> validate -> promote -> check"),
    "unknown field": (lambda d: d["steps"][2].update(colour="red"), "steps[2] (validate).colour: unknown field"),
    "wrong type": (lambda d: d.update(parallelism="two"), "parallelism: 'two' is not of type"),
    "bad duration": (
        lambda d: d["steps"][1].update(timeout="5 minutes"),
        "steps[1] (promote).timeout: '5 minutes' is not a valid duration",
    ),
    "unknown action": (lambda d: d["steps"][1].update(action="teleport"), "steps[1] (promote).action: unknown action"),
    "argv as string": (
        lambda d: d["steps"][1]["with"].update(argv="pg_ctl promote"),
        "steps[1] (promote).with.argv: 'pg_ctl promote' must be a list, not a string",
    ),
    "unknown param": (
        lambda d: d["steps"][0]["with"].update(host="{{ params.nope }}"),
        "steps[0] (check).with.host: {{ params.nope }} refers to undeclared parameter 'nope'",
    ),
    "unknown application": (lambda d: d.update(application="nope"), "no application with slug 'nope'"),
    "secret transformed": (
        lambda d: d["steps"][2]["with"].update(headers={"X-Token": "{{ secrets.token | reverse }}"}),
        "steps[2] (validate).with.headers.X-Token: secrets.token can only be used whole, as {{ secrets.token }}",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("endpoint", ["import", "create", "new-version", "update-draft"])
def test_bad_input_is_400_and_stores_nothing(approver, make_doc, case: str, endpoint: str) -> None:
    post_yaml(approver, BASE + "import/", make_doc(slug="existing"))
    mutate, expected = BAD_INPUTS[case]
    if isinstance(mutate, str):
        body, content_type = mutate, "application/json" if case == "malformed json" else "application/yaml"
    else:
        doc = make_doc(slug="existing", version="1.0.0" if endpoint == "update-draft" else "2.0.0")
        mutate(doc)
        body, content_type = json.dumps(doc), "application/json"
    url = {
        "import": BASE + "import/",
        "create": BASE,
        "new-version": BASE + "existing/versions/",
        "update-draft": BASE + "existing/versions/1.0.0/",
    }[endpoint]
    before = row_counts()
    audit_before = AuditEntry.objects.count()
    send = approver.put if endpoint == "update-draft" else approver.post
    response = send(url, data=body, content_type=content_type)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert expected in error["message"]
    assert set(error["fields"]) and all(isinstance(v, list) for v in error["fields"].values())
    assert row_counts() == before
    assert AuditEntry.objects.count() == audit_before
    assert documents.document_from_version(RunbookVersion.objects.get(runbook__slug="existing"))["version"] == "1.0.0"


def test_export_formats_and_default_version(approver, make_doc) -> None:
    post_yaml(approver, BASE + "import/", make_doc())
    runbook = Runbook.objects.get()
    response = approver.get(f"{BASE}{runbook.pk}/export/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(response.content) == documents.normalise(make_doc())
    response = approver.get(f"{BASE}test-failover/export/?format=json&version=1.0.0")
    assert response["Content-Type"].startswith("application/json")
    assert json.loads(response.content) == documents.normalise(make_doc())
    assert approver.get(f"{BASE}{runbook.pk}/export/?format=xml").status_code == 400
    missing = approver.get(f"{BASE}{runbook.pk}/export/?version=9.9.9")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_export_prefers_latest_approved(approver, make_doc) -> None:
    post_yaml(approver, BASE + "import/", make_doc())
    RunbookVersion.objects.filter(version="1.0.0").update(status="approved")
    post_yaml(approver, BASE + "import/", make_doc(version="1.1.0"))
    response = approver.get(f"{BASE}test-failover/export/?format=json")
    assert json.loads(response.content)["version"] == "1.0.0"


def test_list_filter_search_and_versions(approver, make_doc, django_assert_max_num_queries) -> None:
    post_yaml(approver, BASE + "import/", make_doc(application="orders-db", category="failover"))
    post_yaml(approver, BASE + "import/", make_doc(version="1.2.0", application="orders-db"))
    post_yaml(approver, BASE + "import/", make_doc(slug="drill", name="Quarterly drill", category="test"))
    with django_assert_max_num_queries(8):
        body = approver.get(BASE).json()
    assert body["count"] == 2
    first = next(r for r in body["results"] if r["slug"] == "test-failover")
    assert first["latest_version"]["version"] == "1.2.0"
    assert first["latest_version"]["status"] == "draft"
    assert first["approved_version"] is None
    assert [r["slug"] for r in approver.get(BASE + "?category=test").json()["results"]] == ["drill"]
    assert [r["slug"] for r in approver.get(BASE + "?application=orders-db").json()["results"]] == ["test-failover"]
    assert [r["slug"] for r in approver.get(BASE + "?search=quarterly").json()["results"]] == ["drill"]
    assert [r["slug"] for r in approver.get(BASE + "?ordering=-slug").json()["results"]] == ["test-failover", "drill"]
    assert approver.get(BASE + "?status=approved").json()["count"] == 0
    assert approver.get(BASE + "?category=bogus").status_code == 400
    versions = approver.get(BASE + "test-failover/versions/").json()
    assert [v["version"] for v in versions["results"]] == ["1.2.0", "1.0.0"]
    detail = approver.get(BASE + "test-failover/versions/1.0.0/").json()
    assert detail["parameters"][0]["name"] == "host"
    assert detail["approval_levels"] == [] and detail["decisions"] == []


def test_name_category_and_application_are_changed_by_a_new_version_never_in_place(approver, make_doc) -> None:
    post_yaml(approver, BASE + "import/", make_doc())
    runbook = Runbook.objects.get()
    before = row_counts()
    for body in ({"name": "New name"}, {"application": "orders-api"}, {"category": "test"}):
        response = approver.patch(f"{BASE}{runbook.pk}/", body, format="json")
        assert response.status_code == 405, response.content
        assert "belong to its versions" in response.json()["error"]["message"]
    assert approver.put(f"{BASE}{runbook.pk}/", {"category": "test"}, format="json").status_code == 405
    assert row_counts() == before
    assert approver.get(f"{BASE}{runbook.pk}/").json()["category"] == "failover"
    # a runbook that only ever had drafts can be deleted, with them
    assert approver.delete(f"{BASE}{runbook.pk}/").status_code == 204
    assert row_counts() == (0, 0, 0, 0, 0)
    assert AuditEntry.objects.filter(action="delete", object_type="runbooks.runbook").count() == 1


def test_delete_executed_runbook_is_409(approver, make_doc) -> None:
    from django.utils import timezone

    from failover.models import FailoverExecution

    post_yaml(approver, BASE + "import/", make_doc())
    version = RunbookVersion.objects.get()
    FailoverExecution.objects.create(runbook_version=version, execution_type="test", triggered_at=timezone.now())
    before = row_counts()
    response = approver.delete(f"{BASE}{version.runbook_id}/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert row_counts() == before


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("[" * 100_000 + "]" * 100_000, "application/json"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "application/json"),
        ("[" * 100_000 + "]" * 100_000, "application/yaml"),
        (json.dumps({"document": "[" * 100_000 + "]" * 100_000}), "application/json"),
    ],
    ids=["json-array", "json-object", "yaml", "wrapped"],
)
def test_deeply_nested_import_is_400_and_stores_nothing(approver, body: str, content_type: str) -> None:
    before = row_counts()
    response = approver.post(BASE + "import/", data=body, content_type=content_type)
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"] == "document: nested deeper than 64 levels (the limit)"
    assert row_counts() == before
