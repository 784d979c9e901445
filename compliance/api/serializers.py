"""Compliance API serializers."""

from __future__ import annotations

from rest_framework import serializers

from compliance.models import ComplianceReport, ComplianceRequirement


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
