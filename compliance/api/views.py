"""Compliance API: generate a report (POST), read it, download its PDF, attest it (which signs it), and verify a
PDF handed back. The views validate the request and call compliance.services."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from compliance import selectors, services
from compliance.api.serializers import (
    AttestSerializer,
    ComplianceReportSerializer,
    ReportCreateSerializer,
    VerificationSerializer,
)
from compliance.filtersets import ComplianceReportFilterSet
from compliance.models import ComplianceReport
from core import audit
from core.api.viewsets import ReadOnlyModelViewSet
from core.exceptions import InvalidInput


class PdfParser(BaseParser):
    """A raw application/pdf body: the file itself."""

    media_type = "application/pdf"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> dict[str, bytes]:
        return {"file": stream.read() if stream is not None else b""}


class PdfNegotiation(DefaultContentNegotiation):
    """The PDF download answers errors as JSON whatever the Accept header says."""

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


ATTESTED_CONFLICT = OpenApiResponse(description="The report is already attested (`report_attested`).")


@extend_schema_view(
    list=extend_schema(summary="List compliance reports"),
    retrieve=extend_schema(summary="A compliance report with its requirements' status, evidence and gaps"),
)
class ComplianceReportViewSet(mixins.CreateModelMixin, ReadOnlyModelViewSet):
    """Compliance reports per framework, plans and period, evaluated from the platform's records."""

    queryset = ComplianceReport.objects.none()
    serializer_class = ComplianceReportSerializer
    filterset_class = ComplianceReportFilterSet
    search_fields = ["summary", "scope_links__plan__plan_id", "requirements__requirement_id"]
    ordering_fields = ["period_end", "period_start", "framework", "generated_at"]
    ordering = ["-period_end", "framework", "id"]
    body_required_actions = ("create", "verify")  # core.api.schema
    action_permissions = {
        "attest": ["compliance.attest_compliancereport"],
        "verify": ["compliance.view_compliancereport"],
    }

    def get_queryset(self) -> models.QuerySet:
        return selectors.report_list()

    def get_parsers(self) -> list[BaseParser]:
        request = getattr(self, "request", None)
        action_name = getattr(self, "action", None)
        if action_name is None and request is not None:  # parsers are chosen before DRF sets .action
            action_name = getattr(self, "action_map", {}).get(request.method.lower())
        if action_name == "verify":
            return [PdfParser()]
        return super().get_parsers()

    def _detail(self, report: ComplianceReport, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=report.pk)
        return Response(ComplianceReportSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    @extend_schema(
        summary="Generate a compliance report for plans, a framework and a period",
        description="Evaluates every requirement of the framework's catalog from the platform's records for the "
        "plans and period and stores the result as a draft report (attest it to sign it). Unknown framework, no "
        "plan, an unknown plan or a period that ends before it starts: 400 naming the field.",
        request=ReportCreateSerializer,
        responses={201: ComplianceReportSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = ReportCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        report = services.generate_report(
            services.ReportRequest(
                framework=data["framework"],
                period_start=data["period_start"],
                period_end=data["period_end"],
                plans=data["plans"],
                all_plans=data["all_plans"],
            ),
            actor=request.user,
            auth_method=audit.auth_method_of(request),
        )
        return self._detail(report, status.HTTP_201_CREATED)

    @extend_schema(
        summary="The report as a PDF: signed when attested, a marked draft otherwise",
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
    )
    @action(
        detail=True,
        methods=["get"],
        content_negotiation_class=PdfNegotiation,
        renderer_classes=[JSONRenderer],
        filter_backends=[],
    )
    def pdf(self, request: Request, pk: str) -> HttpResponse:
        report = self.get_object()
        response = HttpResponse(services.report_pdf(report), content_type="application/pdf")
        kind = "signed" if report.attested_at else "draft"
        response["Content-Disposition"] = f'inline; filename="compliance-report-{report.pk}-{kind}.pdf"'
        return response

    @extend_schema(
        summary="Attest the report: its PDF is signed (PAdES) with the organisation's key and it never changes again",
        description="For a named user with the auditor or approver role (permission attest_compliancereport).",
        request=AttestSerializer,
        responses={200: ComplianceReportSerializer, 409: ATTESTED_CONFLICT},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def attest(self, request: Request, pk: str) -> Response:
        report = self.get_object()
        body = AttestSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        services.attest_report(
            report,
            request.user,
            statement=body.validated_data["statement"],
            auth_method=audit.auth_method_of(request),
        )
        return self._detail(report)

    @extend_schema(
        summary="Verify a report PDF: signature, certificate trust, and content against the stored report",
        description="Send the PDF as the raw body (Content-Type: application/pdf; `curl --data-binary @report.pdf`). "
        "A body that is not a PDF, or a PDF without a signature, is 400 (`file`); a signed PDF that fails a check "
        "is 200 with valid=false and the reason.",
        request={"application/pdf": OpenApiTypes.BINARY},
        responses={200: VerificationSerializer},
    )
    @action(detail=False, methods=["post"], filter_backends=[])
    def verify(self, request: Request) -> Response:
        sent = request.data.get("file") if hasattr(request.data, "get") else None
        if not isinstance(sent, bytes) or not sent:
            raise InvalidInput("file: send the PDF as the request body (Content-Type: application/pdf).", field="file")
        return Response(services.verify_pdf(sent))

    def get_object(self) -> ComplianceReport:
        value = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        if not str(value).isdigit():
            raise Http404
        report = self.get_queryset().filter(pk=int(value)).first()
        if report is None:
            raise Http404
        self.check_object_permissions(self.request, report)
        return report
