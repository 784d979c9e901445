"""Failover API serializers: executions are evidence, read-only; requests that start or control them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.schema import NOT_ONLY_WHITESPACE
from core.api.strict import StrictSerializer
from core.lookups import find
from failover.choices import ExecutionType
from failover.models import ApprovalDecision, ExecutionEvent, FailoverExecution, StepRun, ValidationResult


class StepRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = StepRun
        fields = [
            "id",
            "step_key",
            "runbook_step",
            "title",
            "action",
            "status",
            "attempts",
            "started_at",
            "finished_at",
            "duration_seconds",
            "output",
            "error",
            "worker",
            "heartbeat_at",
        ]
        read_only_fields = fields


class StepRunDetailSerializer(StepRunSerializer):
    """A step with its definition and control state. `rendered` is masked by the engine (secrets ***)."""

    instructions = serializers.SerializerMethodField(help_text="What a person must do (manual steps).")
    confirmed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta(StepRunSerializer.Meta):
        fields = [
            *StepRunSerializer.Meta.fields,
            "needs",
            "tier",
            "priority",
            "rendered",
            "instructions",
            "approval",
            "timeout_seconds",
            "retries",
            "idempotent",
            "continue_on_failure",
            "estimated_duration_seconds",
            "responsible_role",
            "waiting_for",
            "gate_approved_at",
            "confirmed_by",
            "confirmed_at",
            "rollback_status",
            "rollback_error",
        ]
        read_only_fields = fields

    def get_instructions(self, obj: StepRun) -> str:
        if obj.action != "manual":
            return ""
        source = obj.rendered if isinstance(obj.rendered, dict) and obj.rendered.get("instructions") else obj.params
        return str((source or {}).get("instructions", ""))


class ApprovalDecisionSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)
    step_key = serializers.CharField(source="step_run.step_key", read_only=True, allow_null=True)

    class Meta:
        model = ApprovalDecision
        fields = ["id", "level", "step_key", "user", "decision", "comment", "decided_at"]
        read_only_fields = fields


class ValidationResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = ValidationResult
        fields = [
            "id",
            "name",
            "check_type",
            "severity",
            "status",
            "measured",
            "threshold",
            "unit",
            "message",
            "checked_at",
        ]
        read_only_fields = fields


class ExecutionEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExecutionEvent
        fields = ["seq", "kind", "step_run", "message", "data", "created_at"]
        read_only_fields = fields


class FailoverExecutionSerializer(serializers.ModelSerializer):
    plan_slug = serializers.CharField(source="plan.plan_id", read_only=True, allow_null=True)
    runbook = serializers.SerializerMethodField(help_text="'slug@version' of the runbook version run, if any.")
    triggered_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = FailoverExecution
        fields = [
            "id",
            "plan",
            "plan_slug",
            "runbook_version",
            "runbook",
            "execution_type",
            "status",
            "dry_run",
            "parameters",
            "trigger_type",
            "trigger_reason",
            "triggered_by",
            "triggered_at",
            "disaster_declared_at",
            "started_at",
            "finished_at",
            "actual_rto_seconds",
            "actual_rpo_seconds",
            "data_loss_bytes",
            "data_loss_transactions",
            "affected_users",
            "affected_transactions",
            "estimated_revenue_loss",
            "actual_revenue_loss",
            "error",
            "event_seq",
        ]
        read_only_fields = fields

    def get_runbook(self, obj: FailoverExecution) -> str | None:
        return str(obj.runbook_version) if obj.runbook_version_id else None


class FailoverExecutionDetailSerializer(FailoverExecutionSerializer):
    step_runs = StepRunDetailSerializer(many=True, read_only=True)
    validation_results = ValidationResultSerializer(many=True, read_only=True)
    approval_decisions = ApprovalDecisionSerializer(many=True, read_only=True)

    class Meta(FailoverExecutionSerializer.Meta):
        fields = [
            *FailoverExecutionSerializer.Meta.fields,
            "parallelism",
            "on_failure",
            "rollback_trigger",
            "approval_policy",
            "approval_deadline",
            "approval_decisions",
            "cancel_requested",
            "rollback_on_cancel",
            "step_runs",
            "validation_results",
        ]
        read_only_fields = fields


# --- Requests -------------------------------------------------------------------------


@extend_schema_field(
    {
        "anyOf": [
            {"type": "integer"},
            {"type": "string", "minLength": 1, "maxLength": 100, "pattern": NOT_ONLY_WHITESPACE},
        ]
    }
)
class PlanField(serializers.CharField):
    """A plan by its numeric id or its plan_id (core.lookups: plan_ids are never all digits)."""

    json_types = (str, int)  # core.api.strict: an id may be sent as a number

    def to_internal_value(self, data: Any) -> Any:
        from plans.models import DRPlan

        text = str(super().to_internal_value(data)).strip()
        if len(text) > 100:
            raise serializers.ValidationError("Ensure this field has no more than 100 characters.")
        plan = find(DRPlan.objects.all(), text, "plan_id")
        if plan is None:
            raise serializers.ValidationError(f"no plan {text!r}")
        return plan


class RunRequestSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    parameters = serializers.DictField(required=False, default=dict, help_text="Runbook parameters: name -> value.")
    dry_run = serializers.BooleanField(required=False, default=False)
    parallelism = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1, max_value=1000)


class FailoverRequestSerializer(RunRequestSerializer):
    plan = PlanField(help_text="The plan's plan_id or numeric id.")
    type = serializers.ChoiceField(
        choices=[ExecutionType.PLANNED, ExecutionType.UNPLANNED, ExecutionType.TEST],
        required=False,
        default=ExecutionType.PLANNED,
    )
    disaster_declared_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="RTO is measured from here if given."
    )


class PlanRunRequestSerializer(RunRequestSerializer):
    plan = PlanField(help_text="The plan's plan_id or numeric id.")


class RunbookExecuteRequestSerializer(RunRequestSerializer):
    version = serializers.CharField(
        required=False, allow_blank=False, help_text="Default: the latest approved version."
    )


class CancelRequestSerializer(StrictSerializer):
    execution = serializers.IntegerField(min_value=1)
    rollback = serializers.BooleanField(required=False, default=False)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class ExecutionCancelRequestSerializer(StrictSerializer):
    rollback = serializers.BooleanField(required=False, default=False)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class DecisionCommentSerializer(StrictSerializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


def _required_comment(why: str) -> serializers.CharField:
    return serializers.CharField(max_length=2000, error_messages={"required": why, "blank": why}, help_text=why)


class RejectionCommentSerializer(StrictSerializer):
    comment = _required_comment("a rejection needs a comment explaining why")


class VerificationCommentSerializer(StrictSerializer):
    comment = _required_comment("say how you verified the step completed")


class PlanRefSerializer(StrictSerializer):
    plan = PlanField(help_text="The plan's plan_id or numeric id.")


class ScheduleRequestSerializer(StrictSerializer):
    plan = PlanField(help_text="The plan's plan_id or numeric id.")
    cron = serializers.CharField(required=False, allow_null=True, default=None, max_length=100)
    frequency = serializers.ChoiceField(
        choices=["daily", "weekly", "monthly", "quarterly", "yearly"], required=False, allow_null=True, default=None
    )


# --- Responses --------------------------------------------------------------------------


class ExecutionStatusSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    executions = FailoverExecutionDetailSerializer(many=True)


class ReadinessCheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    passed = serializers.BooleanField()
    detail = serializers.CharField()


class ReadinessSerializer(serializers.Serializer):
    plan = serializers.CharField()
    ready = serializers.BooleanField()
    checks = ReadinessCheckSerializer(many=True)


class ScheduleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    func = serializers.CharField()
    schedule_type = serializers.CharField()
    cron = serializers.CharField(allow_null=True)
    next_run = serializers.DateTimeField(allow_null=True)


class TestResultSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    outcome = serializers.CharField()
    actual_rto_seconds = serializers.FloatField(allow_null=True)
    actual_rpo_seconds = serializers.FloatField(allow_null=True)
    target_rto_seconds = serializers.IntegerField()
    target_rpo_seconds = serializers.IntegerField()


class TestExecutionSerializer(FailoverExecutionSerializer):
    test_result = serializers.SerializerMethodField()

    class Meta(FailoverExecutionSerializer.Meta):
        fields = [*FailoverExecutionSerializer.Meta.fields, "test_result"]
        read_only_fields = fields

    @extend_schema_field(TestResultSummarySerializer(allow_null=True))
    def get_test_result(self, obj: FailoverExecution) -> dict[str, Any] | None:
        result = getattr(obj, "test_result", None)
        return TestResultSummarySerializer(result).data if result is not None else None
