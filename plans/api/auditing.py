"""AuditedModelViewSet whose audit snapshots include nested rows (steps, findings, dependencies …).

Candidate for core.api.viewsets: it only adds an `audit_snapshot()` hook to the core base class.
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.http import Http404
from rest_framework.serializers import BaseSerializer

from core import audit
from core.api.viewsets import AuditedModelViewSet
from core.choices import AuditAction
from core.lookups import is_id, lookup_kwargs


class NestedAuditedModelViewSet(AuditedModelViewSet):
    """Audits like AuditedModelViewSet; `audit_nested` names reverse relations whose rows are added
    to the before/after snapshots, and `audit_snapshot()` can be overridden for anything else."""

    audit_nested: tuple[str, ...] = ()

    def audit_snapshot(self, instance: models.Model) -> dict[str, Any]:
        data = audit.snapshot(instance)
        for name in self.audit_nested:
            data[name] = [audit.snapshot(child) for child in getattr(instance, name).all()]
        return data

    @staticmethod
    def _fresh(instance: models.Model) -> models.Model:
        if getattr(instance, "_prefetched_objects_cache", None):
            instance._prefetched_objects_cache = {}
        return instance

    def perform_create(self, serializer: BaseSerializer) -> None:
        with transaction.atomic():
            instance = serializer.save(**self.get_create_kwargs())
            self._audit(AuditAction.CREATE, instance, None, self.audit_snapshot(self._fresh(instance)))

    def perform_update(self, serializer: BaseSerializer) -> None:
        with transaction.atomic():
            before = self.audit_snapshot(serializer.instance)
            instance = serializer.save()
            self._audit(AuditAction.UPDATE, instance, before, self.audit_snapshot(self._fresh(instance)))

    def perform_destroy(self, instance: models.Model) -> None:
        with transaction.atomic():
            before = self.audit_snapshot(instance)
            pk = instance.pk
            instance.delete()
            instance.pk = pk
            self._audit(AuditAction.DELETE, instance, before, None)


SLUG_OR_ID = r"[-a-zA-Z0-9_]+"  # a slug's characters; an id is all digits


class PkOrSlugLookupMixin:
    """`/{id}` is the numeric primary key, or the `slug_lookup_field` (core.lookups: never all digits)."""

    slug_lookup_field: str = ""
    lookup_value_regex = SLUG_OR_ID
    lookup_description = "Numeric id or natural key."  # the schema's description of `{id}`

    def get_object(self) -> models.Model:
        value = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, "")
        if not self.slug_lookup_field and not is_id(value):
            raise Http404
        queryset = self.filter_queryset(self.get_queryset())
        found = queryset.filter(**lookup_kwargs(value, self.slug_lookup_field)).first()
        if found is None:
            raise Http404
        self.check_object_permissions(self.request, found)
        return found
