"""Compliance: framework catalogs (loaded from compliance/catalogs/), and reports per framework, plans and
period, evaluated from the platform's own records, attested by a named person and issued as a signed PDF.

A report's `content` is the frozen snapshot of everything it says (scope, requirement results with their
evidence and gaps, the tests, findings, action items and approvals it read, the audit chain head): the PDF is
rendered from it, never from live data. Once attested a report never changes (save()/delete() refuse, 409 in
the API); its signed PDF (`IssuedPdf`) is issued once and kept.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from compliance.choices import OverallStatus, ReportState, RequirementStatus
from core.exceptions import Conflict
from plans.choices import ComplianceFramework


class AttestedReportError(Conflict):
    """A change to an attested report, its requirements, scope or issued PDF (the API answers 409)."""

    default_code = "report_attested"


class Framework(models.Model):
    """A framework catalog as loaded from its data file (`manage.py compliance load`)."""

    code = models.CharField(max_length=20, unique=True, choices=ComplianceFramework.choices)
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=100)
    publisher = models.CharField(max_length=200)
    source = models.TextField(help_text="Where the catalog's text comes from.")
    source_url = models.URLField(blank=True)
    licence = models.TextField(help_text="Under what terms the text is used.")
    catalog_file = models.CharField(max_length=200, help_text="Data file, relative to compliance/catalogs/.")
    catalog_sha256 = models.CharField(max_length=64, help_text="SHA-256 of the data file as loaded.")
    loaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.version})"


class Requirement(models.Model):
    """One requirement (control, clause, article paragraph) of a framework, and the evidence rules that
    judge it (compliance/rules.py). A requirement without rules is listed as not assessed."""

    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="catalog_requirements")
    ref = models.CharField(max_length=50, help_text="Control id, clause or article paragraph, e.g. CP-4.")
    title = models.CharField(max_length=300)
    text = models.TextField(blank=True, help_text="The requirement's text or our summary of it (see the licence).")
    parent_ref = models.CharField(max_length=50, blank=True)
    position = models.PositiveIntegerField(default=0)
    rules = models.JSONField(default=list, blank=True, help_text="Evidence rule ids (compliance/rules.py).")
    note = models.TextField(blank=True, help_text="Why it is not assessed, or how the rules read it.")

    class Meta:
        ordering = ["framework", "position"]
        constraints = [models.UniqueConstraint(fields=["framework", "ref"], name="unique_requirement_ref")]

    def __str__(self) -> str:
        return f"{self.framework.code} {self.ref}: {self.title}"


def _stored_attested(report_id: int | None) -> bool:
    if report_id is None:
        return False
    return ComplianceReport.objects.filter(pk=report_id, attested_at__isnull=False).exists()


class ComplianceReportQuerySet(models.QuerySet):
    def delete(self):
        if self.filter(attested_at__isnull=False).exists():
            raise AttestedReportError("Attested compliance reports are evidence and cannot be deleted.")
        return super().delete()

    def update(self, **kwargs: Any) -> int:
        """A bulk update too leaves attested reports alone (attesting is itself an update of drafts only)."""
        if self.filter(attested_at__isnull=False).exists():
            raise AttestedReportError("Attested compliance reports are evidence and cannot change.")
        return super().update(**kwargs)


class ComplianceReport(models.Model):
    framework = models.CharField(max_length=20, choices=ComplianceFramework.choices, db_index=True)
    plans = models.ManyToManyField(
        "plans.DRPlan",
        through="ComplianceReportPlan",
        blank=True,
        related_name="compliance_reports",
        help_text="The plans evaluated.",
    )
    all_plans = models.BooleanField(
        default=False, help_text="Requested for every plan that was not archived (organisation-wide)."
    )
    period_start = models.DateField()
    period_end = models.DateField()
    tests_required = models.PositiveIntegerField(default=0)
    tests_performed = models.PositiveIntegerField(default=0)
    tests_passed = models.PositiveIntegerField(default=0)
    overall_status = models.CharField(max_length=20, choices=OverallStatus.choices)
    summary = models.TextField(blank=True)
    content = models.JSONField(default=dict, blank=True, help_text="The frozen snapshot the PDF is rendered from.")
    content_sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the canonical content.")
    audit_head_seq = models.PositiveBigIntegerField(default=0, help_text="Audit chain head when generated.")
    audit_head_hash = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    generated_at = models.DateTimeField(auto_now_add=True)
    attested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attested_at = models.DateTimeField(null=True, blank=True)
    attestation_name = models.CharField(
        max_length=300, blank=True, help_text="The attester's full name and role as printed in the report."
    )
    attestation_statement = models.TextField(blank=True)

    objects = ComplianceReportQuerySet.as_manager()

    class Meta:
        ordering = ["-period_end", "framework"]
        permissions = [("attest_compliancereport", "Can attest compliance reports (which signs them)")]
        constraints = [
            models.CheckConstraint(condition=models.Q(period_end__gte=models.F("period_start")), name="period_ordered")
        ]

    def __str__(self) -> str:
        return f"{self.get_framework_display()} {self.period_start}..{self.period_end}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding and _stored_attested(self.pk):
            raise AttestedReportError(f"Compliance report #{self.pk} is attested and cannot change.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any):
        if _stored_attested(self.pk):
            raise AttestedReportError(f"Compliance report #{self.pk} is attested: it is evidence and is kept.")
        return super().delete(*args, **kwargs)

    @property
    def state(self) -> str:
        return ReportState.ATTESTED if self.attested_at is not None else ReportState.DRAFT


class ReportPartMixin:
    """Rows that make up a report: refused by save()/delete() once the report is attested."""

    def _refuse_if_attested(self) -> None:
        if _stored_attested(self.report_id):  # type: ignore[attr-defined]
            raise AttestedReportError(
                f"Compliance report #{self.report_id} is attested: its content cannot change."  # type: ignore[attr-defined]
            )

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._refuse_if_attested()
        super().save(*args, **kwargs)  # type: ignore[misc]

    def delete(self, *args: Any, **kwargs: Any):
        self._refuse_if_attested()
        return super().delete(*args, **kwargs)  # type: ignore[misc]


class ComplianceReportPlan(ReportPartMixin, models.Model):
    report = models.ForeignKey(ComplianceReport, on_delete=models.CASCADE, related_name="scope_links")
    plan = models.ForeignKey("plans.DRPlan", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["report", "plan"], name="unique_report_plan")]

    def __str__(self) -> str:
        return f"report {self.report_id} covers plan {self.plan_id}"


class ComplianceRequirement(ReportPartMixin, models.Model):
    report = models.ForeignKey(ComplianceReport, on_delete=models.CASCADE, related_name="requirements")
    requirement_id = models.CharField(max_length=50, help_text="Control id, e.g. CP-4.")
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=12, choices=RequirementStatus.choices)
    evidence = models.TextField(blank=True)
    gaps = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    rules = models.JSONField(
        default=list, blank=True, help_text="Each evidence rule's result: id, title, status, evidence, gaps."
    )

    class Meta:
        ordering = ["report", "position", "requirement_id"]
        constraints = [
            models.UniqueConstraint(fields=["report", "requirement_id"], name="unique_requirement_per_report")
        ]

    def __str__(self) -> str:
        return f"{self.requirement_id}: {self.status}"


class IssuedPdf(models.Model):
    """The signed PDF issued for an attested report: issued once, kept as it is."""

    report = models.OneToOneField(ComplianceReport, on_delete=models.PROTECT, related_name="issued_pdf")
    pdf = models.BinaryField(editable=False)
    sha256 = models.CharField(max_length=64, editable=False)
    size = models.PositiveIntegerField(editable=False)
    signed_at = models.DateTimeField(editable=False)
    signer_subject = models.CharField(max_length=500, editable=False)
    signer_fingerprint = models.CharField(max_length=64, editable=False, help_text="SHA-256 of the certificate.")

    class Meta:
        verbose_name = "issued PDF"

    def __str__(self) -> str:
        return f"signed PDF of report {self.report_id} ({self.sha256[:12]})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AttestedReportError("An issued PDF is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any):
        raise AttestedReportError("An issued PDF is evidence and cannot be deleted.")
