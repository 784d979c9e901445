"""GET /api/v1/dr/actions: the registry of step action types, for forms generated from their schemas."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from runbooks import selectors
from runbooks.models import Runbook


class RunbookActionSerializer(serializers.Serializer):
    """Documents the response; the data comes straight from the registry."""

    name = serializers.CharField()
    description = serializers.CharField()
    params_schema = serializers.JSONField(help_text="JSON Schema (2020-12) of the step's `with`.")


class ActionViewSet(viewsets.ViewSet):
    """The action types a step may use. Reading needs runbooks.view_runbook (any role).

    Not paginated: the registry is a short, fixed list defined in code (runbooks/actions.py).
    """

    queryset = Runbook.objects.none()  # RolePermissions: GET needs runbooks.view_runbook
    lookup_value_regex = r"[A-Za-z0-9_.-]+"  # family.name, e.g. postgres.promote

    @extend_schema(summary="Action types with their parameter schemas", responses=RunbookActionSerializer(many=True))
    def list(self, request: Request) -> Response:
        return Response(selectors.action_catalogue())

    @extend_schema(summary="One action type with its parameter schema", responses=RunbookActionSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        found = next((item for item in selectors.action_catalogue() if item["name"] == pk), None)
        if found is None:
            raise Http404
        return Response(found)
