"""Base API viewsets: permissions, pagination, filtering come from settings; writes
are audited in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from rest_framework import mixins, viewsets
from rest_framework.serializers import BaseSerializer

from core import audit
from core.choices import AuditAction


class AuditedModelViewSet(viewsets.ModelViewSet):
    """CRUD where every create/update/delete writes an audit entry with before/after."""

    def _audit(self, action: AuditAction, instance: models.Model, before: Any, after: Any) -> None:
        audit.record(
            action,
            instance,
            actor=self.request.user,
            auth_method=audit.auth_method_of(self.request),
            before=before,
            after=after,
        )

    def perform_create(self, serializer: BaseSerializer) -> None:
        with transaction.atomic():
            instance = serializer.save(**self.get_create_kwargs())
            self._audit(AuditAction.CREATE, instance, None, audit.snapshot(instance))

    def perform_update(self, serializer: BaseSerializer) -> None:
        with transaction.atomic():
            before = audit.snapshot(serializer.instance)
            instance = serializer.save()
            self._audit(AuditAction.UPDATE, instance, before, audit.snapshot(instance))

    def perform_destroy(self, instance: models.Model) -> None:
        with transaction.atomic():
            before = audit.snapshot(instance)
            pk = instance.pk
            instance.delete()
            instance.pk = pk
            self._audit(AuditAction.DELETE, instance, before, None)

    def get_create_kwargs(self) -> dict[str, Any]:
        """Extra fields set by the server on create (e.g. created_by)."""
        return {}


class ReadOnlyModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List and retrieve only: for evidence (executions, audit) and generated reports."""
