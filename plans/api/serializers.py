"""Plan API serializers: validate input and call plans.services; no business rules here."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from core.api.strict import StrictModelSerializer
from plans import predictions, services
from plans.choices import ComplianceFramework
from plans.models import (
    Application,
    DRPlan,
    RecoveryStrategy,
    Site,
    StrategyCondition,
    StrategyStep,
    ValidationCheck,
)


class SiteSerializer(StrictModelSerializer):
    class Meta:
        model = Site
        fields = ["id", "code", "name", "kind", "location", "description", "created_at", "updated_at"]


class ApplicationSerializer(StrictModelSerializer):
    site = serializers.SlugRelatedField(
        slug_field="code", queryset=Site.objects.all(), required=False, allow_null=True, help_text="Site code."
    )
    depends_on = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Application.objects.all(),
        many=True,
        required=False,
        help_text="Slugs of the applications that must be recovered first. Cycles are rejected.",
    )
    dependents = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)

    class Meta:
        model = Application
        fields = [
            "id",
            "slug",
            "name",
            "tier",
            "owner",
            "owner_email",
            "description",
            "site",
            "depends_on",
            "dependents",
            "created_at",
            "updated_at",
        ]

    def _set_dependencies(self, application: Application, depends_on: list[Application] | None) -> None:
        if depends_on is None:
            return
        request = self.context.get("request")
        services.set_dependencies(
            application,
            depends_on,
            actor=getattr(request, "user", None),
            record_audit=False,  # the viewset audits the application with its dependencies
        )

    def create(self, validated_data: dict[str, Any]) -> Application:
        depends_on = validated_data.pop("depends_on", None)
        with transaction.atomic():
            application = super().create(validated_data)
            self._set_dependencies(application, depends_on)
        return application

    def update(self, instance: Application, validated_data: dict[str, Any]) -> Application:
        depends_on = validated_data.pop("depends_on", None)
        with transaction.atomic():
            application = super().update(instance, validated_data)
            self._set_dependencies(application, depends_on)
        return application


class PlanStatisticsMixin(serializers.Serializer):
    """Derived testing statistics (plans.selectors.plans_with_stats); never stored."""

    last_test_date = serializers.DateTimeField(read_only=True, allow_null=True)
    next_test_due = serializers.DateTimeField(read_only=True, allow_null=True)
    tests_total = serializers.IntegerField(read_only=True)
    success_rate = serializers.FloatField(
        read_only=True, allow_null=True, help_text="Passed tests / all tests, 0..1; null before the first test."
    )
    average_rto_seconds = serializers.FloatField(read_only=True, allow_null=True)
    average_rpo_seconds = serializers.FloatField(read_only=True, allow_null=True)


class DRPlanSerializer(PlanStatisticsMixin, StrictModelSerializer):
    applications = serializers.SlugRelatedField(
        slug_field="slug", queryset=Application.objects.all(), many=True, required=False, help_text="Application slugs."
    )
    sites = serializers.SlugRelatedField(
        slug_field="code", queryset=Site.objects.all(), many=True, required=False, help_text="Site codes in scope."
    )
    primary_site = serializers.SlugRelatedField(
        slug_field="code", queryset=Site.objects.all(), required=False, allow_null=True
    )
    dr_site = serializers.SlugRelatedField(
        slug_field="code", queryset=Site.objects.all(), required=False, allow_null=True
    )
    compliance_frameworks = serializers.ListField(
        child=serializers.ChoiceField(choices=ComplianceFramework.choices), required=False
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = DRPlan
        fields = [
            "id",
            "plan_id",
            "name",
            "description",
            "status",
            "applications",
            "sites",
            "rto_seconds",
            "rpo_seconds",
            "data_loss_threshold_mb",
            "downtime_threshold_seconds",
            "strategy",
            "primary_site",
            "dr_site",
            "replication_mode",
            "failover_mode",
            "detection_window_seconds",
            "approval_timeout_seconds",
            "test_frequency",
            "compliance_frameworks",
            "last_audit_date",
            "next_audit_date",
            "compliance_status",
            "dr_infrastructure_cost_monthly",
            "testing_cost_monthly",
            "downtime_cost_per_hour",
            "created_by",
            "created_at",
            "updated_at",
            "last_test_date",
            "next_test_due",
            "tests_total",
            "success_rate",
            "average_rto_seconds",
            "average_rpo_seconds",
        ]
        extra_kwargs = {
            "rto_seconds": {"min_value": 1},
            "rpo_seconds": {"min_value": 0},  # 0 = no data loss allowed (synchronous replication)
        }

    def validate_compliance_frameworks(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def current(name: str) -> Any:
            return attrs[name] if name in attrs else getattr(self.instance, name, None)

        services.check_plan_sites(current("primary_site"), current("dr_site"))
        return attrs


class PredictedRTOSerializer(serializers.Serializer):
    """The ML service's prediction (plans/predictions.py): `available` false with `message` "prediction
    unavailable" and a `reason` when the service is down or cannot predict for this plan."""

    available = serializers.BooleanField()
    message = serializers.CharField(required=False)
    reason = serializers.CharField(required=False)
    p50_seconds = serializers.FloatField(required=False)
    p90_seconds = serializers.FloatField(required=False)
    probability_meet_rto = serializers.FloatField(required=False, allow_null=True)
    rto_seconds = serializers.FloatField(required=False, allow_null=True)
    training_data = serializers.CharField(required=False)
    model_version = serializers.CharField(required=False)


