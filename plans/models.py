"""What must survive a disaster: sites, applications and their dependencies, DR plans
with targets and strategies, and the recovery strategies that describe how."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from core.validators import validate_natural_key
from plans.choices import (
    CheckType,
    ComplianceStatus,
    ConditionKind,
    FailoverMode,
    PlanStatus,
    ReplicationMode,
    RollbackTrigger,
    Severity,
    StrategyKind,
    StrategyType,
    TestFrequency,
    Tier,
)

MONEY = {"max_digits": 14, "decimal_places": 2, "default": Decimal("0"), "validators": [MinValueValidator(0)]}


class Site(models.Model):
    """A datacenter, cloud region or colocation facility."""

    class Kind(models.TextChoices):
        DATACENTER = "datacenter", "Datacenter"
        CLOUD_REGION = "cloud_region", "Cloud region"
        COLOCATION = "colocation", "Colocation"

    code = models.SlugField(
        max_length=50, unique=True, validators=[validate_natural_key], help_text="Short unique id, e.g. 'fra1'."
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.DATACENTER)
    location = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Application(models.Model):
    """A protected application (asset). `depends_on` is the dependency map: an
    application's recovery waits for the applications it depends on."""

    slug = models.SlugField(max_length=100, unique=True, validators=[validate_natural_key])
    name = models.CharField(max_length=200)
    tier = models.PositiveSmallIntegerField(choices=Tier.choices, default=Tier.TIER_2)
    owner = models.CharField(max_length=200, blank=True, help_text="Owning team or person.")
    owner_email = models.EmailField(blank=True)
    description = models.TextField(blank=True)
    site = models.ForeignKey(
        Site,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="applications",
        help_text="Where the application normally runs.",
    )
    depends_on = models.ManyToManyField(
        "self", symmetrical=False, blank=True, through="ApplicationDependency", related_name="dependents"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tier", "slug"]

    def __str__(self) -> str:
        return self.name


class ApplicationDependency(models.Model):
    """`application` needs `depends_on` up first. Cycles are rejected by plans.services."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="dependency_links")
    depends_on = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="dependent_links")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["application", "depends_on"], name="unique_application_dependency"),
            models.CheckConstraint(
                condition=~models.Q(application=models.F("depends_on")), name="application_not_self_dependent"
            ),
        ]
        verbose_name_plural = "application dependencies"

    def __str__(self) -> str:
        return f"{self.application} needs {self.depends_on}"


class DRPlan(models.Model):
    """A disaster-recovery plan: scope, targets, strategy, testing cadence, compliance, costs.

    Testing statistics (last test, success rate, average RTO/RPO) are derived from
    test results by plans.selectors, never stored here.
    """

    plan_id = models.SlugField(
        max_length=100,
        unique=True,
        validators=[validate_natural_key],
        help_text="Stable identifier, e.g. 'payments-dr' (never all digits).",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=PlanStatus.choices, default=PlanStatus.DRAFT, db_index=True)

    # Scope
    applications = models.ManyToManyField(Application, blank=True, related_name="plans")
    sites = models.ManyToManyField(Site, blank=True, related_name="plans", help_text="Datacenters in scope.")

    # Targets
    rto_seconds = models.PositiveIntegerField(help_text="Recovery time objective, seconds.")
    rpo_seconds = models.PositiveIntegerField(help_text="Recovery point objective, seconds.")
    data_loss_threshold_mb = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    downtime_threshold_seconds = models.PositiveIntegerField(default=0)

    # Strategy
    strategy = models.CharField(max_length=20, choices=StrategyType.choices, default=StrategyType.ACTIVE_PASSIVE)
    primary_site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.PROTECT, related_name="primary_for_plans"
    )
    dr_site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT, related_name="dr_for_plans")
    replication_mode = models.CharField(
        max_length=20, choices=ReplicationMode.choices, default=ReplicationMode.ASYNCHRONOUS
    )
    failover_mode = models.CharField(max_length=20, choices=FailoverMode.choices, default=FailoverMode.MANUAL)
    detection_window_seconds = models.PositiveIntegerField(
        default=10,
        help_text="Monitoring: how long a failure must last before it counts as a disaster (automatic modes).",
    )
    approval_timeout_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="An unanswered approval request expires after this; empty = never."
    )

    # Testing cadence
    test_frequency = models.CharField(max_length=20, choices=TestFrequency.choices, default=TestFrequency.QUARTERLY)

    # Compliance
    compliance_frameworks = models.JSONField(default=list, blank=True, help_text="List of framework codes.")
    last_audit_date = models.DateField(null=True, blank=True)
    next_audit_date = models.DateField(null=True, blank=True)
    compliance_status = models.CharField(
        max_length=20, choices=ComplianceStatus.choices, default=ComplianceStatus.UNKNOWN
    )

    # Costs
    dr_infrastructure_cost_monthly = models.DecimalField(**MONEY)
    testing_cost_monthly = models.DecimalField(**MONEY)
    downtime_cost_per_hour = models.DecimalField(**MONEY)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plan_id"]
        verbose_name = "DR plan"

    def __str__(self) -> str:
        return f"{self.name} ({self.plan_id})"


class RecoveryStrategy(models.Model):
    """How a plan recovers: an ordered list of steps, conditions and validation checks."""

    plan = models.ForeignKey(DRPlan, on_delete=models.CASCADE, related_name="recovery_strategies")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=StrategyKind.choices, default=StrategyKind.FAILOVER)
    description = models.TextField(blank=True)
    rollback_trigger = models.CharField(
        max_length=25, choices=RollbackTrigger.choices, default=RollbackTrigger.CRITICAL_CHECKS_FAIL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plan__plan_id", "kind", "name"]
        verbose_name_plural = "recovery strategies"
        constraints = [models.UniqueConstraint(fields=["plan", "name"], name="unique_strategy_name_per_plan")]

    def __str__(self) -> str:
        return f"{self.plan.plan_id}: {self.name} ({self.kind})"


class StrategyStep(models.Model):
    strategy = models.ForeignKey(RecoveryStrategy, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField()
    action = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    estimated_duration_seconds = models.PositiveIntegerField(default=0)
    automation_enabled = models.BooleanField(default=False)
    automation_script = models.CharField(max_length=500, blank=True)
    approval_required = models.BooleanField(default=False)

    class Meta:
        ordering = ["strategy", "order"]
        constraints = [models.UniqueConstraint(fields=["strategy", "order"], name="unique_strategy_step_order")]

    def __str__(self) -> str:
        return f"{self.order}. {self.action}"


class StrategyCondition(models.Model):
    """A prerequisite that must hold, or a blocker that forbids running the strategy."""

    strategy = models.ForeignKey(RecoveryStrategy, on_delete=models.CASCADE, related_name="conditions")
    kind = models.CharField(max_length=15, choices=ConditionKind.choices)
    description = models.CharField(max_length=500)

    class Meta:
        ordering = ["strategy", "kind", "id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.description}"


class ValidationCheck(models.Model):
    """A check run after recovery; `threshold` is in `unit` (ms, s, %, rows …)."""

    strategy = models.ForeignKey(RecoveryStrategy, on_delete=models.CASCADE, related_name="validation_checks")
    name = models.CharField(max_length=200)
    check_type = models.CharField(max_length=20, choices=CheckType.choices)
    target = models.CharField(max_length=500, blank=True, help_text="Endpoint, host:port or query checked.")
    threshold = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    unit = models.CharField(max_length=20, blank=True)
    query = models.TextField(
        blank=True, help_text="data_integrity: SQL whose first column is compared with the threshold."
    )
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.HIGH)

    class Meta:
        ordering = ["strategy", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.check_type})"


class PlanApprovalLevel(models.Model):
    """Go/no-go approval of a plan's failovers and failbacks: level N needs `min_approvers`
    distinct holders of `role`, never the person who triggered the execution."""

    plan = models.ForeignKey(DRPlan, on_delete=models.CASCADE, related_name="approval_levels")
    level = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    role = models.CharField(max_length=100, default="approver")
    min_approvers = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["plan", "level"]
        constraints = [models.UniqueConstraint(fields=["plan", "level"], name="unique_plan_approval_level")]

    def __str__(self) -> str:
        return f"level {self.level}: {self.min_approvers} x {self.role}"
