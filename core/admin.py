"""Admin site branding, the audit log (view only), audited users, groups and tokens, and secrets."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from core import audit, secrets
from core.admin_mixins import AuditedModelAdmin, ReadOnlyAdminMixin
from core.choices import AuditAction, AuthMethod
from core.exceptions import InvalidInput
from core.models import AuditEntry, Secret

admin.site.site_header = "DRPlan administration"
admin.site.site_title = "DRPlan administration"
admin.site.index_title = "Disaster-recovery plans, runbooks and evidence"


def _pretty_json(value: Any) -> str:
    if value is None:
        return "—"
    return format_html("<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The append-only audit log: for auditors and admins (core.view_auditentry), never editable."""

    list_display = ("seq", "at", "actor_display", "auth_method", "action", "object_type", "object_id", "object_repr")
    list_filter = ("action", "auth_method", "object_type")
    search_fields = ("actor_username", "object_id", "object_repr", "comment", "request_id")
    date_hierarchy = "at"
    ordering = ("-seq",)
    fields = (
        "seq",
        "at",
        "actor_username",
        "actor_id",
        "auth_method",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "comment",
        "request_id",
        "changed_fields",
        "before_pretty",
        "after_pretty",
        "prev_hash",
        "hash",
    )
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return request.user.has_perm("core.view_auditentry")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("core.view_auditentry")

    @admin.display(description="actor", ordering="actor_username")
    def actor_display(self, entry: AuditEntry) -> str:
        return entry.actor_username or "system"

    @admin.display(description="changed fields")
    def changed_fields(self, entry: AuditEntry) -> str:
        before, after = entry.before or {}, entry.after or {}
        keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        return ", ".join(keys) or "—"

    @admin.display(description="before")
    def before_pretty(self, entry: AuditEntry) -> str:
        return _pretty_json(entry.before)

    @admin.display(description="after")
    def after_pretty(self, entry: AuditEntry) -> str:
        return _pretty_json(entry.after)


# Who may do what is itself audited: users, groups (roles) and API tokens.
admin.site.unregister(User)
admin.site.unregister(Group)
admin.site.unregister(TokenProxy)


@admin.register(User)
class AuditedUserAdmin(AuditedModelAdmin, UserAdmin):
    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        # UserAdmin saves the new password itself, bypassing save_model.
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                user = User.objects.get(pk=id)
                snap = audit.snapshot(user)
                audit.record(
                    AuditAction.UPDATE,
                    user,
                    actor=request.user,
                    auth_method=AuthMethod.SESSION,
                    before=snap,
                    after=snap,
                    comment="password changed via admin",
                )
        return response


@admin.register(Group)
class AuditedGroupAdmin(AuditedModelAdmin, GroupAdmin):
    pass


@admin.register(TokenProxy)
class AuditedTokenAdmin(AuditedModelAdmin, TokenAdmin):
    """A token's key is its primary key and its str(): never write it to the log."""

    def audit_identity(self, obj: models.Model, pk: Any) -> dict[str, str]:
        return {"object_id": str(obj.user_id), "object_repr": f"API token of {obj.user}"}


class SecretForm(forms.ModelForm):
    """Name and description as usual; the value write-only (empty on a change: kept); the allowed
    hosts one per line, checked by core.secrets."""

    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        strip=False,
        max_length=secrets.MAX_VALUE_LENGTH,
        help_text="Never shown. Leave empty to keep the current value.",
    )
    allowed_hosts = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="One per line: host, host:port, *.example.com or *.example.com:port. Empty: any host.",
    )

    class Meta:
        model = Secret
        fields = ("name", "description")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["allowed_hosts"] = "\n".join(self.instance.allowed_hosts or [])

    def clean_allowed_hosts(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["allowed_hosts"].splitlines() if line.strip()]
        try:
            return secrets.normalise_allowed_hosts(lines)
        except InvalidInput as exc:
            raise ValidationError(exc.message) from None

    def clean_value(self) -> str:
        value = self.cleaned_data["value"]
        if not value and self.instance.pk is None:
            raise ValidationError("A new secret needs a value.")
        return value


@admin.register(Secret)
class SecretAdmin(admin.ModelAdmin):
    """Secrets through core.secrets, which audits every change (never the value)."""

    form = SecretForm
    list_display = ("name", "description", "hosts", "updated_at")
    search_fields = ("name", "description")
    ordering = ("name",)

    def get_readonly_fields(self, request: HttpRequest, obj: Secret | None = None) -> tuple[str, ...]:
        return ("name", "created_at", "updated_at") if obj is not None else ()

    @admin.display(description="allowed hosts")
    def hosts(self, secret: Secret) -> str:
        return ", ".join(secret.allowed_hosts) or "any"

    def save_model(self, request: HttpRequest, obj: Secret, form: SecretForm, change: bool) -> None:
        data = form.cleaned_data
        common = {"actor": request.user, "auth_method": AuthMethod.SESSION, "allowed_hosts": data["allowed_hosts"]}
        if change:
            saved = secrets.update_secret(obj, value=data["value"] or None, description=data["description"], **common)
        else:
            saved = secrets.create_secret(data["name"], data["value"], description=data["description"], **common)
        obj.pk = saved.pk  # the admin redirects to it

    def delete_model(self, request: HttpRequest, obj: Secret) -> None:
        secrets.delete_secret(obj.name, actor=request.user, auth_method=AuthMethod.SESSION)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Secret]) -> None:
        for name in queryset.values_list("name", flat=True):
            secrets.delete_secret(name, actor=request.user, auth_method=AuthMethod.SESSION)
