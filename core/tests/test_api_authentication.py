"""Token authentication keeps nothing between requests: a revoked token, a deactivated user, a role taken away or a
permission taken from a role is seen by the very next request (issue 6's rules, checked again for issue 15's
work on the plan list's speed)."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.roles import VIEWER

URL = "/api/v1/dr/plans"


def client_of(user: User) -> tuple[APIClient, Token]:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client, token


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


def test_a_superuser_passes_without_a_role(make_user):
    client, _ = client_of(make_user("root", is_superuser=True))
    assert client.get(URL).status_code == 200
