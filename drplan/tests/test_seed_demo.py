"""seed_demo: the Northwind Retail demo organisation, loaded idempotently."""

from __future__ import annotations

import io
from datetime import date

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from analytics import models as analytics_models
from analytics.models import ActionItem, DRTestResult, ImpactAnalysis, RTOTarget
from compliance.models import ComplianceReport, ComplianceRequirement
from core.audit import verify_chain
from core.choices import AuthMethod
from core.models import AuditEntry
from drplan.management.commands.seed_demo import (
    DEMO_RUNBOOKS_FILE,
    TEMPLATES_DIR,
    Seeder,
    find_cycle,
    load_demo_data,
)
from plans.models import (
    Application,
    ApplicationDependency,
    DRPlan,
    RecoveryStrategy,
    Site,
    StrategyCondition,
    StrategyStep,
    ValidationCheck,
)
from runbooks.choices import VersionStatus
from runbooks.models import Runbook, RunbookVersion

pytestmark = pytest.mark.django_db

MODELS = [
    User,
    Site,
    Application,
    ApplicationDependency,
    DRPlan,
    RecoveryStrategy,
    StrategyStep,
    StrategyCondition,
    ValidationCheck,
    RTOTarget,
    DRTestResult,
    analytics_models.TestFinding,
    analytics_models.TestParticipant,
    ActionItem,
    ImpactAnalysis,
    ComplianceReport,
    ComplianceRequirement,
    Runbook,
    RunbookVersion,
    AuditEntry,
]
APPS = {
    "orders-db",
    "orders-api",
    "payments-db",
    "payments-api",
    "web-frontend",
    "auth-service",
    "cache-redis",
    "message-queue",
    "reporting-warehouse",
    "reporting-api",
    "file-storage",
    "monitoring",
    "lab-postgres",
    "lab-redis",
    "lab-orders-app",
}
DEMO_USERS = {
    "viewer": "viewer-demo-pw",
    "operator": "operator-demo-pw",
    "approver": "approver-demo-pw",
    "auditor": "auditor-demo-pw",
    "admin": "admin-demo-pw",
}


