"""What a finished execution leaves behind in analytics (analytics/outcomes.py): DR test results, the RTO
targets' measured figures, and test compliance per plan."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics import outcomes
from analytics.models import DRTestResult, RTOTarget
from failover import services
from failover.models import FailoverExecution
from failover.tests.engine_factories import three_app_plan
from plans.models import DRPlan
from plans.tests.factories import make_plan

pytestmark = pytest.mark.django_db


# --- Outcome of an execution ------------------------------------------------------------------------


def finish(execution, status="completed", rto=100.0, **fields):
    now = timezone.now()
    FailoverExecution.objects.filter(pk=execution.pk).update(
        status=status, started_at=now, finished_at=now, actual_rto_seconds=rto, **fields
    )


@pytest.fixture
def tested(users, enqueued):
    plan, apps = three_app_plan(categories=("test",), rto_seconds=300, rpo_seconds=60)
    for app in apps.values():
        RTOTarget.objects.create(
            application=app,
            tier=app.tier,
            rto_target_seconds=300,
            rpo_target_seconds=60,
            sla_breach_threshold_seconds=200,
        )
    return plan, services.start_test(plan, actor=users["operator"])


@pytest.mark.parametrize(
    ("status", "rto", "rpo", "outcome"),
    [
        ("completed", 100.0, 10.0, "passed"),
        ("completed", 400.0, None, "partial"),
        ("completed", 100.0, 90.0, "partial"),
        ("rolled_back", 100.0, None, "failed"),
    ],
)
def test_record_outcome_of_a_test(tested, status, rto, rpo, outcome):
    plan, execution = tested
    finish(execution, status, rto, actual_rpo_seconds=rpo)
    outcomes.record_outcome(execution.pk)
    result = DRTestResult.objects.get(execution=execution)
    assert (result.plan, result.outcome, result.actual_rto_seconds, result.target_rto_seconds) == (
        plan,
        outcome,
        rto,
        300,
    )
    assert result.test_type == "ad_hoc"
    outcomes.record_outcome(execution.pk)  # idempotent
    assert DRTestResult.objects.filter(execution=execution).count() == 1


def test_record_outcome_updates_rto_targets_and_breaches(tested):
    _, execution = tested
    finish(execution, "completed", 250.0)
    outcomes.record_outcome(execution.pk)
    outcomes.record_outcome(execution.pk)
    targets = list(RTOTarget.objects.order_by("pk"))
    assert [(t.current_rto_seconds, t.breach_count, t.trend) for t in targets] == [(250.0, 1, "stable")] * 3


def test_record_outcome_ignores_dry_runs_and_unstarted_tests(tested, users):
    plan, execution = tested
    services.cancel(execution, users["operator"])
    outcomes.record_outcome(execution.pk)
    assert DRTestResult.objects.count() == 0
    dry = services.start_test(plan, actor=users["operator"], dry_run=True)
    finish(dry)
    outcomes.record_outcome(dry.pk)
    assert DRTestResult.objects.count() == 0
    assert RTOTarget.objects.filter(current_rto_seconds__isnull=False).count() == 0


def test_compliance_counts_required_done_passed():
    now = timezone.now()
    plan = make_plan("monthly-dr", test_frequency="monthly")
    young = make_plan("young-dr", test_frequency="quarterly")
    DRPlan.objects.filter(pk=plan.pk).update(created_at=now - timedelta(days=800))
    DRPlan.objects.filter(pk=young.pk).update(created_at=now - timedelta(days=100))
    for days, outcome in [(10, "passed"), (40, "failed"), (70, "passed"), (400, "passed")]:
        DRTestResult.objects.create(
            plan=plan,
            test_date=now - timedelta(days=days),
            outcome=outcome,
            target_rto_seconds=1,
            target_rpo_seconds=1,
        )
    rows = {r["plan_id"]: r for r in outcomes.test_compliance(now)}
    assert {k: rows["monthly-dr"][k] for k in ("required", "done", "passed", "compliant")} == {
        "required": 12,
        "done": 3,
        "passed": 2,
        "compliant": False,
    }
    assert {k: rows["young-dr"][k] for k in ("required", "done", "passed", "compliant")} == {
        "required": 1,
        "done": 0,
        "passed": 0,
        "compliant": False,
    }
