from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.serializers import AuditEntrySerializer
from core.api.viewsets import ReadOnlyModelViewSet
from core.filtersets import AuditEntryFilterSet
from core.models import AuditEntry


class HealthView(APIView):
    """Liveness probe; also the bare DRF baseline that bench/api.py compares against."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        summary="Liveness probe",
        tags=["health"],
        auth=[],
        responses=inline_serializer("Health", {"status": serializers.CharField()}),
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


@extend_schema_view(
    list=extend_schema(summary="List audit entries (auditor, admin)", tags=["audit"]),
    retrieve=extend_schema(summary="One audit entry by sequence number", tags=["audit"]),
)
class AuditEntryViewSet(ReadOnlyModelViewSet):
    """The append-only audit log, newest first. Needs core.view_auditentry (auditor, admin)."""

    queryset = AuditEntry.objects.all()
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilterSet
    search_fields = ("object_repr", "comment", "request_id")
    ordering_fields = ("seq", "at")
    ordering = ("-seq",)
    lookup_field = "seq"
    lookup_value_regex = r"[0-9]+"
