"""Token authentication that reads the token, its user and the user's permissions in one query.

DRF's TokenAuthentication reads the token and its user (one query built by the ORM); then every API view
checks the user's role (core/api/permissions.py), which Django's ModelBackend answers from two more queries
(the user's own permissions, then their groups'). Here the three come from one SQL statement, written once
per database vendor, and the permissions fill the same per-object caches ModelBackend would fill
(`_user_perm_cache`, `_group_perm_cache`, `_perm_cache`) on this request's user object, which the statement
creates and the request drops.

Nothing is kept between requests: a deleted token, a deactivated user or a role taken away is seen by the
next request on any node, exactly as before. The values are ModelBackend's own definitions (the user's
permissions; the permissions of the groups they belong to); a backend that computes them otherwise (a
ModelBackend subclass overriding them) turns the caches off and leaves everything to the backends.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connections, router
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

_TOKEN, _USER_PERMISSION, _GROUP_PERMISSION = -1, 0, 1  # the first column of each row: what the row is


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's TokenAuthentication: the same header, the same errors, (user, token) as the result; with the
    token, its user and the user's permissions read by one statement."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        if self.get_model() is not Token:
            return super().authenticate_credentials(key)
        connection = connections[router.db_for_read(Token)]
        statements = _STATEMENTS.get(connection.vendor)
        if statements is None:
            statements = _STATEMENTS.setdefault(connection.vendor, _Statements(connection.ops.quote_name))
        with connection.cursor() as cursor:
            cursor.execute(statements.token, [key, key, key])
            rows = cursor.fetchall()
        token_row = next((row[3:] for row in rows if row[0] == _TOKEN), None)
        if token_row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        split = len(statements.token_fields)
        token = Token.from_db(
            connection.alias, statements.token_fields, _converted(connection, Token, token_row[:split])
        )
        user_model = get_user_model()
        user = user_model.from_db(
            connection.alias, statements.user_fields, _converted(connection, user_model, token_row[split:])
        )
        token.user = user
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        _fill_permission_caches(user, [row[:3] for row in rows if row[0] != _TOKEN])
        return user, token


def load_permissions(user: Any) -> None:
    """Fill ModelBackend's permission caches on `user` (a fresh instance, for one request) with one query."""
    connection = connections[router.db_for_read(Permission)]
    statements = _STATEMENTS.get(connection.vendor)
    if statements is None:
        statements = _STATEMENTS.setdefault(connection.vendor, _Statements(connection.ops.quote_name))
    with connection.cursor() as cursor:
        cursor.execute(statements.permissions, [user.pk, user.pk])
        _fill_permission_caches(user, cursor.fetchall())


def _fill_permission_caches(user: Any, rows: list[tuple[int, str, str]]) -> None:
    """ModelBackend's caches from (source, app_label, codename) rows; nothing where ModelBackend would not
    read them (an inactive user; a superuser, who holds every permission without them) or where a configured
    backend computes permissions its own way."""
    if not user.is_active or user.is_superuser:
        return
    if not _model_backend_permissions(tuple(settings.AUTHENTICATION_BACKENDS)):
        return
    own = {f"{app_label}.{codename}" for source, app_label, codename in rows if source == _USER_PERMISSION}
    grouped = {f"{app_label}.{codename}" for source, app_label, codename in rows if source == _GROUP_PERMISSION}
    user._user_perm_cache = own
    user._group_perm_cache = grouped
    user._perm_cache = own | grouped


def _converted(connection: Any, model: Any, values: tuple) -> list[Any]:
    """Column values as the ORM returns them for `model`'s concrete fields: each through the converters the
    ORM's compiler applies to the field's column (SQLite's text dates and 0/1 booleans, a field's
    from_db_value)."""
    out = []
    for field, value in zip(model._meta.concrete_fields, values, strict=True):
        col = field.get_col(model._meta.db_table)
        for convert in (*connection.ops.get_db_converters(col), *col.get_db_converters(connection)):
            value = convert(value, col, connection)
        out.append(value)
    return out


@functools.cache
def _model_backend_permissions(backends: tuple[str, ...]) -> bool:
    """True when every backend that reads ModelBackend's caches is ModelBackend itself."""
    classes = [import_string(path) for path in backends]
    return any(cls is ModelBackend for cls in classes) and not any(
        issubclass(cls, ModelBackend) and cls is not ModelBackend for cls in classes
    )


