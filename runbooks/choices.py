from django.db import models


class RunbookCategory(models.TextChoices):
    FAILOVER = "failover", "Failover"
    FAILBACK = "failback", "Failback"
    TEST = "test", "DR test"
    RESTORE = "restore", "Restore"
    VALIDATION = "validation", "Validation"
    MAINTENANCE = "maintenance", "Maintenance"


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"  # editable
    PENDING_APPROVAL = "pending_approval", "Pending approval"  # frozen, waiting for approvers
    APPROVED = "approved", "Approved"  # immutable; may be executed
    REJECTED = "rejected", "Rejected"  # an approver refused it; edit a new draft
    SUPERSEDED = "superseded", "Superseded"  # a later version was approved


FROZEN_STATUSES = {VersionStatus.PENDING_APPROVAL, VersionStatus.APPROVED, VersionStatus.SUPERSEDED}


class ParameterType(models.TextChoices):
    STRING = "string", "String"
    INTEGER = "integer", "Integer"
    NUMBER = "number", "Number"
    BOOLEAN = "boolean", "Boolean"


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class ImportFormat(models.TextChoices):
    """The formats POST /runbooks/import and `manage.py runbook import --from` take (runbooks.importers)."""

    DRPLAN = "drplan", "DRPlan runbook (YAML/JSON)"
    RUNDECK = "rundeck", "Rundeck job definition (YAML or XML)"
    CHAOSTOOLKIT = "chaostoolkit", "Chaos Toolkit experiment"
    SSM = "ssm", "AWS SSM Automation document (schemaVersion 0.3)"
    ANSIBLE = "ansible", "Ansible playbook"
    ASR = "asr", "Azure Site Recovery recovery plan"
