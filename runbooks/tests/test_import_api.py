"""POST /api/v1/dr/runbooks/import with other tools' documents: the shapes it takes (multipart file, JSON content,
raw XML), the report and provenance in the answer, the original kept, who may import, and bad input: 400 naming
the key or the line, and nothing stored (all or nothing)."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.models import AuditEntry
from plans.models import Application
from runbooks import services
from runbooks.importers.base import import_version
from runbooks.models import RunbookImport, RunbookVersion
from runbooks.tests.factories import row_counts
from runbooks.tests.import_support import read

URL = "/api/v1/dr/runbooks/import/"
ROLES = [None, "viewer", "operator", "auditor", "approver", "admin"]
ALLOWED = {"approver", "admin"}
RUNDECK_YAML = "rundeck/rundeck-functional-test_test-copyfile-job1.yaml"
RUNDECK_XML = "rundeck/rundeck-functional-test_job-213b0213-cb72-417e-9707-1371eb44dfe3.xml"
ASR = "azure-site-recovery/ReplicationRecoveryPlans_Get.json"
SSM = "aws-ssm-automation/rds_force_aurora_failover.AutomationDocument.yml"

pytestmark = pytest.mark.django_db


def state() -> tuple:
    return (
        row_counts(),
        RunbookImport.objects.count(),
        Application.objects.count(),
        AuditEntry.objects.count(),
    )


def post(client, shape: str, text: str, filename: str, fmt: str | None = None):
    if shape == "multipart":
        data = {"file": SimpleUploadedFile(filename, text.encode())}
        if fmt:
            data["format"] = fmt
        return client.post(URL, data, format="multipart")
    if shape == "json":
        body = {"content": text, "filename": filename, **({"format": fmt} if fmt else {})}
        return client.post(URL, json.dumps(body), content_type="application/json")
    return client.generic("POST", URL, text.encode(), content_type="application/xml")


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
@pytest.mark.parametrize("shape", ["multipart", "json", "xml"])
def test_who_may_import(api_for, role: str | None, shape: str) -> None:
    text, filename = read(RUNDECK_XML, copied=True)
    before = state()
    response = post(api_for(role), shape, text, filename)
    if role not in ALLOWED:
        assert response.status_code == (401 if role is None else 403)
        assert state() == before
        return
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["slug"]) == ("draft", "rundeck-joboptionsselectalltest")
    provenance = body["provenance"]
    assert provenance["format"] == "rundeck"
    assert provenance["filename"] == ("" if shape == "xml" else filename)
    assert provenance["report"]["summary"] == {"converted": 4, "manual": 0, "dropped": 0}
    assert [s["action"] for s in body["steps"]] == ["shell"]
    assert body["steps"][0]["params"] == {"argv": ["echo", "{{ params.test }}"]}


def test_format_detected_or_given_and_the_same_file_twice(api_for) -> None:
    client = api_for("approver")
    text, filename = read(SSM, copied=True)
    first = post(client, "multipart", text, filename, "ssm")
    assert first.status_code == 201, first.content
    again = post(client, "json", text, filename)  # detected this time
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["provenance"] == first.json()["provenance"]
    version = RunbookVersion.objects.get()
    assert version.version == import_version(text)
    original = client.get(f"/api/v1/dr/runbooks/{version.runbook.slug}/versions/{version.version}/original/")
    assert original.status_code == 200
    assert original.content.decode() == text
    assert original["Content-Type"].startswith("text/plain")
    detail = client.get(f"/api/v1/dr/runbooks/{version.runbook.slug}/versions/{version.version}/").json()
    assert detail["provenance"]["original_sha256"] == first.json()["provenance"]["original_sha256"]
    calls = [s for s in detail["steps"] if s["action"] == "aws.call"]
    assert [s["params"]["operation"] for s in calls] == ["DescribeAlarms", "DescribeDBClusters", "DescribeAlarms"]
    assert calls[1]["params"]["wait_for"] == {"selector": "$.DBClusters[0].Status", "values": ["available"]}
    assert calls[1]["params"]["parameters"] == {"DBClusterIdentifier": "{{ params.ClusterId }}"}
    assert calls[1]["retries"] == 9 and calls[1]["timeout_seconds"] == 600


def test_native_documents_still_import_and_have_no_provenance(api_for, make_doc, applications) -> None:
    client = api_for("approver")
    response = client.post(URL, json.dumps({"content": json.dumps(make_doc())}), content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["provenance"] is None
    version = RunbookVersion.objects.get()
    url = f"/api/v1/dr/runbooks/{version.runbook.slug}/versions/{version.version}/original/"
    assert client.get(url).status_code == 404


BAD = {
    "unknown format": ({"content": "- name: x\n", "format": "terraform"}, "format", "unknown format 'terraform'"),
    "undetectable": ({"content": "resource: {aws_instance: {}}\n"}, "format", "cannot tell the document's format"),
    "malformed XML": ({"content": "<joblist><job><name>x</job>"}, "line 1", "invalid XML at line 1"),
    "XML entities": (
        {"content": '<?xml version="1.0"?><!DOCTYPE j [<!ENTITY a "aaaa">]><joblist><job>&a;</job></joblist>'},
        "document",
        "DTDs and entities are not allowed",
    ),
    "malformed YAML": ({"content": "- name: x\n  sequence: [\n", "format": "rundeck"}, "document", "line 3"),
    "malformed JSON": ({"content": '{"title": "x",\n "method": [}'}, "document", "invalid JSON at line 2"),
    "SSM schema version": (
        {"content": "schemaVersion: '0.2'\nmainSteps: []\n"},
        "schemaVersion",
        "only Automation documents of schemaVersion 0.3",
    ),
    "Chaos Toolkit provider": (
        {
            "content": json.dumps(
                {"title": "t", "method": [{"type": "action", "name": "a", "provider": {"type": "ruby", "x": 1}}]}
            )
        },
        "method[0].provider.type",
        "provider type 'ruby' is not supported",
    ),
    "Chaos Toolkit variable": (
        {
            "content": json.dumps(
                {"title": "t", "method": [{"name": "a", "provider": {"type": "http", "url": "${nope}"}}]}
            )
        },
        "method[0].provider.url",
        "${nope} is neither in configuration nor in secrets",
    ),
    "Rundeck missing option": (
        {
            "content": "- name: j\n  options: [{name: a}]\n  sequence:\n    commands:\n"
            "      - exec: echo ${option.nope}\n"
        },
        "[0].sequence.commands[0].exec",
        "refers to option 'nope', which the job does not define (options: a)",
    ),
    "playbook that does not parse": (
        {"content": "- hosts: all\n  tasks:\n    - name: x\n   broken: [\n", "format": "ansible"},
        "document",
        "invalid YAML at line",
    ),
    "NUL character": ({"content": "- name: x\u0000\n"}, "content", "contains a NUL character"),
    "play without tasks": ({"content": "- hosts: all\n  name: nothing to do\n"}, "[0]", "a play needs tasks"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_400_naming_the_key_or_line_and_stores_nothing(api_for, case: str) -> None:
    body, field, message = BAD[case]
    before = state()
    response = api_for("approver").post(URL, json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert message in error["message"]
    assert field in error["message"] or field in (error.get("fields") or {})
    assert state() == before


def test_a_file_that_is_not_utf8_is_400(api_for) -> None:
    before = state()
    upload = SimpleUploadedFile("job.yaml", "- name: café\n".encode("latin-1"))
    response = api_for("approver").post(URL, {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"file": ["the file is not UTF-8 text"]}
    assert state() == before


def test_all_or_nothing_applications_go_back_when_the_runbook_cannot_be_stored(api_for, make_doc) -> None:
    """The ASR plan's applications are created in the import's transaction: a conflict on the runbook after
    them leaves neither."""
    text, filename = read(ASR, copied=True)
    steps = [{"id": "other", "action": "noop"}]
    services.import_runbook_document(make_doc(slug="asr-rptest1", version=import_version(text), steps=steps))
    before = state()
    response = post(api_for("approver"), "multipart", text, filename)
    assert response.status_code == 409
    assert state() == before
    assert not Application.objects.exists()
