from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import dbtime, secrets, signin
from core.api.serializers import (
    AuditEntrySerializer,
    SecretCreateSerializer,
    SecretSerializer,
    SecretWriteSerializer,
)
from core.api.viewsets import ReadOnlyModelViewSet
from core.audit import auth_method_of
from core.filtersets import AuditEntryFilterSet
from core.models import AuditEntry, Secret


class TokenView(ObtainAuthToken):
    # POST username and password → {"token": …}, under the sign-in lockout (core/signin.py). The serializer
    # authenticates with the Django request, not DRF's wrapper: django-axes flags a locked-out attempt on the
    # request it is given, and its middleware looks for the flag on the Django one.

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "request": self.request._request}

    @extend_schema(
        summary="Get the API token of a user",
        description="After DRPLAN_LOGIN_FAILURE_LIMIT failed attempts for one username from one address, that "
        "pair gets 429 (error code `locked_out`, with Retry-After) until DRPLAN_LOGIN_LOCKOUT_SECONDS have "
        "passed, even with the right password.",
        tags=["auth"],
        responses={
            200: AuthTokenSerializer,
            400: OpenApiResponse(description="Wrong credentials: the standard error shape."),
            429: OpenApiResponse(description="Locked out: the standard error shape; see Retry-After."),
        },
    )
    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        response = super().post(request, *args, **kwargs)
        signin.reset_failures(request._request, request.data.get("username", ""))
        return response


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


class ClockHealthView(APIView):
    """How far each node's clock (worker and web nodes) is from the database server's (core/dbtime.py), and
    which nodes are skewed beyond the lease margin. Open like the liveness probe, for monitoring and `scripts/cluster.py
    status`: it names nodes and offsets, nothing else."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        summary="Clock skew of the cluster's nodes",
        description="Each worker node measures its offset from the database server's clock every minute, each web "
        "node on its first request and then at most every minute. "
        "`status` is `skewed` when a node's offset, less its measurement uncertainty, exceeds the lease margin "
        "(`DRPLAN_ENGINE_LEASE_MARGIN_SECONDS`). Leases do not depend on it: their expiry is judged by the "
        "database's clock; a skewed node's own timestamps (step start and finish, RTO) are off.",
        tags=["health"],
        auth=[],
        responses=inline_serializer(
            "ClockHealth",
            {
                "status": serializers.ChoiceField(choices=["ok", "skewed"]),
                "lease_margin_seconds": serializers.FloatField(),
                "skewed": serializers.ListField(child=serializers.CharField()),
                "nodes": inline_serializer(
                    "NodeClockReport",
                    {
                        "node": serializers.CharField(),
                        "offset_seconds": serializers.FloatField(help_text="Node minus database; > 0: ahead."),
                        "uncertainty_seconds": serializers.FloatField(),
                        "checked_at": serializers.DateTimeField(),
                        "skewed": serializers.BooleanField(),
                    },
                    many=True,
                ),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        return Response(dbtime.report())


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
    lookup_description = "The entry's sequence number."


@extend_schema_view(
    list=extend_schema(summary="List secrets: names and descriptions only", tags=["secrets"]),
    retrieve=extend_schema(summary="One secret by name (never its value)", tags=["secrets"]),
    create=extend_schema(
        summary="Store a new secret",
        tags=["secrets"],
        request=SecretCreateSerializer,
        responses={201: SecretSerializer},
    ),
    update=extend_schema(
        summary="Replace a secret's value (and description, allowed hosts)",
        description="A secret cannot be renamed: a `name` in the body other than the secret's own is 400.",
        tags=["secrets"],
        request=SecretWriteSerializer,
        responses=SecretSerializer,
    ),
    partial_update=extend_schema(
        summary="Change a secret's description, allowed hosts and/or value",
        description="A secret cannot be renamed: a `name` in the body other than the secret's own is 400.",
        tags=["secrets"],
        request=SecretWriteSerializer,
        responses=SecretSerializer,
    ),
    destroy=extend_schema(summary="Delete a secret", tags=["secrets"]),
)
class SecretViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Encrypted secrets referenced by name from runbooks. Values go in, never out.

    Reading names needs core.view_secret (operator, approver, auditor, admin); writes need
    core.add/change/delete_secret (approver, admin). Every write is audited without the value.
    """

    queryset = Secret.objects.all()
    serializer_class = SecretSerializer
    search_fields = ("name", "description")
    ordering_fields = ("name", "created_at", "updated_at")
    ordering = ("name",)
    lookup_field = "name"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    lookup_description = "The secret's name."

    def create(self, request: Request) -> Response:
        data = self._valid_input(request, None, partial=False)
        secret = secrets.create_secret(
            data["name"],
            data["value"],
            description=data.get("description", ""),
            allowed_hosts=data.get("allowed_hosts", []),
            actor=request.user,
            auth_method=auth_method_of(request),
        )
        return Response(SecretSerializer(secret).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, name: str, partial: bool = False) -> Response:
        secret = self.get_object()
        data = self._valid_input(request, secret, partial=partial)
        secret = secrets.update_secret(
            secret,
            value=data.get("value"),
            description=data.get("description"),
            allowed_hosts=data.get("allowed_hosts"),
            actor=request.user,
            auth_method=auth_method_of(request),
        )
        return Response(SecretSerializer(secret).data)

    def partial_update(self, request: Request, name: str) -> Response:
        return self.update(request, name, partial=True)

    def perform_destroy(self, instance: Secret) -> None:
        secrets.delete_secret(instance.name, actor=self.request.user, auth_method=auth_method_of(self.request))

    def _valid_input(self, request: Request, instance: Secret | None, *, partial: bool) -> dict:
        serializer_class = SecretWriteSerializer if instance is not None else SecretCreateSerializer
        serializer = serializer_class(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
