"""The records a report is judged on, read once for a scope (plans and period) and shared by every rule and
by every framework evaluated on the same scope.

Times are UTC. The period runs from `period_start` 00:00 to the end of `period_end`, and never past the moment
the report is generated: what has not happened yet cannot be evidence. "The 12 months up to the end of the
period" is the 365 days before that end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Prefetch, Q

from analytics.models import DRTestResult, ImpactAnalysis, TestParticipant
from analytics.outcomes import test_compliance
from core.models import AuditChainHead
from failover.choices import ExecutionType
from failover.models import ApprovalDecision, FailoverExecution
from plans.models import Application, DRPlan, RecoveryStrategy
from runbooks.choices import VersionStatus
from runbooks.models import RunbookApproval, RunbookVersion

YEAR = timedelta(days=365)
RECOVERY_EXECUTIONS = (ExecutionType.PLANNED, ExecutionType.UNPLANNED, ExecutionType.FAILBACK, ExecutionType.TEST)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def ref(kind: str, pk: Any, label: str) -> dict[str, Any]:
    """One evidence record: what it is (model), its id, and what it shows."""
    return {"kind": kind, "id": pk, "label": label}


def seconds(value: float | None) -> str:
    if value is None:
        return "not measured"
    value = float(value)
    if value >= 3600 and value % 60 == 0:
        hours, rest = divmod(int(value), 3600)
        return f"{hours} h {rest // 60} min" if rest else f"{hours} h"
    if value >= 120:
        return f"{value / 60:.0f} min" if value % 60 == 0 else f"{value / 60:.1f} min"
    return f"{value:g} s"


@dataclass
class Evidence:
    plans: list[DRPlan]
    period_start: date
    period_end: date
    now: datetime
    cache: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.window_start = day_start(self.period_start)
        # the last microsecond of period_end (comparisons are inclusive), or now if that is earlier
        self.window_end = min(day_start(self.period_end) + timedelta(days=1, microseconds=-1), self.now)
        self.year_start = self.window_end - YEAR
        self.plan_ids = [p.pk for p in self.plans]

    # --- scope ------------------------------------------------------------------------------------
    @classmethod
    def load(cls, plan_ids: list[int], period_start: date, period_end: date, now: datetime) -> Evidence:
        plans = list(
            DRPlan.objects.filter(pk__in=plan_ids)
            .select_related("primary_site", "dr_site")
            .prefetch_related(
                Prefetch("applications", queryset=Application.objects.select_related("rto_target").order_by("slug")),
                Prefetch(
                    "recovery_strategies",
                    queryset=RecoveryStrategy.objects.prefetch_related("steps", "validation_checks"),
                ),
            )
            .order_by("plan_id")
        )
        return cls(plans=plans, period_start=period_start, period_end=period_end, now=now)

    @cached_property
    def applications(self) -> list[Application]:
        seen: dict[int, Application] = {}
        for plan in self.plans:
            for app in plan.applications.all():
                seen.setdefault(app.pk, app)
        return sorted(seen.values(), key=lambda a: (a.tier, a.slug))

    def apps_of(self, plan: DRPlan) -> list[Application]:
        return list(plan.applications.all())

    def has_tier1(self, plan: DRPlan) -> bool:
        return any(app.tier == 1 for app in plan.applications.all())

    # --- tests --------------------------------------------------------------------------------------
    @cached_property
    def tests(self) -> list[DRTestResult]:
        """Every test of the plans from the start of the 12 months (or of the period, if earlier) to its end."""
        since = min(self.window_start, self.year_start)
        return list(
            DRTestResult.objects.filter(plan_id__in=self.plan_ids, test_date__gte=since, test_date__lte=self.window_end)
            .select_related("plan", "execution")
            .prefetch_related(
                "findings",
                "action_items",
                Prefetch("participants", queryset=TestParticipant.objects.select_related("user")),
            )
            .order_by("test_date", "pk")
        )

    def tests_between(self, start: datetime, plan: DRPlan | None = None) -> list[DRTestResult]:
        return [
            t for t in self.tests if start <= t.test_date <= self.window_end and (plan is None or t.plan_id == plan.pk)
        ]

    def tests_in_period(self, plan: DRPlan | None = None) -> list[DRTestResult]:
        return self.tests_between(self.window_start, plan)

    def tests_in_year(self, plan: DRPlan | None = None) -> list[DRTestResult]:
        return self.tests_between(self.year_start, plan)

    def testing_rows(self) -> list[dict[str, Any]]:
        """Per plan: tests required by its frequency, done and passed in the period: exactly what
        GET /api/v1/dr/test/compliance (analytics.outcomes.test_compliance) answers for this window and these
        plans, so the report's testing section and that endpoint never disagree."""
        if "testing_rows" not in self.cache:
            rows = test_compliance(self.window_end, since=self.window_start, plan_ids=self.plan_ids)
            by_plan = {row["plan"]: row for row in rows}
            self.cache["testing_rows"] = [by_plan[plan.pk] for plan in self.plans]
        return self.cache["testing_rows"]

    # --- runbooks -------------------------------------------------------------------------------------
    @cached_property
    def versions(self) -> list[RunbookVersion]:
        return list(
            RunbookVersion.objects.filter(application_id__in=[a.pk for a in self.applications])
            .select_related("runbook", "application", "created_by")
            .prefetch_related(
                Prefetch("decisions", queryset=RunbookApproval.objects.select_related("user").order_by("decided_at")),
                "contributors",
            )
            .order_by("runbook__slug", "created_at", "pk")
        )

    def versions_of(self, app: Application, categories: tuple[str, ...]) -> list[RunbookVersion]:
        return [v for v in self.versions if v.application_id == app.pk and v.category in categories]

    def approved_by_end(self, version: RunbookVersion) -> bool:
        return (
            version.status in (VersionStatus.APPROVED, VersionStatus.SUPERSEDED)
            and version.approved_at is not None
            and version.approved_at <= self.window_end
        )

    # --- executions, impact analyses, people, audit ------------------------------------------------
    @cached_property
    def executions(self) -> list[FailoverExecution]:
        return list(
            FailoverExecution.objects.filter(
                plan_id__in=self.plan_ids,
                dry_run=False,
                execution_type__in=RECOVERY_EXECUTIONS,
                triggered_at__gte=min(self.window_start, self.year_start),
                triggered_at__lte=self.window_end,
            )
            .select_related("plan", "triggered_by")
            .prefetch_related(
                Prefetch(
                    "approval_decisions",
                    queryset=ApprovalDecision.objects.filter(step_run__isnull=True)
                    .select_related("user")
                    .order_by("decided_at"),
                )
            )
            .order_by("triggered_at", "pk")
        )

    def executions_in_period(self) -> list[FailoverExecution]:
        return [e for e in self.executions if e.triggered_at >= self.window_start]

    @cached_property
    def impact_analyses(self) -> list[ImpactAnalysis]:
        return list(ImpactAnalysis.objects.filter(Q(plan_id__in=self.plan_ids) | Q(plan__isnull=True)).order_by("pk"))

    @cached_property
    def privileged_users(self) -> list[tuple[User, list[str]]]:
        """Active users who may run or approve failovers, with the roles that let them."""
        wanted = Q(groups__permissions__codename__in=["run_failover", "approve_execution"]) & Q(
            groups__permissions__content_type__app_label="failover"
        )
        users = (
            User.objects.filter(is_active=True)
            .filter(wanted | Q(is_superuser=True))
            .distinct()
            .prefetch_related("groups")
            .order_by("username")
        )
        return [
            (u, sorted({g.name for g in u.groups.all()} | ({"superuser"} if u.is_superuser else set()))) for u in users
        ]

    @cached_property
    def audit_head(self) -> tuple[int, str]:
        head = AuditChainHead.objects.filter(pk=1).first()
        return (head.seq, head.hash) if head else (0, "0" * 64)

    @cached_property
    def audit_check(self) -> dict[str, Any]:
        """The hash chain walked once, and the signed checkpoints kept outside the database compared with it."""
        from core import audit

        broken = audit.verify_chain()
        problems, latest = checkpoint_state() if broken is None else ([], None)
        return {
            "broken": None if broken is None else f"entry #{broken.seq}: {broken.reason}",
            "checkpoint_problems": problems,
            "latest_checkpoint": latest,
        }


def checkpoint_state() -> tuple[list[str], dict[str, Any] | None]:
    """(problems found comparing the chain with its signed checkpoints, the latest checkpoint)."""
    from core import checkpoints

    store = checkpoints.default_store()
    problems = [p.reason for p in checkpoints.verify_against_chain(store)]
    latest = store.latest()
    return problems, (None if latest is None else {"seq": latest.seq, "at": latest.at, "hash": latest.hash})