class _Statements:
    """The SQL, from the models' table and column names (a custom user model's tables work).

    `permissions`: ModelBackend's two permission queries as one, (source, app_label, codename) rows: source 0
    for the user's own permissions (`user.user_permissions`), 1 for their groups' (`Permission.objects.filter(
    group__in=user.groups.all())`); parameters: the user's id twice.
    `token`: a row (-1, NULL, NULL, token columns, user columns) for the token and its user, then the same
    permission rows (NULL in the token and user columns); parameters: the key three times.
    """

    def __init__(self, quote: Callable[[str], str]) -> None:
        user_model = get_user_model()
        user_perms = user_model._meta.get_field("user_permissions").remote_field.through._meta
        user_groups = user_model._meta.get_field("groups").remote_field.through._meta
        group_perms = Group._meta.get_field("permissions").remote_field.through._meta
        permission, content_type = Permission._meta, ContentType._meta
        token, user = Token._meta, user_model._meta
        self.token_fields = [f.attname for f in token.concrete_fields]
        self.user_fields = [f.attname for f in user.concrete_fields]

        def column(meta: Any, model: Any) -> str:
            """The column of `meta`'s table that points at `model`."""
            return quote(next(f.column for f in meta.fields if f.related_model is model))

        def permission_rows(source: int, padding: str, start: str, user_column: str) -> str:
            """SELECT the permissions reached from `start` (joins ending at the user-permission or the
            group-permission table aliased `x`), for the user whose id is `user_column`."""
            return (
                f"SELECT {source}, ct.{quote('app_label')}, p.{quote('codename')}{padding} FROM {start} "  # noqa: S608 (model names; values are parameters)
                f"INNER JOIN {quote(permission.db_table)} p ON p.{quote(permission.pk.column)} = "
                f"x.{column(user_perms if source == _USER_PERMISSION else group_perms, Permission)} "
                f"INNER JOIN {quote(content_type.db_table)} ct ON ct.{quote(content_type.pk.column)} = "
                f"p.{quote(permission.get_field('content_type').column)} WHERE {user_column} = %s"
            )

        def permissions(padding: str, own_start: str, own_user: str, group_start: str, group_user: str) -> str:
            return (
                permission_rows(_USER_PERMISSION, padding, own_start, own_user)
                + " UNION ALL "
                + permission_rows(_GROUP_PERMISSION, padding, group_start, group_user)
            )

        groups = (
            f"{quote(user_groups.db_table)} ug INNER JOIN {quote(group_perms.db_table)} x "
            f"ON x.{column(group_perms, Group)} = ug.{column(user_groups, Group)}"
        )
        self.permissions = permissions(
            "",
            f"{quote(user_perms.db_table)} x",
            f"x.{column(user_perms, user_model)}",
            groups,
            f"ug.{column(user_groups, user_model)}",
        )

        token_user = quote(token.get_field("user").column)
        key = quote(token.pk.column)
        columns = [f"t.{quote(f.column)}" for f in token.concrete_fields]
        columns += [f"u.{quote(f.column)}" for f in user.concrete_fields]
        padding = ", NULL" * len(columns)
        self.token = (
            f"SELECT {_TOKEN}, NULL, NULL, {', '.join(columns)} FROM {quote(token.db_table)} t "  # noqa: S608 (model names; values are parameters)
            f"INNER JOIN {quote(user.db_table)} u ON u.{quote(user.pk.column)} = t.{token_user} WHERE t.{key} = %s "
            "UNION ALL "
            + permissions(
                padding,
                f"{quote(token.db_table)} t INNER JOIN {quote(user_perms.db_table)} x "
                f"ON x.{column(user_perms, user_model)} = t.{token_user}",
                f"t.{key}",
                f"{quote(token.db_table)} t INNER JOIN {quote(user_groups.db_table)} ug "
                f"ON ug.{column(user_groups, user_model)} = t.{token_user} INNER JOIN {quote(group_perms.db_table)} x "
                f"ON x.{column(group_perms, Group)} = ug.{column(user_groups, Group)}",
                f"t.{key}",
            )
        )


_STATEMENTS: dict[str, _Statements] = {}  # database vendor → its statements (only the quoting differs)
