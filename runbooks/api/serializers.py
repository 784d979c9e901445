"""Runbook API serializers: shapes only; the rules live in runbooks.services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from core.api.strict import StrictSerializer
from runbooks import documents, selectors
from runbooks.api.schema import RunbookDocumentSerializer
from runbooks.choices import ImportFormat, RunbookCategory
from runbooks.models import (
    ApprovalLevel,
    Runbook,
    RunbookApproval,
    RunbookImport,
    RunbookParameter,
    RunbookStep,
    RunbookVersion,
)


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


class ImportReportEntrySerializer(serializers.Serializer):
    source = serializers.CharField(help_text="Where in the imported document (key path).")
    outcome = serializers.ChoiceField(choices=["converted", "manual", "dropped"])
    step = serializers.CharField(allow_null=True, help_text="The step it became, if any.")
    detail = serializers.CharField(help_text="What it became, or why it was dropped.")


class ImportReportSerializer(serializers.Serializer):
    format = serializers.CharField()
    summary = serializers.DictField(child=serializers.IntegerField(), help_text="Entries per outcome.")
    entries = ImportReportEntrySerializer(many=True)
    notes = serializers.ListField(child=serializers.CharField())


class ProvenanceSerializer(serializers.ModelSerializer):
    """Where an imported version came from: the format, the file, the original's hash and the import report
    (the original itself: GET …/versions/{version}/original)."""

    format = serializers.CharField(source="source_format")
    report = ImportReportSerializer()

    class Meta:
        model = RunbookImport
        fields = ["format", "filename", "original_sha256", "created_at", "report"]
        read_only_fields = fields


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
    provenance = serializers.SerializerMethodField()

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
            "provenance",
        ]
        read_only_fields = fields

    @extend_schema_field(ProvenanceSerializer(allow_null=True))
    def get_provenance(self, version: RunbookVersion) -> dict[str, Any] | None:
        """Set for a version imported from another tool's format (runbooks.importers), else null."""
        record = RunbookImport.objects.filter(version_id=version.pk).first()
        return ProvenanceSerializer(record).data if record is not None else None


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


class ForeignImportSerializer(StrictSerializer):
    """A document in any importable format as text: Rundeck (YAML/XML), Chaos Toolkit, AWS SSM Automation,
    Ansible, Azure Site Recovery, or a DRPlan runbook."""

    closed_schema = True
    content = serializers.CharField(
        trim_whitespace=False, max_length=1024 * 1024, help_text="The document's text, as in its file."
    )
    format = serializers.ChoiceField(
        choices=ImportFormat.choices, required=False, help_text="The document's format; detected when absent."
    )
    filename = serializers.CharField(required=False, max_length=255, allow_blank=True, help_text="Kept as provenance.")


class ImportFileSerializer(StrictSerializer):
    """A multipart upload: the file, and optionally its format (detected when absent)."""

    file = serializers.FileField(help_text="The document to import (at most 1 MiB).")
    format = serializers.ChoiceField(choices=ImportFormat.choices, required=False)


DOCUMENT = PolymorphicProxySerializer(
    component_name="RunbookDocumentBody",
    serializers=[ImportDocumentSerializer, RunbookDocumentSerializer],
    resource_type_field_name=None,
)
IMPORT_DOCUMENT = PolymorphicProxySerializer(
    component_name="RunbookImportBody",
    serializers=[ForeignImportSerializer, ImportDocumentSerializer, RunbookDocumentSerializer],
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
# The import's: also another tool's document as text (JSON `content`) or a multipart upload (raw XML, a Rundeck
# job list, is taken too: application/xml or text/xml).
IMPORT_BODY = {
    "application/json": IMPORT_DOCUMENT,
    "application/yaml": RunbookDocumentSerializer,
    "text/yaml": RunbookDocumentSerializer,
    "multipart/form-data": ImportFileSerializer,
}
NEW_VERSION_BODY = {"application/json": NEW_VERSION, "application/yaml": RunbookDocumentSerializer}
