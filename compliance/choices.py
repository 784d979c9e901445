from django.db import models


class RequirementStatus(models.TextChoices):
    MET = "met", "Met"  # every evidence rule of the requirement holds for every item in scope
    PARTIAL = "partial", "Partially met"  # some items or some rules hold, others do not
    NOT_MET = "not_met", "Not met"  # no rule holds for any item in scope
    NOT_ASSESSED = "not_assessed", "Not assessed"  # no evidence rule: outside DRPlan's records, assess manually


class OverallStatus(models.TextChoices):
    COMPLIANT = "compliant", "Compliant"  # every assessed requirement met (not-assessed ones are listed apart)
    PARTIAL = "partially_compliant", "Partially compliant"  # some requirements met or partially met
    NON_COMPLIANT = "non_compliant", "Non-compliant"  # no assessed requirement met or partially met


class ReportState(models.TextChoices):
    DRAFT = "draft", "Draft"  # generated from the records; may be attested
    ATTESTED = "attested", "Attested"  # a named auditor or approver attested it: immutable, signed PDF issued
