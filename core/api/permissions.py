"""Role-based API permissions.

Roles are Django groups holding model permissions (see core/roles.py). Reads need
the model's `view_` permission, writes its add/change/delete permission. A view
can name other permissions for a custom action in `action_permissions`, e.g.
{"approve": ["runbooks.approve_runbookversion"]}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission, DjangoModelPermissions

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from rest_framework.request import Request
    from rest_framework.views import APIView


class RolePermissions(DjangoModelPermissions):
    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def _queryset(self, view: APIView) -> QuerySet:
        # Only the model matters here: prefer the class attribute over get_queryset(),
        # which may build an expensive annotated queryset.
        queryset = getattr(view, "queryset", None)
        return queryset if queryset is not None else super()._queryset(view)

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        action_permissions = getattr(view, "action_permissions", {}) or {}
        action = getattr(view, "action", None)
        if action in action_permissions:
            return user.has_perms(action_permissions[action])
        return super().has_permission(request, view)


class MethodPermissions(BasePermission):
    """Authenticated, holding every permission the view lists for the request's method
    (`method_permissions = {"POST": [...]}`). Anonymous → 401, lacking one → 403."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        return user.has_perms(getattr(view, "method_permissions", {}).get(request.method, []))
