"""Brute-force protection of the two ways to sign in with a password: the sign-in page (/admin/login/) and
POST /api/v1/dr/auth/token. After DRPLAN_LOGIN_FAILURE_LIMIT failures for one username from one address,
that pair is refused, even with the right password, until DRPLAN_LOGIN_LOCKOUT_SECONDS have passed since the
last failure. Other users and other addresses are not affected; a success before the limit starts over."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from axes.models import AccessAttempt
from channels.testing import HttpCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

from conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/dr/auth/token"
SIGN_IN = "/admin/login/"
HERE, ELSEWHERE = "10.0.0.1", "10.0.0.2"


@pytest.fixture
def limit() -> int:
    return settings.AXES_FAILURE_LIMIT


def token(username: str, password: str, address: str = HERE):
    return Client(REMOTE_ADDR=address).post(TOKEN, {"username": username, "password": password})


def sign_in(username: str, password: str, address: str = HERE) -> tuple[Client, object]:
    client = Client(REMOTE_ADDR=address)
    response = client.post(SIGN_IN, {"username": username, "password": password, "next": "/admin/"})
    return client, response


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_the_limit_and_cool_off_come_from_the_environment_with_sane_defaults() -> None:
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


# --- the API token endpoint --------------------------------------------------------------------------


def test_token_endpoint_locks_the_username_and_address_after_the_limit(users: dict[str, User], limit: int) -> None:
    for _ in range(limit - 1):
        response = token("approver", "wrong")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"

    locked = token("approver", "wrong")
    assert locked.status_code == 429
    assert locked.json() == {
        "error": {
            "code": "locked_out",
            "message": f"Too many failed sign-in attempts for 'approver' from this address ({limit}); "
            "try again in 15 minutes.",
            "fields": {},
        }
    }
    assert 890 <= int(locked["Retry-After"]) <= 900

    right_password = token("approver", TEST_PASSWORD)
    assert right_password.status_code == 429
    assert right_password.json()["error"]["code"] == "locked_out"
    assert not Token.objects.filter(user=users["approver"]).exists()


def test_token_lockout_spares_other_users_and_other_addresses(users: dict[str, User], limit: int) -> None:
    for _ in range(limit):
        token("approver", "wrong")
    assert token("approver", TEST_PASSWORD).status_code == 429
    assert token("operator", TEST_PASSWORD).status_code == 200
    assert token("approver", TEST_PASSWORD, address=ELSEWHERE).status_code == 200


def test_a_token_success_before_the_limit_starts_the_count_over(users: dict[str, User], limit: int) -> None:
    for _ in range(limit - 1):
        token("approver", "wrong")
    assert token("approver", TEST_PASSWORD).status_code == 200
    for _ in range(limit - 1):
        assert token("approver", "wrong").status_code == 400
    assert token("approver", TEST_PASSWORD).status_code == 200


def test_attempts_while_locked_do_not_extend_the_cool_off_which_then_ends(users: dict[str, User], limit: int) -> None:
    for _ in range(limit):
        token("approver", "wrong")
    first = AccessAttempt.objects.get(username="approver")
    assert token("approver", "wrong").status_code == 429
    assert AccessAttempt.objects.get(pk=first.pk).attempt_time == first.attempt_time
    AccessAttempt.objects.update(attempt_time=first.attempt_time - settings.AXES_COOLOFF_TIME)
    assert token("approver", TEST_PASSWORD).status_code == 200


@pytest.mark.django_db(transaction=True)  # the ASGI handler runs the view on a thread of its own
def test_token_lockout_through_the_asgi_server_path(users: dict[str, User], limit: int) -> None:
    """daphne runs the middleware chain asynchronously: the lockout answer must be the same there."""
    from drplan.asgi import application

    async def post(password: str) -> dict:
        body = f"username=approver&password={password}".encode()
        headers = [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
            (b"host", b"127.0.0.1"),
        ]
        communicator = HttpCommunicator(application, "POST", TOKEN, body=body, headers=headers)
        return await communicator.get_response(timeout=10)

    for _ in range(limit):
        async_to_sync(post)("wrong")
    response = async_to_sync(post)(TEST_PASSWORD)
    assert response["status"] == 429
    assert json.loads(response["body"])["error"]["code"] == "locked_out"
    assert 0 < int(dict(response["headers"])[b"Retry-After"]) <= 900


# --- the sign-in page --------------------------------------------------------------------------------


def test_sign_in_page_locks_the_username_and_address_with_a_clear_message(users: dict[str, User], limit: int) -> None:
    for _ in range(limit - 1):
        client, response = sign_in("operator", "wrong")
        assert response.status_code == 200  # the form again, with Django's "enter a correct username" error
        assert not signed_in(client)

    client, response = sign_in("operator", "wrong")
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many failed sign-in attempts for &#x27;operator&#x27; from this address" in html
    assert "try again in 15 minutes" in html
    assert 'href="/admin/login/"' in html
    assert 890 <= int(response["Retry-After"]) <= 900

    client, response = sign_in("operator", TEST_PASSWORD)
    assert response.status_code == 429
    assert not signed_in(client)


def test_sign_in_lockout_spares_other_users_and_addresses_and_a_success_starts_over(
    users: dict[str, User], limit: int
) -> None:
    for _ in range(limit):
        sign_in("operator", "wrong")
    client, response = sign_in("viewer", TEST_PASSWORD)
    assert response.status_code == 302 and signed_in(client)
    client, response = sign_in("operator", TEST_PASSWORD, address=ELSEWHERE)
    assert response.status_code == 302 and signed_in(client)

    for _ in range(limit - 1):
        sign_in("viewer", "wrong")
    client, response = sign_in("viewer", TEST_PASSWORD)
    assert response.status_code == 302 and signed_in(client)
    for _ in range(limit - 1):
        assert sign_in("viewer", "wrong")[1].status_code == 200
    assert not AccessAttempt.objects.filter(username="viewer", failures_since_start__gte=limit).exists()


def test_failures_on_the_page_and_the_api_add_up(users: dict[str, User], limit: int) -> None:
    for _ in range(limit - 1):
        sign_in("operator", "wrong")
    assert token("operator", "wrong").status_code == 429
    assert sign_in("operator", TEST_PASSWORD)[1].status_code == 429


def test_a_check_without_a_request_is_left_to_the_password_backend(users: dict[str, User]) -> None:
    """In-process checks (Django's test client, scripts) have no address to count: not locked, not counted."""
    from django.contrib.auth import authenticate

    assert authenticate(username="viewer", password=TEST_PASSWORD) == users["viewer"]
    assert authenticate(username="viewer", password="wrong") is None
    assert not AccessAttempt.objects.exists()
