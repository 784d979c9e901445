"""Compliance reports per framework and period, with requirement-level evidence."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from compliance.choices import OverallStatus, RequirementStatus
from plans.choices import ComplianceFramework


class ComplianceReport(models.Model):
    framework = models.CharField(max_length=20, choices=ComplianceFramework.choices, db_index=True)
    plan = models.ForeignKey(
        "plans.DRPlan",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="compliance_reports",
        help_text="Empty = organisation-wide.",
    )
    period_start = models.DateField()
    period_end = models.DateField()
    tests_required = models.PositiveIntegerField(default=0)
    tests_performed = models.PositiveIntegerField(default=0)
    tests_passed = models.PositiveIntegerField(default=0)
    overall_status = models.CharField(max_length=20, choices=OverallStatus.choices)
    summary = models.TextField(blank=True)
    generated_at = models.DateTimeField(auto_now_add=True)
    attested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_end", "framework"]
        constraints = [
            models.CheckConstraint(condition=models.Q(period_end__gte=models.F("period_start")), name="period_ordered")
        ]

    def __str__(self) -> str:
        return f"{self.get_framework_display()} {self.period_start}..{self.period_end}"


class ComplianceRequirement(models.Model):
    report = models.ForeignKey(ComplianceReport, on_delete=models.CASCADE, related_name="requirements")
    requirement_id = models.CharField(max_length=50, help_text="Control id, e.g. CP-4.")
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=RequirementStatus.choices)
    evidence = models.TextField(blank=True)
    gaps = models.TextField(blank=True)

    class Meta:
        ordering = ["report", "requirement_id"]
        constraints = [
            models.UniqueConstraint(fields=["report", "requirement_id"], name="unique_requirement_per_report")
        ]

    def __str__(self) -> str:
        return f"{self.requirement_id}: {self.status}"
