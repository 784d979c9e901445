"""Token authentication with the user's permissions read in the same request (core/api/authentication.py).

Nothing is kept between requests: a revoked token, a deactivated user, a role taken away or a permission taken
from a role is seen by the very next request. The permissions it loads are the ones Django's ModelBackend
computes, and a backend that computes them otherwise turns the shortcut off.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication as DRFTokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient

from core.api.authentication import TokenAuthentication, load_permissions
from core.roles import APPROVER, OPERATOR, VIEWER

URL = "/api/v1/dr/plans"


def client_of(user: User) -> tuple[APIClient, Token]:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client, token


def backend_permissions(user_id: int) -> tuple[set[str], set[str], set[str]]:
    """(user, group, all) permissions as ModelBackend computes them, on a fresh user object."""
    user = User.objects.get(pk=user_id)
    backend = ModelBackend()
    return backend.get_user_permissions(user), backend.get_group_permissions(user), backend.get_all_permissions(user)


def test_a_revoked_token_is_refused_by_the_next_request(users):
    client, token = client_of(users[VIEWER])
    assert client.get(URL).status_code == 200
    token.delete()
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid token."


def test_a_deactivated_user_is_refused_by_the_next_request(users):
    client, _ = client_of(users[VIEWER])
    assert client.get(URL).status_code == 200
    User.objects.filter(pk=users[VIEWER].pk).update(is_active=False)
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "User inactive or deleted."


def test_a_role_taken_away_is_seen_by_the_next_request(users):
    client, _ = client_of(users[VIEWER])
    assert client.get(URL).status_code == 200
    users[VIEWER].groups.clear()
    assert client.get(URL).status_code == 403


def test_a_permission_taken_from_a_role_is_seen_by_the_next_request(users):
    client, _ = client_of(users[VIEWER])
    assert client.get(URL).status_code == 200
    Group.objects.get(name=VIEWER).permissions.remove(
        Permission.objects.get_by_natural_key("view_drplan", "plans", "drplan")
    )
    assert client.get(URL).status_code == 403


def test_a_permission_given_to_the_user_directly_counts(make_user):
    user = make_user("no-role")
    client, _ = client_of(user)
    assert client.get(URL).status_code == 403
    user.user_permissions.add(Permission.objects.get_by_natural_key("view_drplan", "plans", "drplan"))
    assert client.get(URL).status_code == 200


def test_a_superuser_passes_without_loading_permissions(make_user):
    user = make_user("root", is_superuser=True)
    load_permissions(user)
    assert not hasattr(user, "_perm_cache")
    client, _ = client_of(user)
    assert client.get(URL).status_code == 200


@pytest.mark.parametrize("held", [(), (VIEWER,), (OPERATOR, APPROVER)])
def test_the_permissions_loaded_are_model_backends(db, make_user, held):
    """Own permissions and several groups' (overlapping), as ModelBackend's three caches hold them."""
    user = make_user("mixed")
    user.groups.add(*Group.objects.filter(name__in=held))
    user.user_permissions.add(
        Permission.objects.get_by_natural_key("view_auditentry", "core", "auditentry"),
        Permission.objects.get_by_natural_key("view_drplan", "plans", "drplan"),  # also from the roles
    )
    fresh = User.objects.get(pk=user.pk)
    with CaptureQueriesContext(connection) as ctx:
        load_permissions(fresh)
        assert fresh.has_perms(["core.view_auditentry", "plans.view_drplan"])
        assert fresh.has_perm("failover.run_failover") == (OPERATOR in held)
    assert len(ctx.captured_queries) == 1
    own, grouped, every = backend_permissions(user.pk)
    assert (fresh._user_perm_cache, fresh._group_perm_cache, fresh._perm_cache) == (own, grouped, every)
    assert "core.view_auditentry" in own and ("failover.run_failover" in grouped) == (OPERATOR in held)


def test_an_inactive_user_gets_no_permissions(make_user):
    user = make_user("gone", VIEWER, is_active=False)
    load_permissions(user)
    assert not hasattr(user, "_perm_cache")
    assert not user.has_perm("plans.view_drplan")


class OtherPermissions(ModelBackend):
    """A backend that computes permissions its own way (here: none from groups)."""

    def _get_group_permissions(self, user_obj):
        return Permission.objects.none()


@override_settings(AUTHENTICATION_BACKENDS=[f"{__name__}.OtherPermissions"])
def test_a_backend_that_computes_permissions_otherwise_turns_the_shortcut_off(users):
    user = User.objects.get(pk=users[VIEWER].pk)
    load_permissions(user)
    assert not hasattr(user, "_perm_cache")
    client, _ = client_of(users[VIEWER])
    assert client.get(URL).status_code == 403  # the backend's answer, not ModelBackend's


def test_one_query_for_the_token_its_user_and_the_permissions(users):
    client, _ = client_of(users[VIEWER])
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/api/v1/dr/sites").status_code == 200
    sql = [q["sql"] for q in ctx.captured_queries]
    assert "authtoken_token" in sql[0] and "auth_user_groups" in sql[0] and "auth_user_user_permissions" in sql[0]
    assert len(sql) == 2  # that one, and the count of an empty list


@pytest.mark.parametrize("superuser", [False, True])
def test_the_token_and_user_are_the_ones_drf_reads(make_user, superuser):
    """Every column converted as the ORM converts it (dates, booleans), for a user with every field set."""
    user = make_user("full", VIEWER, first_name="Zoë", last_name="O'Brien", email="zoe@example.org")
    User.objects.filter(pk=user.pk).update(last_login=timezone.now(), is_superuser=superuser)
    key = Token.objects.create(user=user).key

    def fields(obj) -> dict:
        values = {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}
        return {name: (type(value), value) for name, value in values.items()}

    ours, theirs = (
        TokenAuthentication().authenticate_credentials(key),
        DRFTokenAuthentication().authenticate_credentials(key),
    )
    assert fields(ours[0]) == fields(theirs[0]) and fields(ours[1]) == fields(theirs[1])
    assert ours[1].user is ours[0] and ours[0].last_login is not None and ours[0].is_superuser is superuser
    assert not ours[0]._state.adding and ours[0]._state.db == "default"
    assert ours[0].has_perm("plans.view_drplan") and ours[0].has_perm("plans.delete_drplan") is superuser
    with pytest.raises(AuthenticationFailed, match="Invalid token"):
        TokenAuthentication().authenticate_credentials(key[:-1] + ("0" if key[-1] != "0" else "1"))
