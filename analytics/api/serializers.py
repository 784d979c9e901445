"""Analytics API serializers: RTO targets, DR test results (with nested rows), impact analyses."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from analytics import services
from analytics.models import ActionItem, DRTestResult, ImpactAnalysis, RTOTarget, TestFinding, TestParticipant
from core.api.strict import StrictModelSerializer
from plans.models import Application

# Measured durations: ~31 years at most. Larger values are mistakes, and averaging floats near the
# limit of a double gives infinity, which JSON cannot carry (a plan's statistics answered 500).
MAX_SECONDS = 10**9


class RTOTargetSerializer(StrictModelSerializer):
    application = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Application.objects.all(),
        validators=[
            UniqueValidator(queryset=RTOTarget.objects.all(), message="This application already has a target.")
        ],
        help_text="Application slug (one target per application).",
    )

    class Meta:
        model = RTOTarget
        fields = [
            "id",
            "application",
            "tier",
            "rto_target_seconds",
            "rpo_target_seconds",
            "availability_target_percent",
            "current_rto_seconds",
            "current_rpo_seconds",
            "current_availability_percent",
            "trend",
            "sla_breach_threshold_seconds",
            "rpo_breach_window_seconds",
            "breach_count",
            "penalty_per_breach",
            "updated_at",
        ]
        extra_kwargs = {
            "rto_target_seconds": {"min_value": 1},
            "rpo_target_seconds": {"min_value": 0},  # 0 = no data loss allowed
            "sla_breach_threshold_seconds": {"min_value": 1},
            "rpo_breach_window_seconds": {"min_value": 1},
            "current_rto_seconds": {"min_value": 0, "max_value": MAX_SECONDS},
            "current_rpo_seconds": {"min_value": 0, "max_value": MAX_SECONDS},
        }


class TestFindingSerializer(StrictModelSerializer):
    class Meta:
        model = TestFinding
        fields = ["id", "severity", "category", "description", "remediation"]


class TestParticipantSerializer(StrictModelSerializer):
    user = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        allow_null=True,
        help_text="Username, if the participant has an account.",
    )

    class Meta:
        model = TestParticipant
        fields = ["id", "name", "user", "role", "actions"]


class ActionItemSerializer(StrictModelSerializer):
    class Meta:
        model = ActionItem
        fields = ["id", "description", "assignee", "due_date", "status"]


class DRTestResultSerializer(StrictModelSerializer):
    plan_slug = serializers.CharField(source="plan.plan_id", read_only=True)
    recorded_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    rto_met = serializers.BooleanField(read_only=True, allow_null=True)
    rpo_met = serializers.BooleanField(read_only=True, allow_null=True)
    findings = TestFindingSerializer(many=True, required=False)
    participants = TestParticipantSerializer(many=True, required=False)
    action_items = ActionItemSerializer(many=True, required=False)

    NESTED = ("findings", "participants", "action_items")

    class Meta:
        model = DRTestResult
        fields = [
            "id",
            "plan",
            "plan_slug",
            "execution",
            "test_type",
            "test_date",
            "outcome",
            "target_rto_seconds",
            "target_rpo_seconds",
            "actual_rto_seconds",
            "actual_rpo_seconds",
            "rto_met",
            "rpo_met",
            "data_loss_mb",
            "summary",
            "lessons_learned",
            "findings",
            "participants",
            "action_items",
            "recorded_by",
            "created_at",
        ]
        extra_kwargs = {
            "target_rto_seconds": {"min_value": 1},
            "target_rpo_seconds": {"min_value": 0},
            "actual_rto_seconds": {"min_value": 0, "max_value": MAX_SECONDS},
            "actual_rpo_seconds": {"min_value": 0, "max_value": MAX_SECONDS},
            "data_loss_mb": {"min_value": 0},
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        plan = attrs.get("plan", getattr(self.instance, "plan", None))
        execution = attrs.get("execution", getattr(self.instance, "execution", None))
        if plan is not None:
            services.check_test_execution(plan, execution)
        return attrs

    def _split(self, validated_data: dict[str, Any]) -> dict[str, Any]:
        return {name: validated_data.pop(name) for name in self.NESTED if name in validated_data}

    def create(self, validated_data: dict[str, Any]) -> DRTestResult:
        nested = self._split(validated_data)
        with transaction.atomic():
            result = super().create(validated_data)
            services.replace_test_result_contents(result, **{name: nested.get(name, []) for name in self.NESTED})
        return result

    def update(self, instance: DRTestResult, validated_data: dict[str, Any]) -> DRTestResult:
        nested = self._split(validated_data)
        if not self.partial:  # PUT replaces everything: an omitted list means empty
            nested = {name: nested.get(name, []) for name in self.NESTED}
        with transaction.atomic():
            result = super().update(instance, validated_data)
            services.replace_test_result_contents(result, **nested)
        return result


class ImpactAnalysisSerializer(StrictModelSerializer):
    plan_slug = serializers.CharField(source="plan.plan_id", read_only=True, allow_null=True)
    affected_processes = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    critical_processes = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    regulatory_frameworks = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    potential_violations = serializers.ListField(child=serializers.CharField(max_length=500), required=False)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = ImpactAnalysis
        fields = [
            "id",
            "plan",
            "plan_slug",
            "scenario",
            "description",
            "revenue_per_hour",
            "downtime_cost_1h",
            "downtime_cost_4h",
            "downtime_cost_24h",
            "recovery_cost",
            "affected_processes",
            "critical_processes",
            "affected_employees",
            "affected_customers",
            "customer_sentiment",
            "media_exposure",
            "brand_damage",
            "customer_churn_percent",
            "regulatory_frameworks",
            "potential_violations",
            "estimated_fines",
            "created_by",
            "created_at",
            "updated_at",
        ]


# --- Test compliance (GET /test/compliance) ---


class ComplianceRowSerializer(serializers.Serializer):
    plan = serializers.IntegerField()
    plan_id = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    test_frequency = serializers.CharField()
    window_start = serializers.DateTimeField()
    required = serializers.IntegerField()
    done = serializers.IntegerField()
    passed = serializers.IntegerField()
    last_test = serializers.DateTimeField(allow_null=True)
    compliant = serializers.BooleanField()


class ComplianceSerializer(serializers.Serializer):
    plans = ComplianceRowSerializer(many=True)
