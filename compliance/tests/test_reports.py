"""Reports end to end on the demo organisation and on an executed run: generate through the API for every
framework, attest (which signs the PDF), download, verify; a one-byte tamper, a valid signature by an untrusted
key and a PDF that is not DRPlan's are refused with their reason; bad input is a 4xx naming the field.

Rendering and signing a PDF costs a second or two, so each framework's PDF is made once, in one test."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from analytics.outcomes import record_outcome
from compliance import signing as pdf_signing
from compliance.models import AttestedReportError, ComplianceReport, IssuedPdf
from compliance.services import verify_pdf
from core import checkpoints, signing
from core.models import AuditEntry
from drplan.management.commands.seed_demo import Seeder, load_demo_data
from failover.models import FailoverExecution
from plans.choices import ComplianceFramework
from plans.models import DRPlan

pytestmark = pytest.mark.django_db
URL = "/api/v1/dr/compliance-reports"
TODAY = timezone.localdate()


@pytest.fixture
def demo(users) -> None:
    Seeder(load_demo_data(), TODAY).run()


def _create(client, **body) -> dict:
    payload = {"framework": "nist_800_53", "all_plans": True, "period_start": str(TODAY - timedelta(days=365))}
    payload |= {"period_end": str(TODAY)} | body
    response = client.post(URL, payload, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _verify(client, data: bytes) -> dict:
    response = client.generic("POST", f"{URL}/verify", data, content_type="application/pdf")
    assert response.status_code == 200, response.content
    return response.json()


def test_seed_demo_holds_an_attested_signed_report_per_framework_that_verifies(demo, api_for) -> None:
    """seed_demo generates and attests one report per framework (the API's use cases); each PDF verifies."""
    approver = api_for("approver")
    listed = approver.get(f"{URL}?attested=true&page_size=50").json()["results"]
    assert sorted(r["framework"] for r in listed) == sorted(ComplianceFramework.values)
    issued = {}
    for body in listed:
        assert body["state"] == "attested" and body["plans"] == ["back-office", "core-commerce", "lab", "payments-pci"]
        assert body["requirements"] and body["audit_head_hash"] and len(body["content_sha256"]) == 64
        assert body["attested_by"] in ("auditor", "approver")
        pdf = approver.get(f"{URL}/{body['id']}/pdf")
        assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
        issued[body["framework"]] = (body["id"], pdf.content)
        assert _verify(api_for("viewer"), pdf.content)["valid"] is True, body["framework"]

    # The demo's runbooks were approved through the approval service by people who did not write them: every
    # application of core-commerce and payments-pci has an approved version; what is still missing is named.
    sox = ComplianceReport.objects.get(pk=issued["sox"][0]).content
    rules = {r["id"]: r for q in sox["requirements"] for r in q["rules"]}
    approved = {e["label"].split("@")[0].removeprefix("runbook ") for e in rules["runbooks_approved"]["evidence"]}
    assert {
        "demo-orders-db-failover",
        "demo-orders-api-failover",
        "demo-web-frontend-failover",
        "demo-auth-service-failover",
        "demo-cache-redis-failover",
        "demo-message-queue-failover",
        "demo-file-storage-failover",
        "demo-payments-db-failover",
        "demo-payments-api-failover",
    } <= approved
    gaps = " ".join(rules["runbooks_approved"]["gaps"])
    assert "reporting-warehouse: runbook demo-reporting-warehouse-restore@1.0.0 is pending_approval" in gaps
    assert not any(app in gaps for app in ("orders-db:", "payments-api:", "auth-service:", "web-frontend:"))
    assert rules["runbook_changes_approved"]["status"] == "met"

    report_id, data = issued["nist_800_53"]
    result = _verify(api_for("viewer"), data)
    assert result["valid"] is True, result
    assert result["report"] == report_id
    assert result["checks"] == {
        "signed": True,
        "intact": True,
        "valid": True,
        "trusted": True,
        "covers_whole_file": True,
        "report_found": True,
        "report_attested": True,
        "content_matches_report": True,
        "matches_issued_pdf": True,
    }
    assert result["signer_fingerprint"] == signing.identity().fingerprint
    assert _verify(api_for("auditor"), issued["dora"][1])["valid"] is True

    report = ComplianceReport.objects.get(pk=report_id)
    assert report.attestation_name == "auditor (auditor role, account auditor)"  # test users carry no names
    assert IssuedPdf.objects.get(report=report).sha256 == hashlib.sha256(data).hexdigest()
    assert (
        AuditEntry.objects.filter(object_type="compliance.compliancereport", comment="attested and signed").count() == 6
    )

    # a one-byte tamper in the middle of the signed bytes
    tampered = bytearray(data)
    tampered[len(data) // 3] ^= 0x01
    bad = verify_pdf(bytes(tampered))
    assert bad["valid"] is False
    assert bad["reason"].startswith(("the PDF was changed after it was signed", "the signature cannot be validated"))

    # the same PDF, re-signed by a key nobody trusts
    stranger_dir = Path(signing.identity().key_file).parent.parent / "stranger"
    signing.generate_self_signed(stranger_dir / "k.pem", stranger_dir / "c.pem", common_name="Mallory")
    from django.test import override_settings

    with override_settings(SIGNING_KEY_FILE=str(stranger_dir / "k.pem"), SIGNING_CERT_FILE=str(stranger_dir / "c.pem")):
        signing.reset_cache()
        stranger = signing.identity()
        forged = pdf_signing.sign_pdf(
            issued["sox"][1], reason="forged", name="Mallory", identity=stranger, field_name="Countersignature"
        )
    signing.reset_cache()
    untrusted = verify_pdf(forged)
    assert untrusted["valid"] is False
    assert "is not trusted" in untrusted["reason"] and "Mallory" in untrusted["reason"]

    # an attested report never changes
    report.summary = "edited"
    with pytest.raises(AttestedReportError):
        report.save()
    with pytest.raises(AttestedReportError):  # nor in bulk
        ComplianceReport.objects.filter(pk=report.pk).update(summary="edited")
    assert ComplianceReport.objects.get(pk=report.pk).summary != "edited"
    again = api_for("auditor").post(f"{URL}/{report_id}/attest", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "report_attested"

    # the report's audit head is a signed checkpoint outside the database
    assert any(c.seq == report.audit_head_seq for c in checkpoints.default_store().read()[0])


def test_a_report_on_an_executed_run(users, api_for) -> None:
    """A DR test run by the engine leaves a test result (analytics.outcomes); the report reads it."""
    from plans.tests.factories import make_plan

    plan = make_plan("exec-dr", status="active", rto_seconds=600)
    now = timezone.now()
    execution = FailoverExecution.objects.create(
        plan=plan,
        execution_type="test",
        status="completed",
        triggered_at=now - timedelta(minutes=9),
        started_at=now - timedelta(minutes=8),
        finished_at=now - timedelta(minutes=1),
        actual_rto_seconds=420,
        triggered_by=users["operator"],
    )
    record_outcome(execution.pk)
    body = _create(api_for("approver"), framework="sox", all_plans=False, plans=["exec-dr"])
    report = ComplianceReport.objects.get(pk=body["id"])
    assert [t["execution"] for t in report.content["tests"]] == [execution.pk]
    assert report.content["charts"]["rto"][0]["actual"] == 420
    executions = next(r for r in report.content["requirements"] if r["ref"] == "ITGC-ACC-2")
    assert any(e["kind"] == "execution" and e["id"] == execution.pk for e in executions["evidence"])
    draft = api_for("viewer").get(f"{URL}/{body['id']}/pdf")
    assert draft.status_code == 200 and draft.content.startswith(b"%PDF-")
    unsigned = api_for("viewer").generic("POST", f"{URL}/verify", draft.content, content_type="application/pdf")
    assert unsigned.status_code == 400
    assert "the PDF carries no signature" in unsigned.json()["error"]["fields"]["file"][0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"framework": "gdpr"}, "framework"),
        ({"all_plans": False, "plans": []}, "plans"),
        ({"all_plans": False, "plans": ["no-such-plan"]}, "plans"),
        ({"plans": ["lab"]}, "plans"),  # plans and all_plans together
        ({"period_start": "2026-05-01", "period_end": "2026-04-30"}, "period_end"),
        ({"period_end": "yesterday"}, "period_end"),
        ({"period_start": str(date(2999, 1, 1)), "period_end": str(date(2999, 2, 1))}, "period_start"),
        ({"period_start": "0001-01-01", "period_end": "0001-01-01"}, "period_start"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(users, api_for, body, field) -> None:
    DRPlan.objects.create(plan_id="lab", name="Lab", rto_seconds=60, rpo_seconds=5)
    payload = {"framework": "sox", "all_plans": True, "period_start": "2026-01-01", "period_end": "2026-03-31"}
    before = (ComplianceReport.objects.count(), AuditEntry.objects.count())
    response = api_for("approver").post(URL, payload | body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["fields"] or error["message"].startswith(f"{field}:"), error
    assert (ComplianceReport.objects.count(), AuditEntry.objects.count()) == before


def test_verify_refuses_what_is_not_a_pdf_and_oversized_bodies(users, api_for, settings) -> None:
    client = api_for("viewer")
    response = client.generic("POST", f"{URL}/verify", b"hello", content_type="application/pdf")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"file": ["file: not a PDF (it does not start with %PDF-)."]}
    response = client.generic("POST", f"{URL}/verify", b"", content_type="application/pdf")
    assert response.status_code == 400 and "file" in response.json()["error"]["fields"]
    assert client.post(f"{URL}/verify", {"file": "x"}, format="json").status_code == 415
    assert client.post(f"{URL}/verify", {"file": "x"}, format="multipart").status_code == 415
    settings.DRPLAN_MAX_REQUEST_BYTES = 1000
    response = client.generic("POST", f"{URL}/verify", b"%PDF-" + b"0" * 2000, content_type="application/pdf")
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("role", "create", "attest"),
    [(None, 401, 401), ("viewer", 403, 403), ("operator", 403, 403), ("auditor", 403, 200), ("approver", 201, 200)],
)
def test_authorization(users, api_for, role, create, attest) -> None:
    DRPlan.objects.create(plan_id="lab", name="Lab", rto_seconds=60, rpo_seconds=5)
    body = {"framework": "hipaa", "plans": ["lab"], "period_start": "2026-01-01", "period_end": "2026-03-31"}
    before = ComplianceReport.objects.count()
    assert api_for(role).post(URL, body, format="json").status_code == create
    assert ComplianceReport.objects.count() == before + (create == 201)
    report = _create(api_for("admin"), framework="hipaa", all_plans=False, plans=["lab"])
    response = api_for(role).post(f"{URL}/{report['id']}/attest", {}, format="json")
    assert response.status_code == attest, response.content
    assert ComplianceReport.objects.get(pk=report["id"]).attested_at is not None if attest == 200 else True
    if attest != 200:
        assert not IssuedPdf.objects.filter(report_id=report["id"]).exists()


def test_the_admin_shows_the_signing_certificate_fingerprint(users) -> None:
    from django.test import Client

    client = Client()
    client.force_login(users["auditor"])
    page = client.get("/admin/compliance/compliancereport/")
    assert page.status_code == 200
    assert signing.identity().fingerprint in page.content.decode()


def test_signing_and_checking_work_inside_a_running_event_loop() -> None:
    """pyHanko calls asyncio.run(); a caller with a running event loop (an async view, or the browser tests,
    which call seed_demo while Playwright's sync API holds a loop) still signs and checks reports."""
    import asyncio

    from weasyprint import HTML

    pdf = HTML(string="<p>Evidence</p>").write_pdf()

    async def inside_a_loop() -> tuple[bool, pdf_signing.Verification]:
        signed = pdf_signing.sign_pdf(pdf, reason="DR test evidence", name="Tester")
        result = pdf_signing.Verification()
        return pdf_signing.verify_signature(pdf_signing.read_pdf(signed), result), result

    valid, result = asyncio.run(inside_a_loop())
    assert valid, result.reason
