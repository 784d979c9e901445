"""Evidence rules on crafted cases: each one names the record it read and the gap it found."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from analytics import outcomes
from analytics.models import ActionItem
from analytics.models import TestFinding as Finding
from analytics.tests.factories import make_result, make_target
from compliance.evidence import Evidence
from compliance.models import ComplianceReport
from compliance.rules import evaluate_rule
from compliance.services import ReportRequest, generate_report
from plans.models import DRPlan
from plans.tests.factories import make_app, make_plan, make_site, make_strategy
from runbooks.models import Runbook, RunbookVersion

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
YEAR_AGO = TODAY - timedelta(days=365)


def _tier1_plan(plan_id: str = "orders-dr", **extra) -> DRPlan:
    app = make_app(f"{plan_id}-db", tier=1, owner="Ana Lopez", owner_email="ana@example.com")
    make_target(app, tier=1, rto_target_seconds=900)
    plan = make_plan(
        plan_id,
        applications=[app],
        status="active",
        primary_site=make_site(f"{plan_id[:3]}1"),
        dr_site=make_site(f"{plan_id[:3]}2"),
        created_at=timezone.now() - timedelta(days=400),
        **extra,
    )
    DRPlan.objects.filter(pk=plan.pk).update(created_at=timezone.now() - timedelta(days=400))
    make_strategy(plan)
    return DRPlan.objects.get(pk=plan.pk)


def _evidence(*plans: DRPlan, start: date = YEAR_AGO, end: date = TODAY) -> Evidence:
    return Evidence.load([p.pk for p in plans], start, end, timezone.now())


def _version(app, status: str, *, version: str = "1.0.0", slug: str | None = None) -> RunbookVersion:
    runbook, _ = Runbook.objects.get_or_create(slug=slug or f"{app.slug}-failover")
    return RunbookVersion.objects.create(
        runbook=runbook,
        version=version,
        status=status,
        name="Fail over",
        category="failover",
        application=app,
        approved_at=timezone.now() - timedelta(days=30) if status == "approved" else None,
    )


def test_a_plan_never_tested_fails_cp4_and_the_gap_names_it(users) -> None:
    plan = _tier1_plan()
    report = generate_report(
        ReportRequest("nist_800_53", YEAR_AGO, TODAY, [plan.plan_id]), actor=users["approver"], auth_method="token"
    )
    cp4 = report.requirements.get(requirement_id="CP-4")
    assert cp4.status == "not_met"
    assert f"plan orders-dr: no DR test between {YEAR_AGO:%Y-%m-%d} and {TODAY:%Y-%m-%d}" in cp4.gaps
    assert report.content["testing"][0]["done"] == 0
    assert report.tests_required == 4  # quarterly over 12 months
    assert report.requirements.get(requirement_id="CP-5").status == "not_assessed"
    assert report.overall_status in ("partially_compliant", "non_compliant")
    assert report.created_by == users["approver"]


def test_an_unapproved_runbook_makes_the_requirement_partial() -> None:
    plan = _tier1_plan()
    app = plan.applications.get()
    _version(app, "draft")
    result = evaluate_rule("runbooks_approved", _evidence(plan))
    assert result["status"] == "partial"
    assert result["gaps"] == [
        f"{app.slug}: runbook {app.slug}-failover@1.0.0 is draft; no version was approved by "
        f"{_evidence(plan).window_end:%Y-%m-%d}"
    ]
    report = generate_report(ReportRequest("hipaa", YEAR_AGO, TODAY, [plan.pk]))
    assert report.requirements.get(requirement_id="164.308(a)(7)(ii)(B)").status in ("partial", "not_met")

    _version(app, "approved", version="1.1.0")
    approved = evaluate_rule("runbooks_approved", _evidence(plan))
    assert approved["status"] == "met"
    assert approved["evidence"][0]["id"] == f"{app.slug}-failover@1.1.0"


def test_no_runbook_at_all_is_not_met() -> None:
    plan = _tier1_plan()
    result = evaluate_rule("runbooks_approved", _evidence(plan))
    assert (result["status"], result["gaps"]) == ("not_met", ["orders-dr-db: no failover or restore runbook"])


def test_tier1_plan_tested_within_rto(db) -> None:
    plan = _tier1_plan()
    make_result(plan, test_date=timezone.now() - timedelta(days=20), actual_rto_seconds=5000, outcome="failed")
    slow = evaluate_rule("tier1_tested_rto_met", _evidence(plan))
    assert slow["status"] == "partial"
    assert "tier-1 plan orders-dr: no DR test met its RTO" in slow["gaps"][0]
    assert "best RTO" in slow["gaps"][0]

    fast = make_result(plan, test_date=timezone.now() - timedelta(days=10), actual_rto_seconds=1200)
    ok = evaluate_rule("tier1_tested_rto_met", _evidence(plan))
    assert ok["status"] == "met"
    assert ok["evidence"][0]["id"] == fast.pk


def test_a_test_older_than_12_months_does_not_count() -> None:
    plan = _tier1_plan()
    make_result(plan, test_date=timezone.now() - timedelta(days=380), actual_rto_seconds=100)
    assert evaluate_rule("tested_12m", _evidence(plan))["status"] == "not_met"


def test_open_critical_findings_need_action_items_with_owner_and_due_date() -> None:
    plan = _tier1_plan()
    test = make_result(plan, test_date=timezone.now() - timedelta(days=5), outcome="failed")
    finding = Finding.objects.create(
        test_result=test, severity="critical", category="technology", description="HSM certificate expired"
    )
    missing = evaluate_rule("findings_have_actions", _evidence(plan))
    assert missing["status"] == "not_met"
    assert missing["gaps"] == [f"critical finding 'HSM certificate expired' (DR test #{test.pk}) has no action item"]
    assert missing["evidence"][0] == {
        "kind": "test_finding",
        "id": finding.pk,
        "label": f"[critical] HSM certificate expired (DR test #{test.pk})",
    }

    item = ActionItem.objects.create(test_result=test, description="Renew", assignee="")
    assert evaluate_rule("findings_have_actions", _evidence(plan))["status"] == "partial"
    ActionItem.objects.filter(pk=item.pk).update(assignee="Ana Lopez", due_date=TODAY + timedelta(days=14))
    assert evaluate_rule("findings_have_actions", _evidence(plan))["status"] == "met"


def test_no_finding_means_nothing_to_judge() -> None:
    plan = _tier1_plan()
    result = evaluate_rule("findings_have_actions", _evidence(plan))
    assert result["status"] == "met"
    assert result["note"].startswith("Nothing to judge")


def test_the_testing_section_is_the_test_compliance_endpoint(api_for) -> None:
    plans = [_tier1_plan("orders-dr"), _tier1_plan("billing-dr", test_frequency="monthly")]
    make_result(plans[0], test_date=timezone.now() - timedelta(days=40))
    make_result(plans[0], test_date=timezone.now() - timedelta(days=200), outcome="failed")
    make_result(plans[1], test_date=timezone.now() - timedelta(days=3))
    now = timezone.now()
    report = generate_report(ReportRequest("sox", TODAY - timedelta(days=365), TODAY, [], all_plans=True), now=now)

    endpoint = api_for("viewer").get("/api/v1/dr/test/compliance").json()["plans"]
    keys = ("plan_id", "required", "done", "passed", "compliant")
    assert [{k: row[k] for k in keys} for row in report.content["testing"]] == [
        {k: row[k] for k in keys} for row in endpoint
    ]
    assert (report.tests_required, report.tests_performed, report.tests_passed) == (
        sum(r["required"] for r in endpoint),
        sum(r["done"] for r in endpoint),
        sum(r["passed"] for r in endpoint),
    )
    # and for any period: the same function over the report's window
    quarter = generate_report(ReportRequest("sox", TODAY - timedelta(days=90), TODAY, ["orders-dr"]), now=now)
    window = quarter.content["window"]
    rows = outcomes.test_compliance(
        timezone.datetime.fromisoformat(window["end"]),
        since=timezone.datetime.fromisoformat(window["start"]),
        plan_ids=[plans[0].pk],
    )
    assert [(r["required"], r["done"], r["passed"]) for r in rows] == [
        (r["required"], r["done"], r["passed"]) for r in quarter.content["testing"]
    ]
    assert ComplianceReport.objects.count() == 2


def test_the_audit_rule_reads_the_signed_checkpoints() -> None:
    from django.db import connection

    from core import audit, checkpoints
    from core.models import AuditChainHead, AuditEntry

    plan = _tier1_plan()
    unsigned = evaluate_rule("audit_chain_intact", _evidence(plan))
    assert (unsigned["status"], unsigned["gaps"]) == (
        "partial",
        ["no signed audit checkpoint exists yet outside the database"],
    )
    for i in range(3):
        audit.record("create", make_plan(f"extra-{i}"), after={"i": i})
    checkpoints.sign_head()
    assert evaluate_rule("audit_chain_intact", _evidence(plan))["status"] == "met"

    keep = AuditChainHead.objects.get().seq - 2
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM core_auditentry WHERE seq > %s", [keep])
    AuditChainHead.objects.filter(pk=1).update(seq=keep, hash=AuditEntry.objects.get(seq=keep).hash)
    truncated = evaluate_rule("audit_chain_intact", _evidence(plan))
    assert truncated["status"] == "not_met"
    assert "the chain was truncated" in truncated["gaps"][0]


def test_the_period_ends_with_its_last_day() -> None:
    from datetime import UTC, datetime, time

    plan = _tier1_plan()
    end = TODAY - timedelta(days=10)
    make_result(plan, test_date=datetime.combine(end, time(23, 59), tzinfo=UTC))
    make_result(plan, test_date=datetime.combine(end + timedelta(days=1), time(0, 0), tzinfo=UTC))
    ev = _evidence(plan, start=end - timedelta(days=30), end=end)
    assert [t.test_date.date() for t in ev.tests_in_period()] == [end]