def seed(*args: str) -> str:
    """The command without its attested compliance reports (seconds each: compliance/tests/test_reports.py
    seeds them once and verifies them)."""
    out = io.StringIO()
    call_command("seed_demo", "--skip-reports", *args, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {m._meta.label: m.objects.count() for m in MODELS}


def test_seeding_twice_changes_nothing() -> None:
    seed()
    first = counts()
    seed()
    assert counts() == first
    assert first["plans.DRPlan"] == 4
    assert first["plans.Application"] == 15
    assert first["plans.Site"] == 2
    assert first["auth.User"] == 5
    assert verify_chain() is None


def test_reseeding_on_a_later_day_changes_nothing() -> None:
    """Relative dates are set on creation only, so a re-run next quarter writes nothing."""
    Seeder(load_demo_data(), date(2025, 1, 15), reports=False).run()
    first = counts()
    dates = sorted(DRTestResult.objects.values_list("test_date", flat=True))
    later = Seeder(load_demo_data(), date(2025, 5, 2), reports=False)
    later.run()
    assert counts() == first
    assert (sum(later.created.values()), sum(later.updated.values())) == (0, 0)
    assert sorted(DRTestResult.objects.values_list("test_date", flat=True)) == dates


def test_demo_organisation_content() -> None:
    seed()
    assert set(Application.objects.values_list("slug", flat=True)) == APPS
    assert set(Application.objects.values_list("tier", flat=True)) == {1, 2, 3}
    assert set(RTOTarget.objects.values_list("application__slug", flat=True)) == APPS

    edges: dict[str, list[str]] = {slug: [] for slug in APPS}
    for app, dep in ApplicationDependency.objects.values_list("application__slug", "depends_on__slug"):
        edges[app].append(dep)
    assert find_cycle(edges) is None
    assert {"orders-db", "cache-redis", "auth-service"} <= set(edges["orders-api"])

    plans = {p.plan_id: p for p in DRPlan.objects.all()}
    assert set(plans) == {"core-commerce", "payments-pci", "back-office", "lab"}
    assert len({p.strategy for p in plans.values()}) == 3
    pci = plans["payments-pci"]
    assert (pci.strategy, pci.rto_seconds, pci.rpo_seconds, pci.failover_mode) == ("active_active", 300, 0, "automatic")
    assert set(pci.compliance_frameworks) == {"pci_dss", "sox"}
    for plan in plans.values():
        strategies = list(plan.recovery_strategies.all())
        assert strategies, plan.plan_id
        assert all(s.steps.exists() and s.validation_checks.exists() for s in strategies)
        assert plan.applications.exists()
        assert plan.test_results.count() >= (0 if plan.plan_id == "lab" else 2)  # the lab records real tests
    assert set(DRTestResult.objects.values_list("outcome", flat=True)) == {"passed", "partial", "failed"}

    assert not ComplianceReport.objects.exists()  # --skip-reports
    assert ImpactAnalysis.objects.filter(scenario="Frankfurt DC total loss").count() == 1

    templates = sorted(TEMPLATES_DIR.glob("*.yaml"))
    assert templates
    demo_runbooks = yaml.safe_load(DEMO_RUNBOOKS_FILE.read_text())
    assert Runbook.objects.count() == len(templates) + len(demo_runbooks)

    # Every created row is audited as the system, via the command line.
    plan_entries = AuditEntry.objects.filter(object_type="plans.drplan", action="create")
    assert plan_entries.count() == 4
    assert set(plan_entries.values_list("auth_method", "actor_id")) == {(AuthMethod.CLI, None)}


def test_demo_users_log_in_with_documented_passwords_and_hold_their_role() -> None:
    seed()
    for username, password in DEMO_USERS.items():
        user = User.objects.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [username]
        assert user.is_staff
        assert user.is_superuser == (username == "admin")
        assert Client().login(username=username, password=password), username


def test_rerun_keeps_a_changed_password() -> None:
    seed()
    viewer = User.objects.get(username="viewer")
    viewer.set_password("my-own-secret-pw")
    viewer.save()
    seed()
    assert Client().login(username="viewer", password="my-own-secret-pw")
    assert not Client().login(username="viewer", password="viewer-demo-pw")


def test_if_empty_skips_when_a_plan_exists() -> None:
    DRPlan.objects.create(plan_id="existing", name="Existing", rto_seconds=60, rpo_seconds=60)
    out = seed("--if-empty")
    assert "nothing to do" in out
    assert DRPlan.objects.count() == 1
    assert Application.objects.count() == 0
    assert User.objects.count() == 0


def test_if_empty_seeds_an_empty_database() -> None:
    seed("--if-empty")
    assert DRPlan.objects.count() == 4


def test_find_cycle_reports_a_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b"], "b": [], "c": ["a", "b"]}) is None


def test_demo_runbooks_are_approved_level_by_level_by_people_who_did_not_write_them() -> None:
    """The demo organisation's own runbooks went through the approval service: submitted by the system that
    imported them, approved by the demo approver (level 1) and, for tier 1, the admin (level 2); one restore
    waits for its second level. Every step is safe to run: a person's checklist, a wait or a no-op."""
    out = seed()
    versions = {
        v.runbook.slug: v
        for v in RunbookVersion.objects.filter(runbook__slug__startswith="demo-").select_related(
            "runbook", "application"
        )
    }
    assert len(versions) == 10
    pending = versions.pop("demo-reporting-warehouse-restore")
    assert pending.status == VersionStatus.PENDING_APPROVAL
    assert list(pending.decisions.values_list("level", "user__username")) == [(1, "approver")]
    for slug, version in versions.items():
        assert version.status == VersionStatus.APPROVED, slug
        assert version.created_by is None and not version.contributors.exists()  # imported by the system
        decisions = list(version.decisions.order_by("level").values_list("level", "user__username", "decision"))
        levels = list(version.approval_levels.order_by("level").values_list("role", flat=True))
        expected = [(1, "approver", "approve"), (2, "admin", "approve")]
        assert decisions == expected[: len(levels)], slug
        assert levels == (["approver", "admin"] if version.application.tier == 1 else ["approver"]), slug
        assert set(version.steps.values_list("action", flat=True)) <= {"manual", "wait", "noop"}, slug
    assert "demo-auth-service-failover@1.0.0 approved" in out
    assert "demo-reporting-warehouse-restore@1.0.0 pending_approval" in out
    # Every approval is in the audit chain, as the approver, through the command line.
    approvals = AuditEntry.objects.filter(object_type="runbooks.runbookapproval", action="approve")
    assert approvals.count() == 6 * 2 + 3 + 1
    assert set(approvals.values_list("actor_username", "auth_method")) == {
        ("approver", AuthMethod.CLI),
        ("admin", AuthMethod.CLI),
    }
    # Seeding again asks nobody twice and changes nothing.
    before = AuditEntry.objects.count()
    seed()
    assert AuditEntry.objects.count() == before
    assert RunbookVersion.objects.get(pk=pending.pk).status == VersionStatus.PENDING_APPROVAL


def test_the_demo_has_alert_rules_and_subscriptions_on_a_channel() -> None:
    from analytics.notifications.models import AlertRule, NotificationChannel, Subscription

    seed()
    channel = NotificationChannel.objects.get(name="dr-oncall-mail")
    assert (channel.kind, channel.recipients, channel.enabled) == ("email", ["dr-oncall@northwind.example"], True)
    rules = {r.name: r for r in AlertRule.objects.all()}
    assert {(r.metric, r.scope) for r in rules.values()} >= {("rpo_seconds", "application"), ("rpo_seconds", "plan")}
    assert all(list(r.channels.all()) == [channel] for r in rules.values())
    assert rules["Orders DB RPO above 60 s"].application.slug == "orders-db"
    approvals = Subscription.objects.get(event_kinds=["approval_waiting"])
    assert (approvals.role, approvals.plan, approvals.channel) == ("approver", None, channel)
    assert AuditEntry.objects.filter(object_type="analytics.alertrule", action="create").count() == len(rules)
