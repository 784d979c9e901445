"""Runbook API: metadata CRUD, import/export, versions, drafts and approvals.

`{id}` is the runbook's numeric id or its slug; `{version}` a version string (1.2.0).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from core import audit
from core.api.viewsets import AuditedModelViewSet
from core.exceptions import InvalidInput
from core.jsondepth import json_too_deep
from core.lookups import lookup_kwargs
from plans.api.auditing import SLUG_OR_ID
from runbooks import documents, selectors, services
from runbooks.api.schema import RunbookDocumentSerializer
from runbooks.api.serializers import (
    DOCUMENT_BODY,
    IMPORT_BODY,
    NEW_VERSION_BODY,
    CommentSerializer,
    CopyVersionSerializer,
    RejectionSerializer,
    RunbookSerializer,
    VersionDetailSerializer,
    VersionSummarySerializer,
)
from runbooks.choices import Decision, VersionStatus
from runbooks.filtersets import RunbookFilterSet
from runbooks.importers.base import MAX_SOURCE_BYTES
from runbooks.importers.service import import_file, import_record
from runbooks.models import Runbook, RunbookVersion

VERSION_PARAM = OpenApiParameter(
    "version", OpenApiTypes.STR, OpenApiParameter.PATH, description="A version string, e.g. 1.2.0.", pattern=r"^[^/]+$"
)
NOT_A_DRAFT = OpenApiResponse(description="The version is not in a state that allows this (`invalid_transition`).")
IMPORT_CONFLICT = OpenApiResponse(
    description="That version of the runbook already exists with different content, or cannot be changed."
)


@dataclass(frozen=True)
class RawDocument:
    text: str
    fmt: str


class _RawParser(BaseParser):
    fmt = "yaml"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> RawDocument:
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            return RawDocument(stream.read().decode(encoding), self.fmt)
        except UnicodeDecodeError:
            raise InvalidInput(f"the body is not valid {encoding} text", field="document") from None


class YAMLParser(_RawParser):
    media_type = "application/yaml"


class TextYAMLParser(_RawParser):
    media_type = "text/yaml"


class XYAMLParser(_RawParser):
    media_type = "application/x-yaml"


class XMLParser(_RawParser):
    media_type = "application/xml"
    fmt = "xml"


class TextXMLParser(XMLParser):
    media_type = "text/xml"


class PlainTextParser(_RawParser):
    media_type = "text/plain"
    fmt = ""  # detect


class RawJSONParser(_RawParser):
    """Keeps JSON as text so a malformed body is reported with its line and column."""

    media_type = "application/json"
    fmt = "json"


DOCUMENT_PARSERS = [RawJSONParser, YAMLParser, TextYAMLParser, XYAMLParser, PlainTextParser]
DOCUMENT_ACTIONS = {"create", "import_document", "create_version", "update_version"}
IMPORT_PARSERS = [*DOCUMENT_PARSERS, XMLParser, TextXMLParser, MultiPartParser]
FOREIGN_KEYS = {"content", "format", "filename"}


class ExportNegotiation(DefaultContentNegotiation):
    """Export uses `?format=` for the document format, not DRF's renderer override; errors are JSON."""

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


def _unwrap(value: Any, fmt: str | None) -> Any:
    """{"document": "...text..."} or {"document": {...}} → the parsed document."""
    if isinstance(value, dict) and "document" in value and set(value) <= {"document", "format"}:
        inner = value["document"]
        fmt = value.get("format") or None
        if fmt is not None and fmt not in ("yaml", "json"):
            raise InvalidInput("format must be 'yaml' or 'json'", field="format")
        return documents.parse_document(inner, fmt) if isinstance(inner, str) else inner
    return value


def _object(request: Request) -> Any:
    """The request's JSON object (empty without a body); any other JSON value is 400."""
    if not isinstance(request.data, dict):
        raise InvalidInput("Expected a JSON object.")
    return request.data


