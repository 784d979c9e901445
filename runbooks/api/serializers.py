"""Runbook API serializers: shapes only; the rules live in runbooks.services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from core.api.strict import StrictSerializer
from runbooks import documents, selectors
from runbooks.api.schema import RunbookDocumentSerializer
from runbooks.choices import RunbookCategory
from runbooks.models import ApprovalLevel, Runbook, RunbookApproval, RunbookParameter, RunbookStep, RunbookVersion


class VersionSummarySerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    application = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = RunbookVersion
        fields = [
            "id",
            "version",
            "status",
            "name",
            "category",
            "application",
            "content_hash",
            "created_by",
            "created_at",
            "submitted_at",
            "approved_at",
        ]
        read_only_fields = fields


class VersionBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.CharField()
    status = serializers.CharField()


class RunbookSerializer(serializers.ModelSerializer):
    """A runbook and its current version's name, category and application (approved version, else the latest).

    All three are part of each version, frozen with it once submitted: change them in a new draft version."""

    name = serializers.CharField(read_only=True, allow_null=True)
    category = serializers.ChoiceField(choices=RunbookCategory.choices, read_only=True, allow_null=True)
    application = serializers.CharField(source="application_slug", read_only=True, allow_null=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    latest_version = serializers.SerializerMethodField()
    approved_version = serializers.SerializerMethodField()

    class Meta:
        model = Runbook
        fields = [
            "id",
            "slug",
            "name",
            "category",
            "application",
            "latest_version",
            "approved_version",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(VersionBriefSerializer(allow_null=True))
    def get_latest_version(self, runbook: Runbook) -> dict[str, Any] | None:
        found = selectors.latest(runbook.versions.all())
        return VersionBriefSerializer(found).data if found else None

    @extend_schema_field(VersionBriefSerializer(allow_null=True))
    def get_approved_version(self, runbook: Runbook) -> dict[str, Any] | None:
        found = selectors.latest(v for v in runbook.versions.all() if v.status == "approved")
        return VersionBriefSerializer(found).data if found else None


class ParameterSerializer(serializers.ModelSerializer):
    class Meta:
        model = RunbookParameter
        fields = ["order", "name", "type", "default", "secret", "description"]


class StepSerializer(serializers.ModelSerializer):
    needs = serializers.SerializerMethodField()

    class Meta:
        model = RunbookStep
        fields = [
            "id",
            "step_id",
            "number",
            "title",
            "description",
            "action",
            "params",
            "needs",
            "timeout_seconds",
            "retries",
            "rollback",
            "approval",
            "estimated_duration_seconds",
            "responsible_role",
            "automated",
            "idempotent",
            "continue_on_failure",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_needs(self, step: RunbookStep) -> list[str]:
        return [need.step_id for need in sorted(step.needs.all(), key=lambda n: n.number)]


class ApprovalLevelSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApprovalLevel
        fields = ["level", "role", "required", "min_approvers"]


class DecisionSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = RunbookApproval
        fields = ["level", "user", "decision", "comment", "decided_at"]


class VersionDetailSerializer(VersionSummarySerializer):
    runbook = serializers.IntegerField(source="runbook_id", read_only=True)
    slug = serializers.CharField(source="runbook.slug", read_only=True)
    parameters = ParameterSerializer(many=True, read_only=True)
    steps = StepSerializer(many=True, read_only=True)
    approval_levels = ApprovalLevelSerializer(many=True, read_only=True)
    decisions = DecisionSerializer(many=True, read_only=True)
    contributors = serializers.SlugRelatedField(
        slug_field="username",
        many=True,
        read_only=True,
        help_text="Who created, edited or submitted this version: none of them may approve or reject it.",
    )

    class Meta(VersionSummarySerializer.Meta):
        fields = [
            "id",
            "runbook",
            "slug",
            *VersionSummarySerializer.Meta.fields[1:],
            "description",
            "parallelism",
            "parameters",
            "steps",
            "approval_levels",
            "decisions",
            "contributors",
        ]
        read_only_fields = fields


class CommentSerializer(StrictSerializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=10000)


class RejectionSerializer(StrictSerializer):
    comment = serializers.CharField(
        max_length=10000,
        error_messages={
            "required": "a rejection needs a comment explaining why",
            "blank": "a rejection needs a comment explaining why",
        },
        help_text="Why it is rejected: a rejection needs a comment.",
    )


SEMVER = documents.load_schema()["$defs"]["semver"]["pattern"]


class CopyVersionSerializer(StrictSerializer):
    """A new draft copied from a version of the runbook."""

    closed_schema = True  # core.api.schema: any other key makes the body a document
    from_version = serializers.CharField(
        required=False, max_length=40, help_text="Copy this version (default: the latest); 404 if there is none."
    )
    version = serializers.RegexField(
        SEMVER, required=False, max_length=40, help_text="The new draft's version (default: the next patch)."
    )


class ImportDocumentSerializer(StrictSerializer):
    """A runbook document wrapped in an object. `document` may also be the document's YAML or JSON text
    (with `format`, or detected)."""

    closed_schema = True  # core.api.schema: any other key makes the body a document
    document = RunbookDocumentSerializer()
    format = serializers.ChoiceField(choices=["yaml", "json"], required=False, help_text="Of text in `document`.")


DOCUMENT = PolymorphicProxySerializer(
    component_name="RunbookDocumentBody",
    serializers=[ImportDocumentSerializer, RunbookDocumentSerializer],
    resource_type_field_name=None,
)
NEW_VERSION = PolymorphicProxySerializer(
    component_name="NewVersionBody",
    serializers=[CopyVersionSerializer, ImportDocumentSerializer, RunbookDocumentSerializer],
    resource_type_field_name=None,
)
# The request bodies of import, create, create-version and update-draft: JSON, or the document as YAML.
DOCUMENT_BODY = {
    "application/json": DOCUMENT,
    "application/yaml": RunbookDocumentSerializer,
    "text/yaml": RunbookDocumentSerializer,
}
NEW_VERSION_BODY = {"application/json": NEW_VERSION, "application/yaml": RunbookDocumentSerializer}
