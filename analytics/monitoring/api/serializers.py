"""Serializers of the monitoring API: monitors with their probes (replace-all), the RTO/RPO picture, history,
SLA violations."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework import serializers

from analytics.monitoring import services
from analytics.monitoring.choices import HealthStatus, Metric, Resolution, ViolationKind
from analytics.monitoring.models import Monitor, Probe, SLAViolation
from core.api.strict import StrictModelSerializer
from core.exceptions import InvalidInput
from plans.models import Application, DRPlan

MAX_INTERVAL_SECONDS = 7 * 86400
MAX_TIMEOUT_SECONDS = 600


class ProbeSerializer(StrictModelSerializer):
    params = serializers.JSONField(
        required=False, help_text="The step's `with`, checked against the action's parameter schema."
    )

    class Meta:
        model = Probe
        fields = ["id", "key", "action", "params", "interval_seconds", "timeout_seconds", "next_run_at", "last_run_at"]
        read_only_fields = ["next_run_at", "last_run_at"]
        extra_kwargs = {
            "key": {"validators": []},  # unique per monitor: checked with the other probes
            "action": {"help_text": "A read-only status action, e.g. postgres.replication_status, http."},
            "interval_seconds": {"min_value": 1, "max_value": MAX_INTERVAL_SECONDS},
            "timeout_seconds": {"min_value": 1, "max_value": MAX_TIMEOUT_SECONDS, "required": False},
        }


class MonitorSerializer(StrictModelSerializer):
    application = serializers.SlugRelatedField(
        slug_field="slug", queryset=Application.objects.all(), help_text="Application slug."
    )
    plan = serializers.SlugRelatedField(
        slug_field="plan_id",
        queryset=DRPlan.objects.all(),
        required=False,
        allow_null=True,
        help_text="plan_id of a plan whose scope holds the application (optional).",
    )
    probes = ProbeSerializer(
        many=True, min_length=1, max_length=20, help_text="1-20 probes (PUT replaces them all; kept keys keep history)."
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Monitor
        fields = [
            "id",
            "slug",
            "application",
            "plan",
            "description",
            "enabled",
            "probes",
            "created_by",
            "created_at",
            "updated_at",
        ]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        application = attrs.get("application", getattr(self.instance, "application", None))
        plan = attrs.get("plan", getattr(self.instance, "plan", None))
        if plan is not None and application is not None and not plan.applications.filter(pk=application.pk).exists():
            raise serializers.ValidationError(
                {"plan": [f"application {application.slug!r} is not in the scope of plan {plan.plan_id!r}."]}
            )
        if "probes" in attrs:
            try:
                services.check_probes([dict(p) for p in attrs["probes"]])
            except InvalidInput as exc:
                raise serializers.ValidationError({exc.field or "probes": [exc.message]}) from None
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Monitor:
        specs = validated_data.pop("probes")
        with transaction.atomic():
            monitor = super().create(validated_data)
            services.replace_probes(monitor, specs)
        return monitor

    def update(self, instance: Monitor, validated_data: dict[str, Any]) -> Monitor:
        specs = validated_data.pop("probes", None)
        with transaction.atomic():
            monitor = super().update(instance, validated_data)
            if specs is not None:
                services.replace_probes(monitor, specs)
        if hasattr(monitor, "_prefetched_objects_cache"):
            monitor._prefetched_objects_cache = {}
        return monitor


# --- GET /rto-rpo -----------------------------------------------------------------------------------------


class RTOEstimateSerializer(serializers.Serializer):
    seconds = serializers.FloatField(allow_null=True)
    source = serializers.CharField(required=False)
    reason = serializers.CharField(required=False)
    critical_path = serializers.ListField(child=serializers.CharField(), required=False)
    per_application = serializers.DictField(child=serializers.FloatField(), required=False)


class PredictionSerializer(serializers.Serializer):
    available = serializers.BooleanField()
    message = serializers.CharField(required=False)
    reason = serializers.CharField(required=False)
    p50_seconds = serializers.FloatField(required=False, allow_null=True)
    p90_seconds = serializers.FloatField(required=False, allow_null=True)
    probability_meet_rto = serializers.FloatField(required=False, allow_null=True)


class ApplicationStateSerializer(serializers.Serializer):
    application = serializers.CharField()
    name = serializers.CharField()
    tier = serializers.IntegerField()
    target_rto_seconds = serializers.IntegerField(allow_null=True)
    target_rpo_seconds = serializers.IntegerField(allow_null=True)
    target_availability_percent = serializers.FloatField(allow_null=True)
    current_rpo_seconds = serializers.FloatField(allow_null=True, help_text="From the latest probe samples.")
    rpo_measured_at = serializers.DateTimeField(allow_null=True)
    current_rto_estimate_seconds = serializers.FloatField(allow_null=True)
    availability_percent = serializers.FloatField(allow_null=True, help_text="Over the period.")
    trend = serializers.ChoiceField(choices=["improving", "stable", "degrading"], allow_null=True)
    monitored = serializers.BooleanField()
    open_violations = serializers.IntegerField()
    status = serializers.ChoiceField(choices=HealthStatus.choices)
    reasons = serializers.ListField(child=serializers.CharField())


class PlanStateSerializer(serializers.Serializer):
    plan = serializers.CharField()
    name = serializers.CharField()
    target_rto_seconds = serializers.IntegerField()
    target_rpo_seconds = serializers.IntegerField()
    rto_estimate = RTOEstimateSerializer()
    prediction = PredictionSerializer()
    status = serializers.ChoiceField(choices=HealthStatus.choices)
    reasons = serializers.ListField(child=serializers.CharField())
    applications = ApplicationStateSerializer(many=True)


class RTORPOSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    period = serializers.CharField()
    since = serializers.DateTimeField()
    plans = PlanStateSerializer(many=True)


# --- GET /rto-rpo/history ---------------------------------------------------------------------------------


class SeriesSerializer(serializers.Serializer):
    monitor = serializers.CharField()
    probe = serializers.CharField()
    action = serializers.CharField()
    application = serializers.CharField()
    plan = serializers.CharField(allow_null=True)
    points = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="One list per point, its parts named by `columns` (t: epoch seconds, UTC).",
    )


class HistorySerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=Metric.choices)
    resolution = serializers.ChoiceField(choices=Resolution.choices)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    columns = serializers.ListField(child=serializers.CharField())
    series = SeriesSerializer(many=True)


# --- GET /rto-rpo/violations ------------------------------------------------------------------------------


class ViolationSerializer(serializers.ModelSerializer):
    plan = serializers.SlugRelatedField(slug_field="plan_id", read_only=True, allow_null=True)
    application = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    open = serializers.BooleanField(source="is_open", read_only=True)
    breaches_this_quarter = serializers.SerializerMethodField(
        help_text="Violations of the same application started this quarter (null without an application)."
    )
    penalty_total_this_quarter = serializers.SerializerMethodField(
        help_text="Their penalties added up (decimal string)."
    )
    kind = serializers.ChoiceField(choices=ViolationKind.choices, read_only=True)

    class Meta:
        model = SLAViolation
        fields = [
            "id",
            "kind",
            "plan",
            "application",
            "execution",
            "test_result",
            "started_at",
            "ended_at",
            "open",
            "worst_value",
            "threshold",
            "unit",
            "penalty",
            "breaches_this_quarter",
            "penalty_total_this_quarter",
            "detail",
        ]
        read_only_fields = fields

    def _totals(self, violation: SLAViolation) -> dict[str, Any] | None:
        return (self.context.get("totals") or {}).get(violation.application_id)

    def get_breaches_this_quarter(self, violation: SLAViolation) -> int | None:
        totals = self._totals(violation)
        return totals["breaches"] if totals else None

    def get_penalty_total_this_quarter(self, violation: SLAViolation) -> str | None:
        totals = self._totals(violation)
        return str(totals["penalty_total"]) if totals else None
