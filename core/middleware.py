"""Request plumbing: request ids and the request-size limit."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.context import new_request_id, request_id_var

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    """Give every request an id (or keep a safe client-sent X-Request-ID), echo it back,
    and refuse bodies over DRPLAN_MAX_REQUEST_BYTES with 413 before anything parses them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        sent = request.headers.get("X-Request-ID", "")
        request_id = sent if _SAFE_REQUEST_ID.match(sent) else new_request_id()
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self._check_size(request) or self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response

    @staticmethod
    def _check_size(request: HttpRequest) -> HttpResponse | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.DRPLAN_MAX_REQUEST_BYTES
        if length > limit:
            return JsonResponse(
                {
                    "error": {
                        "code": "payload_too_large",
                        "message": f"Request body is {length} bytes; the limit is {limit} bytes.",
                        "fields": {},
                    }
                },
                status=413,
            )
        return None