def import_source(request: Request) -> tuple[str, str | None, str] | None:
    """(text, format or None, file name) of an import request in the importers' shapes — a multipart `file`,
    a JSON object with `content`, raw XML, YAML or JSON — or None for the wrapped-document shapes
    ({"document": …}), which document_from_request reads."""
    data = request.data
    if isinstance(data, RawDocument):
        if data.fmt == "json":
            value = None  # malformed or too deep: the importers report the line and column, or the depth
            if not json_too_deep(data.text):
                with contextlib.suppress(ValueError):
                    value = json.loads(data.text)
            if isinstance(value, dict) and value and set(value) <= {"document", "format"} and "document" in value:
                return None
            if isinstance(value, dict) and "content" in value and set(value) <= FOREIGN_KEYS:
                return _foreign(value)
        return data.text, None, ""
    if hasattr(data, "getlist"):  # multipart or form data
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        fields = {k: data.get(k) for k in data if k != "file"}
        unknown = sorted(set(fields) - {"format", "filename", "content", "document"})
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r} (allowed: file, format)", field=unknown[0])
        if upload is not None:
            raw = upload.read(MAX_SOURCE_BYTES + 1)
            if len(raw) > MAX_SOURCE_BYTES:
                raise InvalidInput(f"the file is larger than {MAX_SOURCE_BYTES} bytes", field="file")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput("the file is not UTF-8 text", field="file") from None
            return text, _format_field(fields.get("format")), str(upload.name or "")[:255]
        if isinstance(data.get("file"), str):  # the file's text sent as a plain form field
            return data["file"], _format_field(fields.get("format")), ""
        if "content" in fields:
            return _foreign(fields)
        if "document" in fields:
            return None
        raise InvalidInput("send the document as a file (multipart field `file`) or as `content`", field="file")
    if isinstance(data, dict) and "content" in data and set(data) <= FOREIGN_KEYS:
        return _foreign(data)
    return None


