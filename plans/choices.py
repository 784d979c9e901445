from django.db import models


class Tier(models.IntegerChoices):
    TIER_1 = 1, "Tier 1 (mission critical)"
    TIER_2 = 2, "Tier 2 (business critical)"
    TIER_3 = 3, "Tier 3 (business operational)"


class PlanStatus(models.TextChoices):
    DRAFT = "draft", "Draft"  # being written; cannot be executed
    ACTIVE = "active", "Active"  # in force; failovers and tests may run
    ARCHIVED = "archived", "Archived"  # retired; kept as evidence


class StrategyType(models.TextChoices):
    ACTIVE_ACTIVE = "active_active", "Active/active"
    ACTIVE_PASSIVE = "active_passive", "Active/passive"
    PILOT_LIGHT = "pilot_light", "Pilot light"
    BACKUP_RESTORE = "backup_restore", "Backup and restore"


class ReplicationMode(models.TextChoices):
    SYNCHRONOUS = "synchronous", "Synchronous"
    ASYNCHRONOUS = "asynchronous", "Asynchronous"


class FailoverMode(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic"  # monitoring triggers the failover
    MANUAL = "manual", "Manual"  # an operator triggers it
    SEMI_AUTOMATIC = "semi_automatic", "Semi-automatic"  # detected automatically, started on approval


class TestFrequency(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"
    SEMI_ANNUAL = "semi_annual", "Semi-annual"
    ANNUAL = "annual", "Annual"


TEST_FREQUENCY_DAYS = {
    TestFrequency.MONTHLY: 30,
    TestFrequency.QUARTERLY: 91,
    TestFrequency.SEMI_ANNUAL: 182,
    TestFrequency.ANNUAL: 365,
}


class ComplianceFramework(models.TextChoices):
    SOX = "sox", "SOX"
    HIPAA = "hipaa", "HIPAA"
    PCI_DSS = "pci_dss", "PCI-DSS"
    NIST_800_53 = "nist_800_53", "NIST 800-53 CP"
    ISO_22301 = "iso_22301", "ISO 22301"
    DORA = "dora", "DORA"


class ComplianceStatus(models.TextChoices):
    COMPLIANT = "compliant", "Compliant"
    PARTIAL = "partially_compliant", "Partially compliant"
    NON_COMPLIANT = "non_compliant", "Non-compliant"
    UNKNOWN = "unknown", "Not yet assessed"


class StrategyKind(models.TextChoices):
    FAILOVER = "failover", "Failover"
    FAILBACK = "failback", "Failback"
    RESTORE = "restore", "Restore"


class ConditionKind(models.TextChoices):
    PREREQUISITE = "prerequisite", "Prerequisite"  # must hold before starting
    BLOCKER = "blocker", "Blocker"  # if present, the strategy must not run


class CheckType(models.TextChoices):
    CONNECTIVITY = "connectivity", "Connectivity"
    DATA_INTEGRITY = "data_integrity", "Data integrity"
    PERFORMANCE = "performance", "Performance"


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class RollbackTrigger(models.TextChoices):
    ANY_CHECK_FAILS = "any_check_fails", "Any check fails"
    CRITICAL_CHECKS_FAIL = "critical_checks_fail", "Critical checks fail"
