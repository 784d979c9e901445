"""Executions of failovers, failbacks, tests and runbooks: evidence, read-only in the API.

Running them is the engine's job (failover/engine/); here are the records.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from failover.choices import (
    ACTIVE_STATUSES,
    CheckStatus,
    ExecutionStatus,
    ExecutionType,
    OnFailure,
    StepStatus,
    TriggerType,
)
from plans.choices import CheckType, Severity
from runbooks.choices import Decision

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

    # Run policy, fixed when the execution is created
    parallelism = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Max steps at once; empty = none.")
    on_failure = models.CharField(max_length=10, choices=OnFailure.choices, default=OnFailure.ROLLBACK)
    rollback_trigger = models.CharField(
        max_length=25, blank=True, help_text="any_check_fails / critical_checks_fail; empty = no validation checks."
    )
    approval_policy = models.JSONField(
        default=list, blank=True, help_text="Approval levels in force at trigger time: [{level, role, approvers}]."
    )
    approval_deadline = models.DateTimeField(null=True, blank=True, help_text="Approval request expires after this.")

    # Coordination: the worker that runs this execution holds a lease it renews.
    coordinator = models.CharField(max_length=200, blank=True, help_text="Worker running the coordinator.")
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    cancel_requested = models.BooleanField(default=False)
    rollback_on_cancel = models.BooleanField(default=False)

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

    # The step's definition, copied at creation so the execution is self-contained.
    needs = models.JSONField(default=list, blank=True, help_text="step_keys this step waits for.")
    tier = models.PositiveSmallIntegerField(default=3, help_text="Application tier; lower runs first.")
    priority = models.IntegerField(default=0, help_text="Higher dispatches first when slots are scarce.")
    params = models.JSONField(default=dict, blank=True, help_text="The action's parameters before templating.")
    rendered = models.JSONField(null=True, blank=True, help_text="Parameters after templating, secrets masked.")
    rollback = models.JSONField(null=True, blank=True)
    approval = models.JSONField(null=True, blank=True, help_text="Per-step approval gate: {role, approvers}.")
    timeout_seconds = models.PositiveIntegerField(null=True, blank=True)
    retries = models.PositiveSmallIntegerField(default=0)
    idempotent = models.BooleanField(default=False)
    continue_on_failure = models.BooleanField(default=False)
    estimated_duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    responsible_role = models.CharField(max_length=100, blank=True)
    rollback_status = models.CharField(max_length=20, choices=StepStatus.choices, blank=True)
    rollback_error = models.TextField(blank=True)
    waiting_for = models.CharField(
        max_length=20, blank=True, help_text="While WAITING: 'confirmation' (manual step) or 'approval' (gate)."
    )
    gate_approved_at = models.DateTimeField(null=True, blank=True, help_text="When the step's approval gate passed.")
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)

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


class ApprovalDecision(models.Model):
    """One approver's decision on one level of an execution (step_run empty) or of a step's gate."""

    execution = models.ForeignKey(FailoverExecution, on_delete=models.CASCADE, related_name="approval_decisions")
    step_run = models.ForeignKey(
        StepRun, null=True, blank=True, on_delete=models.CASCADE, related_name="approval_decisions"
    )
    level = models.PositiveSmallIntegerField(default=1)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.TextField(blank=True)
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["execution", "decided_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "level", "user"],
                condition=models.Q(step_run__isnull=True),
                name="one_execution_decision_per_user_per_level",
            ),
            models.UniqueConstraint(
                fields=["step_run", "level", "user"],
                condition=models.Q(step_run__isnull=False),
                name="one_step_decision_per_user_per_level",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.decision} level {self.level} of execution {self.execution_id}"


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