def _format_field(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidInput("format must be a string", field="format")
    return value


def _foreign(value: dict[str, Any]) -> tuple[str, str | None, str]:
    content = value.get("content")
    if not isinstance(content, str):
        raise InvalidInput("content must be the document's text (a string)", field="content")
    filename = value.get("filename") or ""
    if not isinstance(filename, str):
        raise InvalidInput("filename must be a string", field="filename")
    return content, _format_field(value.get("format")), filename[:255]


def document_from_request(request: Request) -> Any:
    """The parsed runbook document in a request body (raw YAML/JSON, or wrapped in {"document": …})."""
    data = request.data
    if isinstance(data, RawDocument):
        if data.fmt == "json":
            return _unwrap(documents.parse_document(data.text, "json"), None)
        return _unwrap(documents.parse_document(data.text, data.fmt or None), None)
    if hasattr(data, "dict"):  # form data
        data = data.dict()
    return _unwrap(data, None)


@extend_schema_view(
    list=extend_schema(summary="List runbooks with their latest and approved versions"),
    retrieve=extend_schema(summary="A runbook's metadata"),
    update=extend_schema(exclude=True),
    partial_update=extend_schema(exclude=True),
    destroy=extend_schema(
        summary="Delete a runbook whose versions were never submitted (with its drafts)",
        description="A runbook with a version that was submitted, approved, rejected or superseded is evidence: 409.",
    ),
)
class RunbookViewSet(AuditedModelViewSet):
    """Runbooks as code. Writes need runbooks.add/change/delete_runbook; approvals runbooks.approve_runbookversion."""

    queryset = Runbook.objects.none()
    serializer_class = RunbookSerializer
    lookup_value_regex = SLUG_OR_ID
    lookup_description = "Numeric id or slug."
    body_required_actions = ("create", "import_document", "update_version")  # core.api.schema
    filterset_class = RunbookFilterSet
    search_fields = ["name", "slug"]
    ordering_fields = ["slug", "name", "category", "created_at", "updated_at"]  # name, category: annotations
    ordering = ["slug"]
    action_permissions = {
        "submit": ["runbooks.change_runbook"],
        "approve": ["runbooks.approve_runbookversion"],
        "reject": ["runbooks.approve_runbookversion"],
    }

    def get_parsers(self) -> list[BaseParser]:
        action_name = getattr(self, "action", None)
        request = getattr(self, "request", None)
        if action_name is None and request is not None:  # parsers are chosen before DRF sets .action
            action_name = getattr(self, "action_map", {}).get(request.method.lower())
        if action_name == "import_document":
            return [parser() for parser in IMPORT_PARSERS]
        if action_name in DOCUMENT_ACTIONS:
            return [parser() for parser in DOCUMENT_PARSERS]
        return super().get_parsers()

    def get_queryset(self) -> models.QuerySet[Runbook]:
        return selectors.runbooks_with_versions()

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Nothing about a runbook is edited in place: its name, category and application are part of each
        version, frozen once submitted, so a change is a new draft version that gets approved."""
        raise MethodNotAllowed(
            request.method,
            detail="A runbook's name, category and application belong to its versions: change them in a draft "
            "(PUT /runbooks/{id}/versions/{version}, or POST /runbooks/{id}/versions for a new draft) and get it "
            "approved.",
        )

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, **kwargs)

    def get_object(self) -> Runbook:
        value = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        runbook = self.get_queryset().filter(**lookup_kwargs(value, "slug")).first()
        if runbook is None:
            raise Http404
        self.check_object_permissions(self.request, runbook)
        return runbook

    def _version(self, version: str) -> RunbookVersion:
        runbook = self.get_object()
        found = selectors.version_detail_queryset().filter(runbook=runbook, version=version).first()
        if found is None:
            raise Http404
        return found

    def _detail(self, version: RunbookVersion, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.version_detail_queryset().get(pk=version.pk)
        return Response(VersionDetailSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    def _import(self, request: Request, runbook: Runbook | None = None) -> Response:
        version = services.import_runbook_document(
            document_from_request(request),
            actor=request.user,
            auth_method=audit.auth_method_of(request),
            runbook=runbook,
        )
        return self._detail(version, status.HTTP_201_CREATED if version.was_created else status.HTTP_200_OK)

    @extend_schema(
        summary="Create a runbook (or a new version of it) from a full document — same as import",
        request=DOCUMENT_BODY,
        responses={201: VersionDetailSerializer, 200: VersionDetailSerializer, 409: IMPORT_CONFLICT},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._import(request)

    @extend_schema(
        summary="Import a runbook: a DRPlan document, or a Rundeck, Chaos Toolkit, SSM, Ansible or ASR document",
        description='A DRPlan runbook as raw YAML (application/yaml, text/yaml) or JSON, or {"document": …}; '
        'another tool\'s document as a multipart upload (`file`, optional `format`), as JSON {"content": "…text…", '
        '"format": …}, or raw (XML: a Rundeck job list). The format is detected when not given. A new slug '
        "creates the runbook; a new version becomes a draft (an import never approves anything); the same "
        "version with identical content returns it (200); with different content → 409. A foreign document's "
        "version carries the file's hash, so importing the same file again returns its version; the response's "
        "`provenance` has the import report (step by step: converted, made manual with the original text, or "
        "dropped and why). A document that cannot be imported → 400 naming the key or line; nothing is stored.",
        request=IMPORT_BODY,
        responses={201: VersionDetailSerializer, 200: VersionDetailSerializer, 409: IMPORT_CONFLICT},
    )
    @action(detail=False, methods=["post"], url_path="import")
    def import_document(self, request: Request) -> Response:
        source = import_source(request)
        if source is None:
            return self._import(request)
        text, fmt, filename = source
        result = import_file(
            text, fmt=fmt, filename=filename, actor=request.user, auth_method=audit.auth_method_of(request)
        )
        return self._detail(result.version, status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)

    @extend_schema(
        summary="The original document an imported version was made from (its provenance), as it was sent",
        parameters=[VERSION_PARAM],
        responses={(200, "text/plain"): OpenApiTypes.STR},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"versions/(?P<version>[^/]+)/original",
        filter_backends=[],
        content_negotiation_class=ExportNegotiation,
        renderer_classes=[JSONRenderer],
    )
    def import_original(self, request: Request, pk: str, version: str) -> HttpResponse:
        record = import_record(self._version(version))
        if record is None:
            raise Http404
        response = HttpResponse(record.original, content_type="text/plain; charset=utf-8")
        if record.filename:
            response["Content-Disposition"] = f'inline; filename="{record.filename.replace(chr(34), "")}"'
        return response

    @extend_schema(
        summary="Export a version as YAML or JSON",
        parameters=[
            OpenApiParameter("format", OpenApiTypes.STR, enum=["yaml", "json"], description="Default yaml."),
            OpenApiParameter("version", OpenApiTypes.STR, description="Default: latest approved, else latest."),
        ],
        responses={
            (200, "application/yaml"): RunbookDocumentSerializer,
            (200, "application/json"): RunbookDocumentSerializer,
        },
    )
    @action(
        detail=True,
        methods=["get"],
        content_negotiation_class=ExportNegotiation,
        renderer_classes=[JSONRenderer],
        filter_backends=[],
    )
    def export(self, request: Request, pk: str) -> HttpResponse:
        fmt = request.query_params.get("format") or "yaml"
        if fmt not in ("yaml", "json"):
            raise InvalidInput("format must be 'yaml' or 'json'", field="format")
        runbook = self.get_object()
        wanted = request.query_params.get("version")
        version = self._version(wanted) if wanted else selectors.default_export_version(runbook)
        if version is None:
            raise Http404
        content_type = "application/json" if fmt == "json" else "application/yaml"
        response = HttpResponse(services.export_version(version, fmt), content_type=f"{content_type}; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="{runbook.slug}-{version.version}.{fmt}"'
        return response

    @extend_schema(
        summary="A runbook's versions, newest first",
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=VersionStatus.values)],
        responses=VersionSummarySerializer(many=True),
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def versions(self, request: Request, pk: str) -> Response:
        runbook = self.get_object()
        queryset = RunbookVersion.objects.filter(runbook=runbook).select_related("created_by")
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in VersionStatus.values:
                raise InvalidInput(f"status must be one of {', '.join(VersionStatus.values)}", field="status")
            queryset = queryset.filter(status=wanted)
        ordered = sorted(queryset, key=lambda v: (selectors.semver_key(v.version), v.pk), reverse=True)
        page = self.paginate_queryset(ordered)
        data = VersionSummarySerializer(page if page is not None else ordered, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    @extend_schema(
        summary="Create a draft version: from a document, or by copying a version (default: the latest)",
        request=NEW_VERSION_BODY,
        responses={201: VersionDetailSerializer, 200: VersionDetailSerializer, 409: IMPORT_CONFLICT},
    )
    @versions.mapping.post
    def create_version(self, request: Request, pk: str) -> Response:
        runbook = self.get_object()
        data = document_from_request(request)
        if data is None or (isinstance(data, dict) and set(data) <= {"from_version", "version"}):
            copy = CopyVersionSerializer(data=data or {})
            copy.is_valid(raise_exception=True)
            data = copy.validated_data
            source = (
                self._version(data["from_version"]) if data.get("from_version") else selectors.latest_version(runbook)
            )
            if source is None:
                raise InvalidInput(f"Runbook {runbook.slug!r} has no version to copy; send a document.")
            new_version = data.get("version")
            draft = services.create_draft(source, request.user, new_version, auth_method=audit.auth_method_of(request))
            return self._detail(draft, status.HTTP_201_CREATED)
        return self._import(request, runbook)

    @extend_schema(
        summary="A version with its parameters, steps, needs, approval levels and decisions",
        parameters=[VERSION_PARAM],
        responses=VersionDetailSerializer,
    )
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<version>[^/]+)", filter_backends=[])
    def version_detail(self, request: Request, pk: str, version: str) -> Response:
        return self._detail(self._version(version))

    @extend_schema(
        summary="Replace a draft's content with a document (only drafts; others → 409)",
        parameters=[VERSION_PARAM],
        request=DOCUMENT_BODY,
        responses={200: VersionDetailSerializer, 409: NOT_A_DRAFT},
    )
    @version_detail.mapping.put
    def update_version(self, request: Request, pk: str, version: str) -> Response:
        found = self._version(version)
        services.update_draft(
            found, document_from_request(request), request.user, auth_method=audit.auth_method_of(request)
        )
        return self._detail(found)

    def _comment(self, request: Request, serializer_class: type[BaseSerializer] = CommentSerializer) -> str:
        serializer = serializer_class(data=_object(request))
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["comment"]

    @extend_schema(
        summary="Submit a draft for approval",
        parameters=[VERSION_PARAM],
        request=None,
        responses={200: VersionDetailSerializer, 409: NOT_A_DRAFT},
    )
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<version>[^/]+)/submit", filter_backends=[])
    def submit(self, request: Request, pk: str, version: str) -> Response:
        found = self._version(version)
        services.submit_for_approval(found, request.user, auth_method=audit.auth_method_of(request))
        return self._detail(found)

    @extend_schema(
        summary="Approve the current approval level of a pending version",
        parameters=[VERSION_PARAM],
        request=CommentSerializer,
        responses=VersionDetailSerializer,
    )
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<version>[^/]+)/approve", filter_backends=[])
    def approve(self, request: Request, pk: str, version: str) -> Response:
        return self._decide(request, version, Decision.APPROVE)

    @extend_schema(
        summary="Reject a pending version (a comment is required)",
        parameters=[VERSION_PARAM],
        request=RejectionSerializer,
        responses=VersionDetailSerializer,
    )
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<version>[^/]+)/reject", filter_backends=[])
    def reject(self, request: Request, pk: str, version: str) -> Response:
        return self._decide(request, version, Decision.REJECT)

    def _decide(self, request: Request, version: str, decision: str) -> Response:
        found = self._version(version)
        comment = self._comment(request, RejectionSerializer if decision == Decision.REJECT else CommentSerializer)
        services.decide(found, request.user, decision, comment, auth_method=audit.auth_method_of(request))
        return self._detail(found)
