"""Compliance API serializers (read-only)."""

from __future__ import annotations

from rest_framework import serializers

from compliance.models import ComplianceReport, ComplianceRequirement


class ComplianceRequirementSerializer(serializers.ModelSerializer):
    class Meta:
        model = ComplianceRequirement
        fields = ["id", "requirement_id", "title", "status", "evidence", "gaps"]
        read_only_fields = fields


class ComplianceReportSerializer(serializers.ModelSerializer):
    plan_slug = serializers.CharField(source="plan.plan_id", read_only=True, allow_null=True)
    attested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    requirements = ComplianceRequirementSerializer(many=True, read_only=True)

    class Meta:
        model = ComplianceReport
        fields = [
            "id",
            "framework",
            "plan",
            "plan_slug",
            "period_start",
            "period_end",
            "tests_required",
            "tests_performed",
            "tests_passed",
            "overall_status",
            "summary",
            "generated_at",
            "attested_by",
            "attested_at",
            "requirements",
        ]
        read_only_fields = fields
