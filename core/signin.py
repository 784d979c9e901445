"""Password sign-in and its brute-force protection (django-axes; settings in drplan/settings.py).

django-axes counts the failures of `django.contrib.auth.authenticate` per username and address, refuses a
locked pair in its authentication backend and flags the request; its middleware then answers with
`lockout_response`: the API's error shape (429, Retry-After) under /api/, a page that says why elsewhere.
"""

from __future__ import annotations

import math
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_client_ip_address
from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from core.api.errors import error_body


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' check, first in AUTHENTICATION_BACKENDS: refuses a locked-out username and address.

    Every sign-in over the network passes its request to authenticate() (the sign-in page, the token
    endpoint); a check without one comes from inside the process (Django's test client, a script) and has no
    address to count against, so it is left to the next backend instead of failing."""

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


def _remaining_seconds(username: str | None, address: str | None) -> int:
    """Seconds until the pair's lockout ends: the cool-off counts from its last counted failure."""
    cool_off = settings.AXES_COOLOFF_TIME
    last = (
        AccessAttempt.objects.filter(username=username, ip_address=address)
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    if last is None:
        return math.ceil(cool_off.total_seconds())
    return max(1, math.ceil((last + cool_off - timezone.now()).total_seconds()))


def _in_words(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def lockout_response(request: HttpRequest, *args: Any) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE. django-axes passes (response, credentials) or, on its asynchronous path,
    (credentials, None): the username is read from the request, where its handler put the credentials."""
    credentials = getattr(request, "axes_credentials", None) or {}
    username = credentials.get(settings.AXES_USERNAME_FORM_FIELD) or request.POST.get("username") or ""
    seconds = _remaining_seconds(username, getattr(request, "axes_ip_address", None))
    message = (
        f"Too many failed sign-in attempts for '{username}' from this address ({settings.AXES_FAILURE_LIMIT}); "
        f"try again in {_in_words(seconds)}."
    )
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(error_body("locked_out", message), status=429)
    else:
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(seconds)
    return response


def reset_failures(request: HttpRequest, username: str) -> None:
    """Start the count over after a successful sign-in that does not go through django.contrib.auth.login
    (which does it for the sign-in page): the API token endpoint."""
    reset(ip=get_client_ip_address(request), username=username)
