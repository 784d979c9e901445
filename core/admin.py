"""Admin site branding, the audit log (view only), and audited users, groups and tokens."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import models, transaction
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from core import audit
from core.admin_mixins import AuditedModelAdmin, ReadOnlyAdminMixin
from core.choices import AuditAction, AuthMethod
from core.models import AuditEntry

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
