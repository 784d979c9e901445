"""Measured recovery: RTO targets per application, DR test results, impact analyses."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from analytics.choices import ActionItemStatus, FindingCategory, Level, Sentiment, TestOutcome, TestType, Trend
from plans.choices import Severity, Tier

MONEY = {"max_digits": 14, "decimal_places": 2, "default": Decimal("0"), "validators": [MinValueValidator(0)]}
PERCENT = {
    "max_digits": 7,
    "decimal_places": 4,
    "validators": [MinValueValidator(0), MaxValueValidator(100)],
}


class RTOTarget(models.Model):
    """Service-level recovery targets of one application, and how it is doing against them."""

    application = models.OneToOneField("plans.Application", on_delete=models.CASCADE, related_name="rto_target")
    tier = models.PositiveSmallIntegerField(choices=Tier.choices)
    rto_target_seconds = models.PositiveIntegerField()
    rpo_target_seconds = models.PositiveIntegerField()
    availability_target_percent = models.DecimalField(default=Decimal("99.9"), **PERCENT)
    current_rto_seconds = models.FloatField(null=True, blank=True)
    current_rpo_seconds = models.FloatField(null=True, blank=True)
    current_availability_percent = models.DecimalField(null=True, blank=True, **PERCENT)
    trend = models.CharField(max_length=10, choices=Trend.choices, default=Trend.STABLE)
    sla_breach_threshold_seconds = models.PositiveIntegerField(help_text="Recovery longer than this breaches the SLA.")
    rpo_breach_window_seconds = models.PositiveIntegerField(
        default=300, help_text="Monitoring: RPO above its target for longer than this breaches the SLA."
    )
    breach_count = models.PositiveIntegerField(default=0)
    penalty_per_breach = models.DecimalField(**MONEY)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tier", "application__slug"]
        verbose_name = "RTO target"

    def __str__(self) -> str:
        return f"{self.application}: RTO {self.rto_target_seconds}s / RPO {self.rpo_target_seconds}s"


class DRTestResult(models.Model):
    """One DR test: targets in force at the time versus what was measured."""

    plan = models.ForeignKey("plans.DRPlan", on_delete=models.PROTECT, related_name="test_results")
    execution = models.OneToOneField(
        "failover.FailoverExecution", null=True, blank=True, on_delete=models.PROTECT, related_name="test_result"
    )
    test_type = models.CharField(max_length=12, choices=TestType.choices, default=TestType.SCHEDULED)
    test_date = models.DateTimeField(db_index=True)
    outcome = models.CharField(max_length=10, choices=TestOutcome.choices)
    target_rto_seconds = models.PositiveIntegerField()
    target_rpo_seconds = models.PositiveIntegerField()
    actual_rto_seconds = models.FloatField(null=True, blank=True)
    actual_rpo_seconds = models.FloatField(null=True, blank=True)
    data_loss_mb = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    summary = models.TextField(blank=True)
    lessons_learned = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-test_date"]
        verbose_name = "DR test result"

    def __str__(self) -> str:
        return f"{self.plan.plan_id} test {self.test_date:%Y-%m-%d}: {self.outcome}"

    @property
    def rto_met(self) -> bool | None:
        if self.actual_rto_seconds is None:
            return None
        return self.actual_rto_seconds <= self.target_rto_seconds

    @property
    def rpo_met(self) -> bool | None:
        if self.actual_rpo_seconds is None:
            return None
        return self.actual_rpo_seconds <= self.target_rpo_seconds


class TestFinding(models.Model):
    test_result = models.ForeignKey(DRTestResult, on_delete=models.CASCADE, related_name="findings")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    category = models.CharField(max_length=15, choices=FindingCategory.choices)
    description = models.TextField()
    remediation = models.TextField(blank=True)

    class Meta:
        ordering = ["test_result", "id"]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.description[:60]}"


class TestParticipant(models.Model):
    test_result = models.ForeignKey(DRTestResult, on_delete=models.CASCADE, related_name="participants")
    name = models.CharField(max_length=200)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    role = models.CharField(max_length=100)
    actions = models.TextField(blank=True, help_text="What this person did during the test.")

    class Meta:
        ordering = ["test_result", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"


class ActionItem(models.Model):
    test_result = models.ForeignKey(DRTestResult, on_delete=models.CASCADE, related_name="action_items")
    description = models.TextField()
    assignee = models.CharField(max_length=200)
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=ActionItemStatus.choices, default=ActionItemStatus.OPEN)

    class Meta:
        ordering = ["test_result", "due_date", "id"]

    def __str__(self) -> str:
        return self.description[:60]


class BusinessProcess(models.Model):
    """What the business does with its applications, and what it loses per hour without them.

    Its downtime cost model (plans/costs.py): `cost_curve` escalates the rate with the outage's duration,
    `weekly_profile` weighs it by weekday and hour. It is down while any application it depends on is
    down, directly or through that application's own dependencies."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    owner = models.CharField(max_length=200, blank=True)
    criticality = models.CharField(max_length=10, choices=Level.choices, default=Level.MEDIUM)
    revenue_per_hour = models.DecimalField(**MONEY)
    employees = models.PositiveIntegerField(default=0, help_text="People who cannot work while it is down.")
    customers = models.PositiveIntegerField(default=0, help_text="Customers who cannot be served while it is down.")
    regulatory_frameworks = models.JSONField(
        default=list, blank=True, help_text="Framework codes (plans.choices.ComplianceFramework)."
    )
    applications = models.ManyToManyField("plans.Application", blank=True, related_name="business_processes")
    cost_curve = models.JSONField(
        default=list,
        blank=True,
        help_text='Breakpoints [{"from_hours": 0, "cost_per_hour": 1000}, {"from_hours": 4, "multiplier": 2}]; '
        "empty: the revenue per hour throughout.",
    )
    weekly_profile = models.JSONField(
        default=list, blank=True, help_text="7x24 weights, Monday first, hours of settings.TIME_ZONE; empty: flat."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "business processes"

    def __str__(self) -> str:
        return self.name


class ImpactAnalysis(models.Model):
    """Business impact of a disaster scenario: financial, operational, reputational, regulatory."""

    plan = models.ForeignKey(
        "plans.DRPlan", null=True, blank=True, on_delete=models.CASCADE, related_name="impact_analyses"
    )
    scenario = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    # Financial
    revenue_per_hour = models.DecimalField(**MONEY)
    downtime_cost_1h = models.DecimalField(**MONEY)
    downtime_cost_4h = models.DecimalField(**MONEY)
    downtime_cost_24h = models.DecimalField(**MONEY)
    recovery_cost = models.DecimalField(**MONEY)

    # Operational
    affected_processes = models.JSONField(default=list, blank=True)
    critical_processes = models.JSONField(default=list, blank=True)
    affected_employees = models.PositiveIntegerField(default=0)
    affected_customers = models.PositiveIntegerField(default=0)

    # Reputation
    customer_sentiment = models.CharField(max_length=10, choices=Sentiment.choices, default=Sentiment.NEUTRAL)
    media_exposure = models.CharField(max_length=10, choices=Level.choices, default=Level.LOW)
    brand_damage = models.CharField(max_length=10, choices=Level.choices, default=Level.LOW)
    customer_churn_percent = models.DecimalField(default=Decimal("0"), **PERCENT)

    # Regulatory
    regulatory_frameworks = models.JSONField(default=list, blank=True)
    potential_violations = models.JSONField(default=list, blank=True)
    estimated_fines = models.DecimalField(**MONEY)

    # What was computed from (analytics/impact): what is lost and when, and every figure's working.
    scenario_at = models.DateTimeField(null=True, blank=True, help_text="When the disaster strikes.")
    reputation_score = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(100)], help_text="0-100; its inputs in breakdown."
    )
    inputs = models.JSONField(default=dict, blank=True, help_text="What the computation was asked (lost, at).")
    breakdown = models.JSONField(default=dict, blank=True, help_text="The working of every figure.")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "impact analyses"

    def __str__(self) -> str:
        return self.scenario


# Alerts and notifications (analytics/notifications/): models of this app, kept in their package.
# Continuous monitoring (analytics/monitoring/): monitors, probes, their history, SLA violations.
from analytics.monitoring.models import (  # noqa: E402, F401
    Monitor,
    Probe,
    ProbeSample,
    RollupState,
    SampleRollup,
    SLAViolation,
)
from analytics.notifications.models import (  # noqa: E402, F401
    AlertRule,
    AlertState,
    Delivery,
    DeliveryAttempt,
    Notification,
    NotificationChannel,
    Subscription,
)
