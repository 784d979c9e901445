from django.db import models


class ExecutionType(models.TextChoices):
    PLANNED = "planned", "Planned failover"
    UNPLANNED = "unplanned", "Unplanned failover"
    TEST = "test", "DR test"
    FAILBACK = "failback", "Failback"
    RUNBOOK = "runbook", "Runbook run"


class TriggerType(models.TextChoices):
    MANUAL = "manual", "Manual (operator)"
    AUTOMATIC = "automatic", "Automatic (monitoring)"
    SCHEDULED = "scheduled", "Scheduled"
    API = "api", "API"


class ExecutionStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # created, not yet picked up by a worker
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"  # waiting for an operator decision
    VALIDATING = "validating", "Validating"
    ROLLING_BACK = "rolling_back", "Rolling back"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    ROLLBACK_FAILED = "rollback_failed", "Rollback failed"
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected"  # an approver said no-go
    EXPIRED = "expired", "Approval expired"  # nobody decided before the deadline; trigger it again


ACTIVE_STATUSES = (
    ExecutionStatus.PENDING,
    ExecutionStatus.AWAITING_APPROVAL,
    ExecutionStatus.RUNNING,
    ExecutionStatus.PAUSED,
    ExecutionStatus.VALIDATING,
    ExecutionStatus.ROLLING_BACK,
)


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    WAITING = "waiting", "Waiting (manual or approval)"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"
    LOST = "lost", "Lost (worker died)"
    ROLLED_BACK = "rolled_back", "Rolled back"
    ROLLBACK_FAILED = "rollback_failed", "Rollback failed"


class CheckStatus(models.TextChoices):
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    ERROR = "error", "Error"
    SKIPPED = "skipped", "Skipped"


class OnFailure(models.TextChoices):
    ROLLBACK = "rollback", "Roll back completed steps"
    STOP = "stop", "Stop and leave as is"
