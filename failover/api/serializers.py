"""Failover API serializers: executions are evidence, read-only."""

from __future__ import annotations

from rest_framework import serializers

from failover.models import ExecutionEvent, FailoverExecution, StepRun, ValidationResult


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
    triggered_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

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
    step_runs = StepRunSerializer(many=True, read_only=True)
    validation_results = ValidationResultSerializer(many=True, read_only=True)

    class Meta(FailoverExecutionSerializer.Meta):
        fields = [*FailoverExecutionSerializer.Meta.fields, "step_runs", "validation_results"]
        read_only_fields = fields
