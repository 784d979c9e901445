"""One row (at least) of every main model, so admin list/change pages run their callables."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from analytics.models import (
    ActionItem,
    DRTestResult,
    ImpactAnalysis,
    Monitor,
    Probe,
    ProbeSample,
    RollupState,
    RTOTarget,
    SampleRollup,
    SLAViolation,
    TestFinding,
    TestParticipant,
)
from compliance.models import ComplianceReport, ComplianceReportPlan, ComplianceRequirement
from core import audit
from core.choices import AuditAction
from failover.models import ApprovalDecision, ExecutionEvent, FailoverExecution, StepRun, ValidationResult
from plans.models import (
    Application,
    ApplicationDependency,
    DRPlan,
    PlanApprovalLevel,
    RecoveryStrategy,
    Site,
    StrategyCondition,
    StrategyStep,
    ValidationCheck,
)
from runbooks.choices import VersionStatus
from runbooks.models import (
    ApprovalLevel,
    Runbook,
    RunbookApproval,
    RunbookImport,
    RunbookParameter,
    RunbookStep,
    RunbookVersion,
)


def make_sample_data(user: User) -> dict[str, Any]:
    now = timezone.now()
    fra = Site.objects.create(code="fra1", name="Frankfurt", location="DE")
    ams = Site.objects.create(code="ams1", name="Amsterdam", kind=Site.Kind.CLOUD_REGION)
    db = Application.objects.create(slug="db", name="Database", tier=1, site=fra)
    web = Application.objects.create(slug="web", name="Web shop", tier=1, site=fra)
    dep = ApplicationDependency.objects.create(application=web, depends_on=db)
    plan = DRPlan.objects.create(
        plan_id="payments-dr", name="Payments", rto_seconds=5400, rpo_seconds=300, primary_site=fra, dr_site=ams
    )
    plan.applications.set([db, web])
    plan.sites.set([fra, ams])
    strategy = RecoveryStrategy.objects.create(plan=plan, name="Failover to AMS")
    StrategyStep.objects.create(strategy=strategy, order=1, action="Promote replica", estimated_duration_seconds=600)
    StrategyCondition.objects.create(strategy=strategy, kind="prerequisite", description="Replica in sync")
    ValidationCheck.objects.create(strategy=strategy, name="HTTP up", check_type="connectivity", target="https://x")

    runbook = Runbook.objects.create(slug="db-failover")
    draft = RunbookVersion.objects.create(runbook=runbook, version="1.1.0", name="DB failover", application=db)
    RunbookStep.objects.create(version=draft, step_id="check", number=1, title="Check", action="noop")
    approved = RunbookVersion.objects.create(runbook=runbook, version="1.0.0", name="DB failover", application=db)
    RunbookParameter.objects.create(version=approved, name="region", default="ams")
    step = RunbookStep.objects.create(version=approved, step_id="promote", number=1, title="Promote", action="noop")
    ApprovalLevel.objects.create(version=approved, level=1, role="approver")
    RunbookApproval.objects.create(version=approved, level=1, user=user, decision="approve")
    RunbookImport.objects.create(
        version=approved,  # provenance: evidence, like the approval
        source_format="rundeck",
        filename="db-failover.yaml",
        original="- name: DB failover\n",
        original_sha256="0" * 64,
        report={"format": "rundeck", "summary": {}, "entries": [], "notes": []},
    )
    # Frozen last, by a queryset update: the model may refuse to save a frozen version.
    RunbookVersion.objects.filter(pk=approved.pk).update(status=VersionStatus.APPROVED, approved_at=now)
    approved.refresh_from_db()

    execution = FailoverExecution.objects.create(
        plan=plan, execution_type="test", status="completed", triggered_at=now, actual_rto_seconds=3700
    )
    step_run = StepRun.objects.create(
        execution=execution, step_key="promote", runbook_step=step, title="Promote", action="noop", duration_seconds=5
    )
    ExecutionEvent.objects.create(execution=execution, seq=1, step_run=step_run, kind="log", message="promoted")
    ValidationResult.objects.create(
        execution=execution, name="HTTP up", check_type="connectivity", status="passed", checked_at=now
    )
    ApprovalDecision.objects.create(execution=execution, level=1, user=user, decision="approve", comment="go")
    PlanApprovalLevel.objects.create(plan=plan, level=1, role="approver", min_approvers=1)

    RTOTarget.objects.create(
        application=db, tier=1, rto_target_seconds=3600, rpo_target_seconds=60, sla_breach_threshold_seconds=7200
    )
    result = DRTestResult.objects.create(
        plan=plan,
        execution=execution,
        test_date=now,
        outcome="passed",
        target_rto_seconds=5400,
        target_rpo_seconds=300,
        actual_rto_seconds=3700,
    )
    TestFinding.objects.create(test_result=result, severity="low", category="process", description="Slow DNS")
    TestParticipant.objects.create(test_result=result, name="Ana", user=user, role="lead")
    ActionItem.objects.create(test_result=result, description="Lower DNS TTL", assignee="net", due_date=now.date())
    ImpactAnalysis.objects.create(plan=plan, scenario="Region loss", revenue_per_hour=Decimal("1000"))
    report = ComplianceReport.objects.create(
        framework="iso_22301",
        period_start=dt.date(2025, 1, 1),
        period_end=dt.date(2025, 12, 31),
        overall_status="compliant",
    )
    ComplianceReportPlan.objects.create(report=report, plan=plan)
    ComplianceRequirement.objects.create(report=report, requirement_id="8.5", title="Exercising", status="met")
    entry = audit.record(AuditAction.CREATE, plan, actor=user, after=audit.snapshot(plan))
    monitor = Monitor.objects.create(slug="db-replication", application=db, plan=plan)
    probe = Probe.objects.create(
        monitor=monitor,
        key="standby",
        action="postgres.replication_status",
        params={"dsn_secret": "db"},
        interval_seconds=60,
    )
    ProbeSample.objects.create(probe=probe, application=db, at=now, status="ok", up=True, rpo_seconds=3.5, lag_bytes=10)
    SampleRollup.objects.create(probe=probe, application=db, resolution="hour", bucket=3600, samples=60, rpo_count=60)
    RollupState.objects.create(hours_until=now, days_until=now)
    SLAViolation.objects.create(kind="rpo", application=db, started_at=now, worst_value=90, threshold=60)
    return {
        "plan": plan,
        "dependency": dep,
        "strategy": strategy,
        "runbook": runbook,
        "draft": draft,
        "approved": approved,
        "execution": execution,
        "step_run": step_run,
        "result": result,
        "report": report,
        "entry": entry,
    }
