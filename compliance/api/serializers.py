"""Compliance API serializers."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from compliance.models import ComplianceReport, ComplianceRequirement
from core.api.strict import StrictSerializer
from plans.choices import ComplianceFramework


class ComplianceRequirementSerializer(serializers.ModelSerializer):
    class Meta:
        model = ComplianceRequirement
        fields = ["id", "requirement_id", "title", "status", "evidence", "gaps"]
        read_only_fields = fields


class ComplianceReportSerializer(serializers.ModelSerializer):
    plans = serializers.SerializerMethodField(help_text="plan_id of every plan in scope.")
    state = serializers.CharField(read_only=True, help_text="draft, or attested (immutable, signed PDF issued).")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    attested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    requirements = ComplianceRequirementSerializer(many=True, read_only=True)

    class Meta:
        model = ComplianceReport
        fields = [
            "id",
            "framework",
            "plans",
            "all_plans",
            "period_start",
            "period_end",
            "tests_required",
            "tests_performed",
            "tests_passed",
            "overall_status",
            "summary",
            "state",
            "content_sha256",
            "audit_head_seq",
            "audit_head_hash",
            "created_by",
            "generated_at",
            "attested_by",
            "attested_at",
            "requirements",
        ]
        read_only_fields = fields

    def get_plans(self, report: ComplianceReport) -> list[str]:
        return [link.plan.plan_id for link in report.scope_links.all()]


class PlanRefField(serializers.CharField):
    """A plan by its numeric id or its plan_id (core.lookups: plan_ids are never all digits)."""

    json_types = (str, int)  # core.api.strict: an id may be sent as a number

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=100, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        return str(super().to_internal_value(data)).strip()


class ReportCreateSerializer(StrictSerializer):
    framework = serializers.ChoiceField(choices=ComplianceFramework.choices)
    plans = serializers.ListField(
        child=PlanRefField(),
        required=False,
        default=list,
        max_length=500,
        help_text="The plans in scope (existing plan_id or numeric id). Empty or omitted only with all_plans, "
        "which it may not be combined with.",
    )
    all_plans = serializers.BooleanField(
        required=False, default=False, help_text="Every plan that is not archived (organisation-wide)."
    )
    period_start = serializers.DateField(help_text="On or after 1970-01-01 and not after today.")
    period_end = serializers.DateField(help_text="On or after period_start (the evaluation stops at now).")


class AttestSerializer(StrictSerializer):
    statement = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=4000,
        help_text="What the attester states; default: DRPlan's standard attestation statement.",
    )


class VerificationSerializer(serializers.Serializer):
    valid = serializers.BooleanField(help_text="Signature intact, valid and trusted, and the content is the report's.")
    reason = serializers.CharField(help_text="Why it is valid, or the first reason it is not.")
    report = serializers.IntegerField(allow_null=True, help_text="The report the PDF names, if it exists here.")
    checks = serializers.DictField(
        child=serializers.BooleanField(allow_null=True),
        help_text="signed, intact, valid, trusted, covers_whole_file, report_found, report_attested, "
        "content_matches_report, matches_issued_pdf.",
    )
    signer = serializers.CharField(help_text="Subject of the signing certificate.")
    signer_fingerprint = serializers.CharField(help_text="SHA-256 of the signing certificate.")
    signed_at = serializers.CharField(allow_null=True)
    sha256 = serializers.CharField(help_text="SHA-256 of the uploaded file.")
