"""Authorization matrix for every mutating runbook endpoint; denied requests change nothing."""

from __future__ import annotations

import json

import pytest

from core.models import AuditEntry
from runbooks import services
from runbooks.models import Runbook, RunbookApproval, RunbookVersion
from runbooks.tests.factories import row_counts

BASE = "/api/v1/dr/runbooks/"
ROLES = [None, "viewer", "operator", "auditor", "approver", "admin"]
ALLOWED = {"approver", "admin"}


@pytest.fixture
def setup(make_user, make_doc, users, applications):
    """A runbook with a draft (1.1.0) and a pending version (1.0.0), authored by someone else; and a runbook
    with only a draft (which may be deleted)."""
    author = make_user("author", "approver")
    pending = services.import_runbook_document(make_doc(), actor=author)
    services.submit_for_approval(pending, author)
    services.import_runbook_document(make_doc(version="1.1.0"), actor=author)
    services.import_runbook_document(make_doc(slug="scratch"), actor=author)
    return Runbook.objects.get(slug=make_doc()["slug"])


def state() -> tuple:
    return (
        row_counts(),
        AuditEntry.objects.count(),
        RunbookApproval.objects.count(),
        list(Runbook.objects.values_list("slug", flat=True)),
        list(
            RunbookVersion.objects.order_by("pk").values_list(
                "version", "status", "name", "category", "application_id", "content_hash", "description"
            )
        ),
    )


def requests(runbook: Runbook, make_doc) -> dict:
    rid = runbook.pk
    new_doc = make_doc(slug="brand-new")
    draft_doc = make_doc(description="edited")
    del draft_doc["version"]
    return {
        "create": ("post", BASE, new_doc, 201),
        "import": ("post", BASE + "import/", {"document": json.dumps(new_doc)}, 201),
        "destroy": ("delete", f"{BASE}scratch/", None, 204),
        "create_version": ("post", f"{BASE}{rid}/versions/", {"document": make_doc(version="2.0.0")}, 201),
        "update_version": ("put", f"{BASE}{rid}/versions/1.1.0/", draft_doc, 200),
        "submit": ("post", f"{BASE}{rid}/versions/1.1.0/submit/", {}, 200),
        "approve": ("post", f"{BASE}{rid}/versions/1.0.0/approve/", {"comment": "ok"}, 200),
        "reject": ("post", f"{BASE}{rid}/versions/1.0.0/reject/", {"comment": "no"}, 200),
    }


ENDPOINTS = [
    "create",
    "import",
    "destroy",
    "create_version",
    "update_version",
    "submit",
    "approve",
    "reject",
]


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_mutating_endpoints(setup, api_for, make_doc, role: str | None, endpoint: str) -> None:
    method, url, body, success = requests(setup, make_doc)[endpoint]
    before = state()
    response = getattr(api_for(role), method)(url, body, format="json")
    if role is None:
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"
    elif role not in ALLOWED:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    else:
        assert response.status_code == success, response.content
        assert state() != before
        return
    assert state() == before


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_reads(setup, api_for, role: str | None) -> None:
    client = api_for(role)
    urls = [BASE, f"{BASE}{setup.pk}/", f"{BASE}{setup.pk}/versions/", f"{BASE}{setup.pk}/versions/1.0.0/"]
    urls.append(f"{BASE}{setup.pk}/export/?format=json")
    for url in urls:
        assert client.get(url).status_code == (401 if role is None else 200), url
