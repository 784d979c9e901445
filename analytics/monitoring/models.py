"""Monitors, probes, their history (raw samples and rollups) and SLA violations.

Imported by analytics/models.py, so the models belong to the analytics app (migration 0004_monitoring)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from analytics.monitoring.choices import Resolution, SampleStatus, ViolationKind
from core.validators import validate_natural_key


class Monitor(models.Model):
    """What is watched for one application (optionally on behalf of one plan): one or more probes."""

    slug = models.SlugField(
        max_length=100, unique=True, validators=[validate_natural_key], help_text="e.g. 'orders-db-replication'."
    )
    application = models.ForeignKey("plans.Application", on_delete=models.CASCADE, related_name="monitors")
    plan = models.ForeignKey("plans.DRPlan", null=True, blank=True, on_delete=models.SET_NULL, related_name="monitors")
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True, help_text="A disabled monitor's probes do not run.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["application__slug", "slug"]

    def __str__(self) -> str:
        return self.slug


class Probe(models.Model):
    """One step of a first-class status action (e.g. postgres.replication_status), run every interval."""

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="probes")
    key = models.SlugField(max_length=100, help_text="Unique within the monitor, e.g. 'standby-lag'.")
    action = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True, help_text="The step's `with`, checked against the action.")
    interval_seconds = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    timeout_seconds = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1)])
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["monitor", "key"]
        constraints = [models.UniqueConstraint(fields=["monitor", "key"], name="probe_key_unique_per_monitor")]

    def __str__(self) -> str:
        return f"{self.monitor.slug}/{self.key} ({self.action})"


class ProbeSample(models.Model):
    """One probe result. Status unknown: the probe timed out or failed, and every value is null."""

    probe = models.ForeignKey(Probe, on_delete=models.CASCADE, related_name="samples")
    application = models.ForeignKey("plans.Application", on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=SampleStatus.choices)
    up = models.BooleanField(null=True, help_text="The service answered (null: cannot be told).")
    rpo_seconds = models.FloatField(null=True)
    lag_bytes = models.BigIntegerField(null=True)
    latency_ms = models.FloatField(null=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["probe", "at"], name="sample_probe_at"),
            models.Index(fields=["application", "at"], name="sample_application_at"),
        ]

    def __str__(self) -> str:
        return f"{self.probe_id} {self.at:%Y-%m-%d %H:%M:%S} {self.status}"


class SampleRollup(models.Model):
    """A probe's samples in one hour or day: per metric min, sum, max and count (sums, not averages, so
    that hours add up exactly into days); availability from up_count / known_count."""

    probe = models.ForeignKey(Probe, on_delete=models.CASCADE, related_name="rollups")
    application = models.ForeignKey("plans.Application", on_delete=models.CASCADE, related_name="+")
    resolution = models.CharField(max_length=6, choices=[(r.value, r.label) for r in (Resolution.HOUR, Resolution.DAY)])
    bucket = models.BigIntegerField(help_text="Start of the hour or day: seconds since the epoch (UTC).")
    samples = models.PositiveIntegerField(default=0)
    unknown_count = models.PositiveIntegerField(default=0)
    up_count = models.PositiveIntegerField(default=0)
    known_count = models.PositiveIntegerField(default=0, help_text="Samples that could tell up from down.")
    rpo_count = models.PositiveIntegerField(default=0)
    rpo_sum = models.FloatField(null=True)
    rpo_min = models.FloatField(null=True)
    rpo_max = models.FloatField(null=True)
    lag_count = models.PositiveIntegerField(default=0)
    lag_sum = models.FloatField(null=True)
    lag_min = models.BigIntegerField(null=True)
    lag_max = models.BigIntegerField(null=True)
    latency_count = models.PositiveIntegerField(default=0)
    latency_sum = models.FloatField(null=True)
    latency_min = models.FloatField(null=True)
    latency_max = models.FloatField(null=True)

    class Meta:
        ordering = ["probe", "resolution", "bucket"]
        constraints = [
            models.UniqueConstraint(fields=["probe", "resolution", "bucket"], name="rollup_unique_bucket"),
        ]
        indexes = [models.Index(fields=["application", "resolution", "bucket"], name="rollup_application_bucket")]

    def __str__(self) -> str:
        return f"{self.probe_id} {self.resolution} {self.bucket}"


class RollupState(models.Model):
    """Singleton (pk 1): up to where raw samples have been rolled into hours, and hours into days.
    Buckets before the watermark are read from rollups, the rest from the finer data."""

    hours_until = models.DateTimeField(null=True, blank=True)
    days_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"hours until {self.hours_until}, days until {self.days_until}"


class SLAViolation(models.Model):
    """A breach of a service level: a measured value past the target's threshold for longer than its window.
    Open while `ended_at` is null. The penalty is the RTO target's penalty_per_breach when it was recorded."""

    kind = models.CharField(max_length=15, choices=ViolationKind.choices)
    application = models.ForeignKey(
        "plans.Application", null=True, blank=True, on_delete=models.CASCADE, related_name="sla_violations"
    )
    plan = models.ForeignKey(
        "plans.DRPlan", null=True, blank=True, on_delete=models.CASCADE, related_name="sla_violations"
    )
    execution = models.ForeignKey(
        "failover.FailoverExecution", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    test_result = models.ForeignKey(
        "analytics.DRTestResult", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    worst_value = models.FloatField(help_text="The worst value measured while it lasted (unit: `unit`).")
    threshold = models.FloatField(help_text="The threshold it passed (unit: `unit`).")
    unit = models.CharField(max_length=10, default="seconds")
    penalty = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = "SLA violation"
        constraints = [
            models.UniqueConstraint(
                fields=["application"],
                condition=Q(kind=ViolationKind.RPO, ended_at__isnull=True),
                name="violation_one_open_rpo_per_application",
            ),
            models.UniqueConstraint(
                fields=["plan", "started_at"],
                condition=Q(kind=ViolationKind.TEST_CADENCE),
                name="violation_one_cadence_miss_per_due_date",
            ),
            models.UniqueConstraint(
                fields=["execution", "application"],
                condition=Q(execution__isnull=False),
                name="violation_one_per_execution_application",
            ),
            models.UniqueConstraint(
                fields=["test_result", "application"],
                condition=Q(test_result__isnull=False),
                name="violation_one_per_test_result_application",
            ),
        ]

    def __str__(self) -> str:
        who = self.application or self.plan
        return f"{self.get_kind_display()} {who} from {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None
