"""One JSON error shape for the whole API.

    {"error": {"code": "validation_error",
               "message": "name: This field is required.",
               "fields": {"name": ["This field is required."]}}}

`code` is machine-readable; `message` is for people and names the field or rule;
`fields` maps each offending input (dotted path for nested input) to its messages.

Status: 400 for input that is invalid in itself; 409 (`conflict`) for valid input that clashes with
the current state, including a request whose only fault is a value that must be unique and is taken.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.exceptions import DomainError

_CODES = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into {"dotted.path": ["message", ...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors" and prefix == "":
                path = "non_field_errors"
            out.update(_flatten(value, path))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                out.update(_flatten(item, f"{prefix}[{index}]" if prefix else f"[{index}]"))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return {k: v for k, v in out.items() if v}


def _message_from_fields(fields: dict[str, list[str]]) -> str:
    parts = []
    for path, messages in fields.items():
        text = " ".join(messages)
        parts.append(text if path == "non_field_errors" else f"{path}: {text}")
    return "; ".join(parts) or "Invalid input."


def _only_uniqueness(exc: exceptions.ValidationError) -> bool:
    """Every error is a unique (or unique-together) validator's: "already exists"."""
    codes = list(_flatten(exc.get_codes()).values())
    return bool(codes) and all(code == "unique" for leaf in codes for code in leaf)


def _protected_message(exc: ProtectedError | RestrictedError) -> str:
    related = sorted({f"{obj._meta.verbose_name} '{obj}'" for obj in list(exc.args[1])[:5]})
    return "Cannot delete: still referenced by " + ", ".join(related) + "."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        fields = {exc.field: [exc.message]} if exc.field else {}
        return Response(error_body(exc.code, exc.message, fields), status=exc.status_code)
    if isinstance(exc, (ProtectedError, RestrictedError)):
        return Response(error_body("conflict", _protected_message(exc)), status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = _message_from_fields(fields)
        if _only_uniqueness(exc):  # valid input that clashes with what exists: the state, not the request
            code, response.status_code = "conflict", status.HTTP_409_CONFLICT
    else:
        fields = {}
        message = str(exc.detail) if hasattr(exc, "detail") else str(exc)
    response.data = error_body(code, message, fields)
    return response


def json_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 handler: the error shape under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", f"No resource at {request.path}."), status=404)
    return defaults.page_not_found(request, exception)


def json_500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Internal error; it has been logged."), status=500)
    return defaults.server_error(request)
