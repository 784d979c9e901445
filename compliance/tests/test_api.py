"""Compliance reports: read-only list/detail with requirements, filters, permissions."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compliance.models import ComplianceReport, ComplianceRequirement
from compliance.tests.factories import make_report
from core.models import AuditEntry
from plans.tests.factories import make_plan

URL = "/api/v1/dr/compliance-reports"


def test_retrieve_report_with_requirements(api_for, users, db):
    plan = make_plan("orders-dr")
    report = make_report(plan, framework="nist_800_53", summary="All good", attested_by=users["approver"])
    cp2, cp4 = report.requirements.order_by("requirement_id")

    body = api_for("auditor").get(f"{URL}/{report.pk}").json()

    assert body == {
        "id": report.pk,
        "framework": "nist_800_53",
        "plans": ["orders-dr"],
        "all_plans": False,
        "period_start": "2025-01-01",
        "period_end": "2025-03-31",
        "tests_required": 1,
        "tests_performed": 1,
        "tests_passed": 1,
        "overall_status": "compliant",
        "summary": "All good",
        "state": "draft",
        "content_sha256": "",
        "audit_head_seq": 0,
        "audit_head_hash": "",
        "created_by": None,
        "generated_at": body["generated_at"],
        "attested_by": "approver",
        "attested_at": None,
        "requirements": [
            {
                "id": cp2.pk,
                "requirement_id": "CP-2",
                "title": "Contingency plan",
                "status": "partial",
                "evidence": "",
                "gaps": "Owner missing",
            },
            {
                "id": cp4.pk,
                "requirement_id": "CP-4",
                "title": "Contingency plan testing",
                "status": "met",
                "evidence": "",
                "gaps": "",
            },
        ],
    }


def test_filters(api_for, db):
    plan = make_plan("orders-dr")
    sox = make_report(plan, framework="sox")
    hipaa = make_report(None, framework="hipaa", overall_status="non_compliant", period_end=date(2025, 6, 30))
    client = api_for("viewer")

    def ids(query: str) -> list[int]:
        response = client.get(f"{URL}?{query}")
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    assert ids("") == [hipaa.pk, sox.pk]
    assert ids("framework=sox") == [sox.pk]
    assert ids(f"plan={plan.pk}") == [sox.pk]
    assert ids("overall_status=non_compliant") == [hipaa.pk]
    assert ids("search=CP-4") == [hipaa.pk, sox.pk]
    assert client.get(f"{URL}?framework=gdpr").status_code == 400


def test_list_query_count_is_constant(api_for, db):
    for i in range(12):
        make_report(None, framework="sox", period_end=date(2025, 3, 1 + i))
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
    report = make_report()
    assert api_for(role).get(URL).status_code == expected
    assert api_for(role).get(f"{URL}/{report.pk}").status_code == expected


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), ("viewer", 403), ("operator", 403), ("auditor", 403), ("approver", 405), ("admin", 405)],
)
def test_reports_cannot_be_written_through_the_api(api_for, db, method, role, expected):
    """A report is generated (POST, with a framework, plans and a period: test_reports.py), never edited;
    a POST without them is a 400 that stores nothing."""
    report = make_report()
    url = URL if method == "post" else f"{URL}/{report.pk}"
    if method == "post" and expected == 405:
        expected = 400
    before = (ComplianceReport.objects.count(), ComplianceRequirement.objects.count(), AuditEntry.objects.count())
    response = getattr(api_for(role), method)(url, {"framework": "sox", "summary": "x"}, format="json")
    assert response.status_code == expected
    assert (
        ComplianceReport.objects.count(),
        ComplianceRequirement.objects.count(),
        AuditEntry.objects.count(),
    ) == before
    report.refresh_from_db()
    assert report.summary == ""
