"""Executions of failovers, failbacks, tests and runbooks: evidence, read-only in the API.

Running them is the engine's job (failover/engine/); here are the records.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from failover.choices import ACTIVE_STATUSES, CheckStatus, ExecutionStatus, ExecutionType, StepStatus, TriggerType
from plans.choices import CheckType, Severity

MONEY = {"max_digits": 14, "decimal_places": 2, "null": True, "blank": True}


class FailoverExecution(models.Model):
    plan = models.ForeignKey("plans.DRPlan", null=True, blank=True, on_delete=models.PROTECT, related_name="executions")
    runbook_version = models.ForeignKey(
        "runbooks.RunbookVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="executions"
    )
    execution_type = models.CharField(max_length=10, choices=ExecutionType.choices, db_index=True)
    status = models.CharField(
        max_length=20, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING, db_index=True
    )
    dry_run = models.BooleanField(default=False)
    parameters = models.JSONField(default=dict, blank=True)

    # Trigger
    trigger_type = models.CharField(max_length=10, choices=TriggerType.choices, default=TriggerType.MANUAL)
    trigger_reason = models.TextField(blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    triggered_at = models.DateTimeField(db_index=True)
    disaster_declared_at = models.DateTimeField(
        null=True, blank=True, help_text="If given, RTO is measured from here instead of the trigger."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # Measurements
    actual_rto_seconds = models.FloatField(null=True, blank=True)
    actual_rpo_seconds = models.FloatField(null=True, blank=True)
    data_loss_bytes = models.BigIntegerField(null=True, blank=True)
    data_loss_transactions = models.BigIntegerField(null=True, blank=True)

    # Impact
    affected_users = models.PositiveIntegerField(null=True, blank=True)
    affected_transactions = models.PositiveBigIntegerField(null=True, blank=True)
    estimated_revenue_loss = models.DecimalField(**MONEY)
    actual_revenue_loss = models.DecimalField(**MONEY)

    error = models.TextField(blank=True)
    event_seq = models.PositiveBigIntegerField(default=0, help_text="Last event sequence number issued.")

    class Meta:
        ordering = ["-triggered_at"]
        permissions = [
            ("run_failover", "Can trigger failovers and failbacks"),
            ("run_test", "Can run DR tests and runbooks"),
            ("confirm_step", "Can confirm manual steps"),
            ("approve_execution", "Can approve or reject executions"),
        ]
        constraints = [
            # At most one active failover or failback per plan.
            models.UniqueConstraint(
                fields=["plan"],
                condition=models.Q(status__in=ACTIVE_STATUSES)
                & models.Q(execution_type__in=["planned", "unplanned", "failback"]),
                name="one_active_failover_per_plan",
            )
        ]

    def __str__(self) -> str:
        target = self.plan.plan_id if self.plan_id else str(self.runbook_version)
        return f"#{self.pk} {self.execution_type} of {target} ({self.status})"


class StepRun(models.Model):
    execution = models.ForeignKey(FailoverExecution, on_delete=models.CASCADE, related_name="step_runs")
    step_key = models.CharField(max_length=200, help_text="Step id, prefixed by runbook when composed.")
    runbook_step = models.ForeignKey(
        "runbooks.RunbookStep", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    title = models.CharField(max_length=200)
    action = models.CharField(max_length=50)
    status = models.CharField(max_length=20, choices=StepStatus.choices, default=StepStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True, help_text="Structured result available to later steps.")
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["execution", "id"]
        constraints = [models.UniqueConstraint(fields=["execution", "step_key"], name="unique_step_per_execution")]

    def __str__(self) -> str:
        return f"{self.step_key} ({self.status})"


class ExecutionEvent(models.Model):
    """Append-only: every state change and output line, numbered per execution."""

    class Kind(models.TextChoices):
        STATUS = "status", "Execution status"
        STEP_STATUS = "step_status", "Step status"
        LOG = "log", "Log line"
        APPROVAL = "approval", "Approval decision"
        VALIDATION = "validation", "Validation result"
        SUMMARY = "summary", "Summary"

    execution = models.ForeignKey(FailoverExecution, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    step_run = models.ForeignKey(StepRun, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["execution", "seq"]
        constraints = [models.UniqueConstraint(fields=["execution", "seq"], name="unique_event_seq")]

    def __str__(self) -> str:
        return f"{self.execution_id}#{self.seq} {self.kind}"


class ValidationResult(models.Model):
    execution = models.ForeignKey(FailoverExecution, on_delete=models.CASCADE, related_name="validation_results")
    name = models.CharField(max_length=200)
    check_type = models.CharField(max_length=20, choices=CheckType.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.HIGH)
    status = models.CharField(max_length=10, choices=CheckStatus.choices)
    measured = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    threshold = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    unit = models.CharField(max_length=20, blank=True)
    message = models.TextField(blank=True)
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["execution", "id"]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"
