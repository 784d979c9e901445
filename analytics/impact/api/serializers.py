"""Business processes (CRUD), and the requests and answers of the impact analysis and what-if endpoints."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analytics.api.serializers import ImpactAnalysisSerializer
from analytics.models import BusinessProcess
from core.api.strict import StrictModelSerializer, StrictSerializer
from core.lookups import find
from plans import costs
from plans.choices import ComplianceFramework
from plans.models import Application, DRPlan, Site

CURVE_HELP = (
    'Breakpoints, first at 0 h: [{"from_hours": 0, "cost_per_hour": 1000}, {"from_hours": 4, "multiplier": 2}] '
    "(multiplier x revenue per hour). Empty: the revenue per hour throughout."
)
PROFILE_HELP = "7 rows (Monday first) of 24 weights (hours 0-23, settings.TIME_ZONE). Empty: every hour weighs 1."


NUMBER = {"type": "number", "minimum": 0}
CURVE_SCHEMA = {
    "type": "array",
    "maxItems": costs.MAX_BREAKPOINTS,
    "items": {
        "type": "object",
        "properties": {
            "from_hours": {**NUMBER, "maximum": costs.MAX_CURVE_HOURS},
            "cost_per_hour": NUMBER,
            "multiplier": NUMBER,
        },
        "required": ["from_hours"],
        "additionalProperties": False,
    },
    "description": "The first breakpoint at 0, each later than the one before, each with exactly one of "
    "cost_per_hour or multiplier.",
}
PROFILE_SCHEMA = {
    "type": "array",
    "maxItems": 7,
    "items": {"type": "array", "minItems": 24, "maxItems": 24, "items": NUMBER},
    "description": "Empty, or exactly 7 rows.",
}
EARLIEST, LATEST = 1900, 9000  # years a scenario may start in: a timeline must fit in a date


def check_at(value: Any) -> Any:
    if value is not None and not (EARLIEST <= value.year <= LATEST):
        raise serializers.ValidationError(f"Give a time between the years {EARLIEST} and {LATEST}.")
    return value


@extend_schema_field(CURVE_SCHEMA)
class CostCurveField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> Any:
        try:
            return costs.validate_curve(data, self.field_name)
        except costs.CostModelError as exc:
            raise serializers.ValidationError(exc.message) from None


@extend_schema_field(PROFILE_SCHEMA)
class WeeklyProfileField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> Any:
        try:
            return costs.validate_profile(data, self.field_name)
        except costs.CostModelError as exc:
            raise serializers.ValidationError(exc.message) from None


class BusinessProcessSerializer(StrictModelSerializer):
    applications = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Application.objects.all(),
        many=True,
        required=False,
        help_text="Slugs of the applications the process needs.",
    )
    regulatory_frameworks = serializers.ListField(
        child=serializers.ChoiceField(choices=ComplianceFramework.choices), required=False, max_length=20
    )
    cost_curve = CostCurveField(required=False, help_text=CURVE_HELP)
    weekly_profile = WeeklyProfileField(required=False, help_text=PROFILE_HELP)

    class Meta:
        model = BusinessProcess
        fields = [
            "id",
            "name",
            "description",
            "owner",
            "criticality",
            "revenue_per_hour",
            "employees",
            "customers",
            "regulatory_frameworks",
            "applications",
            "cost_curve",
            "weekly_profile",
            "created_at",
            "updated_at",
        ]

    def validate_regulatory_frameworks(self, value: list[str]) -> list[str]:
        return sorted(set(value))


class SiteField(serializers.CharField):
    def run_validation(self, data: Any = serializers.empty) -> Site:
        code = super().run_validation(data)
        site = Site.objects.filter(code=code).first()
        if site is None:
            raise serializers.ValidationError(f"no site {code!r}")
        return site


class PlanRefField(serializers.CharField):
    json_types = (str, int)

    def run_validation(self, data: Any = serializers.empty) -> DRPlan:
        text = str(super().run_validation(data)).strip()
        plan = find(DRPlan.objects.prefetch_related("applications"), text, "plan_id")
        if plan is None:
            raise serializers.ValidationError(f"no plan {text!r}")
        return plan


class ApplicationsField(serializers.ListField):
    child = serializers.CharField(max_length=100)

    def run_validation(self, data: Any = serializers.empty) -> list[Application]:
        slugs = super().run_validation(data)
        found = {a.slug: a for a in Application.objects.filter(slug__in=slugs)}
        unknown = [s for s in slugs if s not in found]
        if unknown:
            raise serializers.ValidationError(f"no application {', '.join(repr(s) for s in unknown)}")
        return [found[s] for s in dict.fromkeys(slugs)]


class ScenarioRequestSerializer(StrictSerializer):
    site = SiteField(required=False, max_length=50, help_text="The lost site's code.")
    applications = ApplicationsField(required=False, max_length=500, help_text="Slugs of the lost applications.")
    plan = PlanRefField(required=False, max_length=100, help_text="The plan that recovers (plan_id or id).")
    at = serializers.DateTimeField(
        required=False,
        validators=[check_at],
        help_text=f"When the disaster strikes (ISO 8601, years {EARLIEST}-{LATEST}). Default: now.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "applications" in attrs and not attrs["applications"]:
            raise serializers.ValidationError({"applications": ["The scenario loses nothing: name applications."]})
        if "site" in attrs and "applications" in attrs:
            raise serializers.ValidationError({"applications": ["Give either a site or applications, not both."]})
        if "site" not in attrs and "applications" not in attrs:
            raise serializers.ValidationError({"site": ["The scenario loses nothing: name a site or applications."]})
        return attrs


class ImpactAnalysisRequestSerializer(StrictSerializer):
    plan = PlanRefField(max_length=100, help_text="The plan analysed (plan_id or id).")
    scenario = serializers.CharField(max_length=200, help_text="The scenario's name.")
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    site = SiteField(required=False, max_length=50, help_text="The lost site's code (default: the plan's apps).")
    applications = ApplicationsField(required=False, max_length=500, help_text="Slugs of the lost applications.")
    at = serializers.DateTimeField(
        required=False,
        validators=[check_at],
        help_text=f"When it strikes (years {EARLIEST}-{LATEST}); without it costs use each profile's weekly mean.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "applications" in attrs and not attrs["applications"]:
            raise serializers.ValidationError({"applications": ["The scenario loses nothing: name applications."]})
        if "site" in attrs and "applications" in attrs:
            raise serializers.ValidationError({"applications": ["Give either a site or applications, not both."]})
        return attrs


class ImpactAnalysisResultSerializer(ImpactAnalysisSerializer):
    """An analysis with what it was computed from and its working."""

    class Meta(ImpactAnalysisSerializer.Meta):
        fields = [*ImpactAnalysisSerializer.Meta.fields, "scenario_at", "reputation_score", "inputs", "breakdown"]
        read_only_fields = fields


# --- The what-if answer (documented for the schema) -------------------------------------------------------


class EstimateSerializer(serializers.Serializer):
    p50_seconds = serializers.FloatField()
    p90_seconds = serializers.FloatField()
    source = serializers.ChoiceField(choices=["ml", "history", "strategy", "target", "unplanned"])
    detail = serializers.CharField()


class TimelineRowSerializer(serializers.Serializer):
    application = serializers.CharField()
    name = serializers.CharField()
    tier = serializers.IntegerField()
    site = serializers.CharField(allow_null=True)
    down_because = serializers.ChoiceField(choices=["lost", "dependency"])
    waits_for = serializers.ListField(child=serializers.CharField())
    plan = serializers.CharField(allow_null=True)
    strategy = serializers.CharField(allow_null=True)
    estimate = EstimateSerializer(allow_null=True)
    down_at = serializers.DateTimeField()
    recovered_after_p50_seconds = serializers.FloatField()
    recovered_after_p90_seconds = serializers.FloatField()
    recovered_at_p50 = serializers.DateTimeField()
    recovered_at_p90 = serializers.DateTimeField()


class ProcessCostSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    criticality = serializers.CharField()
    applications = serializers.ListField(child=serializers.CharField())
    down_seconds_p50 = serializers.FloatField()
    down_seconds_p90 = serializers.FloatField()
    cost_p50 = serializers.DecimalField(max_digits=20, decimal_places=2)
    cost_p90 = serializers.DecimalField(max_digits=20, decimal_places=2)
    rate_at_start = serializers.DecimalField(max_digits=20, decimal_places=2)


class CostPointSerializer(serializers.Serializer):
    seconds = serializers.FloatField()
    cost_p50 = serializers.DecimalField(max_digits=20, decimal_places=2)
    cost_p90 = serializers.DecimalField(max_digits=20, decimal_places=2)


class CostSerializer(serializers.Serializer):
    p50 = serializers.DecimalField(max_digits=20, decimal_places=2)
    p90 = serializers.DecimalField(max_digits=20, decimal_places=2)
    over_time = CostPointSerializer(many=True)


class StrategyRowSerializer(serializers.Serializer):
    strategy = serializers.CharField()
    label = serializers.CharField()
    current = serializers.BooleanField()
    time_factor = serializers.FloatField()
    cost_factor = serializers.FloatField()
    recovery_p50_seconds = serializers.FloatField()
    recovery_p90_seconds = serializers.FloatField()
    cost_p50 = serializers.DecimalField(max_digits=20, decimal_places=2)
    cost_p90 = serializers.DecimalField(max_digits=20, decimal_places=2)
    dr_cost_monthly = serializers.DecimalField(max_digits=20, decimal_places=2)
    dr_cost_annual = serializers.DecimalField(max_digits=20, decimal_places=2)


class LostSerializer(serializers.Serializer):
    site = serializers.CharField(allow_null=True)
    applications = serializers.ListField(child=serializers.CharField())


class EstimatorSerializer(serializers.Serializer):
    ml_available = serializers.BooleanField()
    ml_reason = serializers.CharField(allow_blank=True)


class ScenarioResultSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    weekday = serializers.CharField()
    hour = serializers.IntegerField()
    time_zone = serializers.CharField()
    lost = LostSerializer()
    plan = serializers.CharField(allow_null=True)
    down = serializers.ListField(child=serializers.CharField())
    estimator = EstimatorSerializer()
    applications = TimelineRowSerializer(many=True)
    processes = ProcessCostSerializer(many=True)
    unpriced_applications = serializers.ListField(child=serializers.CharField())
    cost = CostSerializer()
    recovery_p50_seconds = serializers.FloatField()
    recovery_p90_seconds = serializers.FloatField()
    dr_cost_monthly = serializers.DecimalField(
        max_digits=20, decimal_places=2, help_text="The involved plans' own monthly DR cost (as planned)."
    )
    strategies = StrategyRowSerializer(many=True)
