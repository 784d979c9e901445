from django.db import models


class RequirementStatus(models.TextChoices):
    MET = "met", "Met"
    PARTIAL = "partial", "Partially met"
    NOT_MET = "not_met", "Not met"


class OverallStatus(models.TextChoices):
    COMPLIANT = "compliant", "Compliant"
    PARTIAL = "partially_compliant", "Partially compliant"
    NON_COMPLIANT = "non_compliant", "Non-compliant"
