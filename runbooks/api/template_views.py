"""GET /api/v1/dr/runbook-templates (list, detail by slug) and POST …/{slug}/use: the template library.

Reading needs runbooks.view_runbook (any role); "use template" needs runbooks.add_runbook (whoever may
author runbooks: approver, admin) and makes a DRAFT version, never approved (runbooks.library.use_template).
Not paginated: the library is a short list of files shipped with DRPlan (runbooks/templates/).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core import audit
from core.api.strict import StrictSerializer
from runbooks import library, selectors
from runbooks.api.serializers import VersionDetailSerializer
from runbooks.models import Runbook

SLUG_PARAM = OpenApiParameter(
    "id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The template's slug, e.g. postgres-pilot-light."
)


class TemplateSecretSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The secret name the template's steps reference.")
    description = serializers.CharField(help_text="What the secret must hold.")


class TemplateParameterSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    default = serializers.JSONField(allow_null=True)
    description = serializers.CharField(allow_blank=True)


class LastRunSerializer(serializers.Serializer):
    rto_seconds = serializers.FloatField(help_text="The execution's measured RTO.")
    finished_at = serializers.DateTimeField()
    execution = serializers.IntegerField(help_text="The execution's id (/api/v1/dr/executions/{id}).")


class ShippedRecordSerializer(serializers.Serializer):
    rto_seconds = serializers.FloatField(help_text="Measured RTO of the reference run (bench/templates.py).")
    ran_at = serializers.DateTimeField()
    run_against = serializers.CharField()


class RunbookTemplateSerializer(serializers.Serializer):
    """Documents the response; the data comes from the library (runbooks.library)."""

    slug = serializers.CharField()
    name = serializers.CharField()
    version = serializers.CharField(help_text="The template document's version.")
    category = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    strategy = serializers.CharField(help_text=f"The recovery strategy: one of {', '.join(library.STRATEGIES)}.")
    strategy_label = serializers.CharField()
    systems = serializers.ListField(child=serializers.CharField())
    run_against = serializers.CharField(help_text="What the test suite has run it against, in words.")
    dry_run_only = serializers.BooleanField(help_text="Only ever dry-run (example hosts): never run for real.")
    tested_by = serializers.CharField(help_text="The pytest node id of the test that runs it.")
    secrets = TemplateSecretSerializer(many=True)
    parameters = TemplateParameterSerializer(many=True)
    steps = serializers.IntegerField(help_text="Number of steps.")
    last_run = LastRunSerializer(
        allow_null=True,
        help_text="The last completed real (not dry-run) execution, in this installation, of a runbook made from "
        "this template; null when there is none.",
    )
    shipped_record = ShippedRecordSerializer(
        allow_null=True, help_text="The last verified run shipped with DRPlan (runbooks/templates/RECORD.json)."
    )


class RunbookTemplateDetailSerializer(RunbookTemplateSerializer):
    document = serializers.JSONField(help_text="The runbook document (without the library's `template:` block).")


class UseTemplateSerializer(StrictSerializer):
    slug = serializers.CharField(max_length=100, help_text="The new runbook's slug (must not exist).")
    application = serializers.CharField(
        required=False, allow_null=True, max_length=100, help_text="Slug of the application it recovers (optional)."
    )
    secrets = serializers.DictField(
        child=serializers.CharField(max_length=100),
        required=False,
        default=dict,
        help_text="Every secret name of the template → the name of one of your existing secrets.",
    )


def template_data(template: library.Template, *, detail: bool = False) -> dict[str, Any]:
    """The API's (and the catalogue page's) view of one template."""
    data: dict[str, Any] = {
        "slug": template.slug,
        "name": template.name,
        "version": template.version,
        "category": template.document.get("category", "failover"),
        "description": str(template.document.get("description") or "").strip(),
        "strategy": template.strategy,
        "strategy_label": template.strategy_label,
        "systems": template.systems,
        "run_against": template.run_against,
        "dry_run_only": template.dry_run_only,
        "tested_by": template.tested_by,
        "secrets": [{"name": name, "description": what} for name, what in sorted(template.secrets.items())],
        "parameters": template.parameters(),
        "steps": len(template.document.get("steps") or []),
        "last_run": library.last_verified_run(template.slug),
        "shipped_record": library.shipped_record().get(template.slug),
    }
    if detail:
        data["document"] = template.document
    return data


class RunbookTemplateViewSet(viewsets.ViewSet):
    """The template library. GET needs runbooks.view_runbook; POST …/use runbooks.add_runbook."""

    queryset = Runbook.objects.none()  # RolePermissions: GET → view_runbook, POST → add_runbook
    lookup_value_regex = r"[A-Za-z0-9][A-Za-z0-9_-]*"
    lookup_description = "The template's slug."

    @extend_schema(
        summary="The runbook templates, with what each has been run against and its last verified run",
        responses=RunbookTemplateSerializer(many=True),
    )
    def list(self, request: Request) -> Response:
        return Response([template_data(t) for t in library.all_templates()])

    @extend_schema(
        summary="One runbook template with its document",
        parameters=[SLUG_PARAM],
        responses=RunbookTemplateDetailSerializer,
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(template_data(library.get_template(pk), detail=True))

    @extend_schema(
        summary="Use a template: a new runbook whose draft version is the template bound to your secrets",
        description="The version is a draft (submit it and have it approved before it runs). Every secret of the "
        "template must be mapped to one of your existing secrets. Nothing is stored when the input is refused.",
        parameters=[SLUG_PARAM],
        request=UseTemplateSerializer,
        responses={201: VersionDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def use(self, request: Request, pk: str) -> Response:
        template = library.get_template(pk)
        body = UseTemplateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = library.use_template(
            template.slug,
            runbook_slug=body.validated_data["slug"],
            application=body.validated_data.get("application"),
            secrets=body.validated_data["secrets"],
            actor=request.user,
            auth_method=audit.auth_method_of(request),
        )
        fresh = selectors.version_detail_queryset().get(pk=version.pk)
        data = VersionDetailSerializer(fresh, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED)