class DRPlanDetailSerializer(DRPlanSerializer):
    """The whole plan (GET /plans/{id}), with the predicted RTO next to its target."""

    predicted_rto = serializers.SerializerMethodField()

    class Meta(DRPlanSerializer.Meta):
        fields = [*DRPlanSerializer.Meta.fields, "predicted_rto"]

    @extend_schema_field(PredictedRTOSerializer)
    def get_predicted_rto(self, plan: DRPlan) -> dict[str, Any]:
        return predictions.predicted_rto(plan)


class DRPlanSummarySerializer(PlanStatisticsMixin, serializers.ModelSerializer):
    """One row of the plan list: identity, targets, strategy and the derived testing statistics.

    The full plan (scope, sites, compliance, costs) is at /plans/{id}; the list stays cheap
    with thousands of plans.
    """

    class Meta:
        model = DRPlan
        fields = [
            "id",
            "plan_id",
            "name",
            "status",
            "strategy",
            "replication_mode",
            "failover_mode",
            "rto_seconds",
            "rpo_seconds",
            "test_frequency",
            "compliance_status",
            "updated_at",
            "last_test_date",
            "next_test_due",
            "tests_total",
            "success_rate",
            "average_rto_seconds",
            "average_rpo_seconds",
        ]
        read_only_fields = fields

    def to_representation(self, instance: DRPlan | dict[str, Any]) -> dict[str, Any]:
        """What DRF's Serializer.to_representation gives (each field's own to_representation; None stays
        None), without building this ModelSerializer's fields for every request (most of its cost) nor its
        per-field machinery. `instance` is a plan or a row of plans.selectors.plan_summary_rows()."""
        return self.represent([instance])[0]

    @staticmethod
    def represent(instances: list[DRPlan] | list[dict[str, Any]]) -> list[dict[str, Any]]:
        """to_representation() of each of `instances`, as `DRPlanSummarySerializer(instances, many=True).data`
        gives it (the list view's page), with the time zone looked up once."""
        converters = _summary_converters()
        tz = timezone.get_current_timezone()
        out = []
        for instance in instances:
            if not isinstance(instance, dict):
                instance = {name: getattr(instance, name) for name, _, _ in converters}
            out.append(
                {
                    name: v if (v := instance[name]) is None or type(v) is kind else convert(v, tz)
                    for name, kind, convert in converters
                }
            )
        return out


