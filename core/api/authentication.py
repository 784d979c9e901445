"""Token authentication that also reads the user's permissions, for this request only.

Every API view checks the user's role (core/api/permissions.py), which Django's ModelBackend answers from two
queries per request (the user's own permissions, then their groups'), each built by the ORM. Here they come
from one precompiled query right after the token's, and fill the same per-object caches ModelBackend would
fill (`_user_perm_cache`, `_group_perm_cache`, `_perm_cache`) on this request's user object, which is
created by the token query and dropped with the request.

Nothing is kept between requests: a deleted token, a deactivated user or a role taken away is seen by the
next request on any node, exactly as before. The values are ModelBackend's own definitions (the user's
permissions; the permissions of the groups they belong to); a backend that computes them otherwise (a
ModelBackend subclass overriding them) turns this off and leaves everything to the backends.
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connections, router
from django.utils.module_loading import import_string
from rest_framework import authentication

_USER, _GROUP = 0, 1


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's TokenAuthentication (same header, same errors, (user, token) as the result), and the
    user's permissions loaded with one more query instead of two (load_permissions)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        user, token = super().authenticate_credentials(key)
        load_permissions(user)
        return user, token


def load_permissions(user: Any) -> None:
    """Fill ModelBackend's permission caches on `user` (a fresh instance, for one request) with one query.

    Does nothing where ModelBackend would not read them (an inactive user; a superuser, who holds every
    permission without them) or where a configured backend computes permissions its own way."""
    if not user.is_active or user.is_superuser:
        return
    if not _model_backend_permissions(tuple(settings.AUTHENTICATION_BACKENDS)):
        return
    own: set[str] = set()
    grouped: set[str] = set()
    connection = connections[router.db_for_read(Permission)]
    with connection.cursor() as cursor:
        sql = _SQL.get(connection.vendor)
        if sql is None:
            sql = _SQL.setdefault(connection.vendor, _permissions_sql(connection.ops.quote_name))
        cursor.execute(sql, [user.pk, user.pk])
        for source, app_label, codename in cursor.fetchall():
            (own if source == _USER else grouped).add(f"{app_label}.{codename}")
    user._user_perm_cache = own
    user._group_perm_cache = grouped
    user._perm_cache = own | grouped


@functools.cache
def _model_backend_permissions(backends: tuple[str, ...]) -> bool:
    """True when every backend that reads ModelBackend's caches is ModelBackend itself."""
    classes = [import_string(path) for path in backends]
    return any(cls is ModelBackend for cls in classes) and not any(
        issubclass(cls, ModelBackend) and cls is not ModelBackend for cls in classes
    )


_SQL: dict[str, str] = {}  # database vendor → _permissions_sql() (only the quoting differs)


def _permissions_sql(quote: Any) -> str:
    """ModelBackend's two permission queries as one: (source, app_label, codename) rows, source 0 for the
    user's own permissions (`user.user_permissions`), 1 for their groups' (`Permission.objects.filter(
    group__in=user.groups.all())`). Names come from the models, so a custom user model's tables work."""
    user_model = get_user_model()
    user_perms = user_model._meta.get_field("user_permissions").remote_field.through._meta
    user_groups = user_model._meta.get_field("groups").remote_field.through._meta
    group_perms = Group._meta.get_field("permissions").remote_field.through._meta
    permission, content_type = Permission._meta, ContentType._meta

    def table(meta: Any) -> str:
        return quote(meta.db_table)

    def column(meta: Any, model: Any) -> str:
        """The through table's column pointing at `model`."""
        return quote(next(f.column for f in meta.fields if f.related_model is model))

    def perm_rows(source: int, through: str, permission_column: str) -> str:
        return (
            f"SELECT {source}, ct.{quote('app_label')}, p.{quote('codename')} "  # noqa: S608 (model names; values are parameters)
            f"FROM {through} "
            f"INNER JOIN {table(permission)} p ON p.{quote(permission.pk.column)} = {permission_column} "
            f"INNER JOIN {table(content_type)} ct ON ct.{quote(content_type.pk.column)} = "
            f"p.{quote(permission.get_field('content_type').column)} "
        )

    return (
        perm_rows(_USER, f"{table(user_perms)} up", f"up.{column(user_perms, Permission)}")
        + f"WHERE up.{column(user_perms, user_model)} = %s "
        + "UNION ALL "
        + perm_rows(
            _GROUP,
            f"{table(user_groups)} ug INNER JOIN {table(group_perms)} gp "
            f"ON gp.{column(group_perms, Group)} = ug.{column(user_groups, Group)}",
            f"gp.{column(group_perms, Permission)}",
        )
        + f"WHERE ug.{column(user_groups, user_model)} = %s"
    )
