"""A report on runs the engine really executed: two DR tests of a plan run synchronously through the engine
(failover.engine.runner.run_execution), their outcomes recorded by analytics.outcomes through the engine's hook,
then a report generated, attested (signed) and verified. Its testing section agrees with
GET /api/v1/dr/test/compliance, row for row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from analytics.models import DRTestResult
from compliance.models import ComplianceReport
from failover import services
from failover.engine.runner import run_execution
from plans.models import DRPlan
from plans.tests.factories import make_app, make_plan
from runbooks import services as runbook_services
from runbooks.choices import Decision, VersionStatus

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/dr/compliance-reports"


def _approved_test_runbook(app_slug: str, users) -> None:
    """A DR test runbook (a no-op and a 2 s wait), written by the DR manager and approved by another person
    through the approval service."""
    doc = {
        "name": f"{app_slug} DR test",
        "slug": f"{app_slug}-dr-test",
        "version": "1.0.0",
        "category": "test",
        "application": app_slug,
        "approvals": [{"role": "approver"}],
        "steps": [
            {"id": "prepare", "action": "noop"},
            {"id": "soak", "action": "wait", "with": {"seconds": 2}, "needs": ["prepare"]},
        ],
    }
    author = users["approver"]
    version = runbook_services.import_runbook_document(doc, actor=author)
    version = runbook_services.submit_for_approval(version, author)
    version = runbook_services.decide(version, users["admin"], Decision.APPROVE, "reviewed")
    assert version.status == VersionStatus.APPROVED


def _run_test(plan: DRPlan, operator) -> DRTestResult:
    execution = services.start_test(plan, actor=operator)
    assert run_execution(execution.pk) == "completed"
    return DRTestResult.objects.get(execution=execution)  # left behind by analytics.outcomes


def test_a_signed_report_on_executed_runs_agrees_with_the_test_compliance_api(users, api_for) -> None:
    app = make_app("ledger", tier=1)
    _approved_test_runbook(app.slug, users)
    plan = make_plan("ledger-dr", status="active", applications=[app], rto_seconds=600, test_frequency="quarterly")
    DRPlan.objects.filter(pk=plan.pk).update(created_at=timezone.now() - timedelta(days=200))  # two tests due

    passed = _run_test(plan, users["operator"])
    assert passed.outcome == "passed" and 2 <= passed.actual_rto_seconds < 600
    DRPlan.objects.filter(pk=plan.pk).update(rto_seconds=1)  # the target tightened: the next run misses it
    partial = _run_test(DRPlan.objects.get(pk=plan.pk), users["operator"])
    assert partial.outcome == "partial" and partial.actual_rto_seconds >= 2

    today = timezone.localdate()
    body = {
        "framework": "nist_800_53",
        "all_plans": False,
        "plans": ["ledger-dr"],
        "period_start": str(today - timedelta(days=365)),
        "period_end": str(today),
    }
    created = api_for("approver").post(URL, body, format="json")
    assert created.status_code == 201, created.content
    report_id = created.json()["id"]
    attested = api_for("auditor").post(f"{URL}/{report_id}/attest", {}, format="json")
    assert attested.status_code == 200, attested.content
    pdf = api_for("viewer").get(f"{URL}/{report_id}/pdf")
    verified = api_for("viewer").generic("POST", f"{URL}/verify", pdf.content, content_type="application/pdf")
    assert verified.status_code == 200 and verified.json()["valid"] is True, verified.content

    content = ComplianceReport.objects.get(pk=report_id).content  # what the PDF shows, frozen at generation
    # The tests performed, target against actual, are the two runs the engine executed.
    tests = {t["execution"]: t for t in content["tests"]}
    assert set(tests) == {passed.execution_id, partial.execution_id}
    assert tests[passed.execution_id]["outcome"] == "passed"
    assert tests[partial.execution_id]["outcome"] == "partial"

    # The testing section and the API's answer, for the same plan: required by the frequency, done, passed.
    api_rows = api_for("auditor").get("/api/v1/dr/test/compliance").json()["plans"]
    [api_row] = [row for row in api_rows if row["plan_id"] == "ledger-dr"]
    [report_row] = content["testing"]
    assert (api_row["required"], api_row["done"], api_row["passed"], api_row["compliant"]) == (2, 2, 1, False)
    for key in ("plan", "plan_id", "test_frequency", "required", "done", "passed", "compliant"):
        assert report_row[key] == api_row[key], key
    for key in ("window_start", "last_test"):
        assert parse_datetime(report_row[key]) == parse_datetime(api_row[key]), key
    assert parse_datetime(api_row["last_test"]) == partial.test_date
