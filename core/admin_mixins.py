"""Admin building blocks shared by every app.

`AuditedModelAdmin` writes an audit entry (actor, session auth, before/after
snapshots) for every save and delete made through the admin, including rows
edited in inlines, in the same transaction as the change. `ReadOnlyAdminMixin`
and `ReadOnlyInlineMixin` are for evidence (executions, step runs, events,
audit entries): viewable by anyone with the view permission, never writable.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models, transaction
from django.forms import BaseModelForm
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from core import audit
from core.choices import AuditAction, AuthMethod
from core.formatting import duration

ADMIN_COMMENT = "via admin"


def human_duration(seconds: float | int | None) -> str:
    """3600 → '1 h', 5400 → '1 h 30 min', 90 → '1 min 30 s', None → '—' (core.formatting.duration: the
    admin reads durations like every other page)."""
    return duration(seconds)


def _db_snapshot(instance: models.Model) -> dict[str, Any] | None:
    """The stored state of `instance` (the form has already changed the object in memory)."""
    if instance.pk is None:
        return None
    stored = type(instance)._default_manager.filter(pk=instance.pk).first()
    return audit.snapshot(stored) if stored is not None else None


def _differs(model: type[models.Model], before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    """True if a save changed something beyond `auto_now` timestamps (a no-op save is not audited)."""
    if before is None or after is None:
        return before != after
    stamps = {f.name for f in model._meta.concrete_fields if getattr(f, "auto_now", False)}
    return any(before.get(k) != after.get(k) for k in before.keys() | after.keys() if k not in stamps)


class AuditedModelAdmin(admin.ModelAdmin):
    """A ModelAdmin whose every save and delete, inlines included, is audited."""

    def audit_identity(self, obj: models.Model, pk: Any) -> dict[str, str]:
        """object_id/object_repr for the entry; override when the pk or str() is a secret."""
        return {"object_id": str(pk), "object_repr": str(obj)[:200]}

    def _record(
        self,
        request: HttpRequest,
        action: AuditAction,
        obj: models.Model,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        pk: Any = None,
    ) -> None:
        audit.record(
            action,
            obj,
            actor=request.user,
            auth_method=AuthMethod.SESSION,
            before=before,
            after=after,
            comment=ADMIN_COMMENT,
            **self.audit_identity(obj, obj.pk if pk is None else pk),
        )

    def save_model(self, request: HttpRequest, obj: models.Model, form: BaseModelForm, change: bool) -> None:
        # The entry is written in save_related, once many-to-many fields are saved too.
        obj._audit_before = _db_snapshot(obj) if change else None
        obj._audit_change = change
        with transaction.atomic():
            super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: BaseModelForm, formsets: list, change: bool) -> None:
        with transaction.atomic():
            form.save_m2m()
            obj = form.instance
            before = getattr(obj, "_audit_before", None)
            after = _db_snapshot(obj)  # as stored: decimals, dates and m2m normalised by the database
            if not change:
                self._record(request, AuditAction.CREATE, obj, None, after)
            elif _differs(type(obj), before, after):
                self._record(request, AuditAction.UPDATE, obj, before, after)
            for formset in formsets:
                self.save_formset(request, form, formset, change=change)

    def save_formset(self, request: HttpRequest, form: BaseModelForm, formset: BaseInlineFormSet, change: bool) -> None:
        with transaction.atomic():
            befores: dict[Any, dict[str, Any] | None] = {}
            for inline_form in formset.initial_forms:
                instance = inline_form.instance
                if instance.pk is not None and (inline_form.has_changed() or formset._should_delete_form(inline_form)):
                    befores[instance.pk] = _db_snapshot(instance)
            deleting = {
                f.instance.pk: f.instance
                for f in formset.initial_forms
                if f.instance.pk is not None and formset._should_delete_form(f)
            }
            super().save_formset(request, form, formset, change)
            for obj in formset.new_objects:
                self._record(request, AuditAction.CREATE, obj, None, _db_snapshot(obj))
            for obj, _changed in formset.changed_objects:
                after = _db_snapshot(obj)
                if _differs(type(obj), befores.get(obj.pk), after):
                    self._record(request, AuditAction.UPDATE, obj, befores.get(obj.pk), after)
            for pk, obj in deleting.items():
                self._record(request, AuditAction.DELETE, obj, befores.get(pk), None, pk)

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        with transaction.atomic():
            before = audit.snapshot(obj)
            pk = obj.pk
            super().delete_model(request, obj)
            self._record(request, AuditAction.DELETE, obj, before, None, pk)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        with transaction.atomic():
            doomed = [(obj, obj.pk, audit.snapshot(obj)) for obj in queryset]
            super().delete_queryset(request, queryset)
            for obj, pk, before in doomed:
                self._record(request, AuditAction.DELETE, obj, before, None, pk)


class ReadOnlyAdminMixin:
    """Evidence: no add, change or delete through the admin; view with the view permission."""

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


class ReadOnlyInlineMixin(ReadOnlyAdminMixin):
    """An inline listing evidence rows of the parent, never editable."""

    extra = 0
    can_delete = False
    show_change_link = True