def _iso_datetime(field: serializers.DateTimeField) -> Callable[[Any, tzinfo], Any]:
    """DRF's DateTimeField.to_representation for aware datetimes in ISO 8601 (the current time zone, `Z` for
    UTC), given the time zone once per page instead of looking it up per value; anything else goes to DRF."""
    iso = (getattr(field, "format", None) or api_settings.DATETIME_FORMAT) == ISO_8601

    def convert(value: Any, tz: tzinfo) -> Any:
        if not iso or not isinstance(value, datetime) or value.tzinfo is None:
            return field.to_representation(value)
        text = value.astimezone(tz).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return convert


@functools.cache
def _summary_converters() -> tuple[tuple[str, type | None, Callable[[Any, tzinfo], Any]], ...]:
    """(name, kind, convert(value, time zone)) for DRPlanSummarySerializer's fields, built once: read-only
    fields that hold no per-request state (no context, no parent). A value of type `kind` is one the field's
    to_representation returns unchanged, so it is not called: a str for CharField and for a ChoiceField whose
    choices are strings, an int for IntegerField, a float for FloatField (None: always converted)."""
    converters = []
    for name, field in DRPlanSummarySerializer().fields.items():
        kind: type | None = None
        if isinstance(field, serializers.DateTimeField):
            converters.append((name, kind, _iso_datetime(field)))
            continue
        if isinstance(field, serializers.CharField) or (
            isinstance(field, serializers.ChoiceField) and all(type(key) is str for key in field.choices)
        ):
            kind = str
        elif isinstance(field, serializers.IntegerField):
            kind = int
        elif isinstance(field, serializers.FloatField):
            kind = float
        converters.append((name, kind, lambda value, tz, field=field: field.to_representation(value)))
    return tuple(converters)


class StrategyStepSerializer(StrictModelSerializer):
    order = serializers.IntegerField(
        min_value=1, max_value=32767, required=False, help_text="Position; defaults to the index in the list (1-based)."
    )

    class Meta:
        model = StrategyStep
        fields = [
            "order",
            "action",
            "description",
            "estimated_duration_seconds",
            "automation_enabled",
            "automation_script",
            "approval_required",
        ]


class StrategyConditionSerializer(StrictModelSerializer):
    class Meta:
        model = StrategyCondition
        fields = ["kind", "description"]


class ValidationCheckSerializer(StrictModelSerializer):
    class Meta:
        model = ValidationCheck
        fields = ["name", "check_type", "target", "threshold", "unit", "severity"]


class RecoveryStrategySerializer(StrictModelSerializer):
    plan = serializers.PrimaryKeyRelatedField(queryset=DRPlan.objects.all(), help_text="Plan id.")
    plan_slug = serializers.CharField(source="plan.plan_id", read_only=True)
    steps = StrategyStepSerializer(many=True, required=False)
    conditions = StrategyConditionSerializer(many=True, required=False)
    validation_checks = ValidationCheckSerializer(many=True, required=False)

    NESTED = ("steps", "conditions", "validation_checks")

    class Meta:
        model = RecoveryStrategy
        fields = [
            "id",
            "plan",
            "plan_slug",
            "name",
            "kind",
            "description",
            "rollback_trigger",
            "steps",
            "conditions",
            "validation_checks",
            "created_at",
            "updated_at",
        ]

    def _split(self, validated_data: dict[str, Any]) -> dict[str, Any]:
        return {name: validated_data.pop(name) for name in self.NESTED if name in validated_data}

    def create(self, validated_data: dict[str, Any]) -> RecoveryStrategy:
        nested = self._split(validated_data)
        with transaction.atomic():
            strategy = super().create(validated_data)
            services.replace_strategy_contents(
                strategy,
                steps=nested.get("steps", []),
                conditions=nested.get("conditions", []),
                validation_checks=nested.get("validation_checks", []),
            )
        return strategy

    def update(self, instance: RecoveryStrategy, validated_data: dict[str, Any]) -> RecoveryStrategy:
        nested = self._split(validated_data)
        if not self.partial:  # PUT replaces everything: an omitted list means empty
            nested = {name: nested.get(name, []) for name in self.NESTED}
        with transaction.atomic():
            strategy = super().update(instance, validated_data)
            services.replace_strategy_contents(strategy, **nested)
        return strategy
