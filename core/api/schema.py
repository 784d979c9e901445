"""The OpenAPI description of the API: the project's AutoSchema (REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]).

Every operation lists every status code it can answer. The error responses are added here, once,
from what the view is made of, so a view declares only what is particular to it:

    400  the operation reads a request body or query parameters (validation_error, malformed_request)
    401  the view authenticates (no or an invalid token)
    403  the view checks permissions, or accepts a session cookie on an unsafe method (CSRF)
    404  the path names a resource (`{id}` …), or the list is paginated (a page past the end)
    409  an unsafe method of a view that is not open to everybody (the state forbids it: already
         exists, still referenced, not a draft …)
    413  the operation takes a request body (DRPLAN_MAX_REQUEST_BYTES)
    415  the operation takes a request body in a content type the view does not parse
    429  the view has throttles

Each is the one error shape of core/api/errors.py, the `Error` component. A view that answers a
code for a reason of its own gives it with a description, e.g.
`responses={200: VersionDetailSerializer, 409: OpenApiResponse(description="Only drafts can be changed.")}`;
a response of 400 or more without a body gets the `Error` body.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import relations, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny

from core.api.strict import decimal_pattern

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
NOT_ONLY_WHITESPACE = r"\S"  # DRF trims text; a required text that is only whitespace is blank

ERROR_DESCRIPTIONS = {
    400: "Invalid input: `validation_error` with the offending inputs in `fields`, or `malformed_request` "
    "(a body that does not parse).",
    401: "Not authenticated: no credentials (`not_authenticated`) or an invalid token (`authentication_failed`).",
    403: "Authenticated, but the role lacks the permission this needs, or a rule of the domain forbids it "
    "to this user (`permission_denied`).",
    404: "No such resource (`not_found`): an unknown id or natural key, or a page past the end.",
    409: "The current state forbids it (`conflict` or a more specific code): the object already exists, is "
    "still referenced, or is not in a state that allows this.",
    413: "The request body is larger than the server accepts (`payload_too_large`).",
    415: "The request body's content type is not one this operation reads (`unsupported_media_type`).",
    429: "Too many requests (`throttled`); retry after the number of seconds in the Retry-After header.",
}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Machine-readable: validation_error, malformed_request, not_authenticated, "
        "authentication_failed, permission_denied, not_found, conflict, payload_too_large, throttled, "
        "or a more specific code of the rule broken."
    )
    message = serializers.CharField(help_text="For people: names the field or the rule broken.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Offending input (dotted path for nested input) -> its messages; empty when the error "
        "is not about one input.",
    )


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API (core/api/errors.py)."""

    error = ErrorDetailSerializer()


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema plus the standard error responses (see the module docstring), and
    field schemas that say what the server really takes (see `_map_serializer_field`)."""

    def _map_serializer_field(
        self, field: serializers.Field, direction: str, bypass_extensions: bool = False
    ) -> dict[str, Any] | None:
        """drf-spectacular's mapping, corrected where DRF takes something else than it says:

        - a decimal is the exact text core.api.strict accepts (digits, its places and range);
        - a required text is trimmed, so it needs a character other than whitespace;
        - a nullable relation also takes "" (DRF reads it as null);
        - a text that may be blank is "" or its format (an e-mail address, a URL).
        """
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if not schema or "$ref" in schema:
            return schema
        if isinstance(field, serializers.DecimalField) and schema.get("type") == "string":
            schema["pattern"] = decimal_pattern(field)
        elif isinstance(field, relations.RelatedField) and field.allow_null:
            schema.pop("minLength", None)
            if schema.get("pattern") == NOT_ONLY_WHITESPACE:
                del schema["pattern"]
        elif isinstance(field, serializers.CharField) and direction == "request":
            trimmed_required = field.trim_whitespace and not field.allow_blank
            has_regex = any(isinstance(v, RegexValidator) for v in field.validators)
            if trimmed_required and not has_regex and not {"pattern", "format", "enum"} & set(schema):
                schema["pattern"] = NOT_ONLY_WHITESPACE
        if isinstance(field, serializers.CharField) and field.allow_blank and "format" in schema:
            text = {key: schema.pop(key) for key in ("type", "format", "maxLength") if key in schema}
            if field.max_length is not None:
                text["maxLength"] = field.max_length  # the validators are not applied to an anyOf
            schema["anyOf"] = [text, {"type": "string", "enum": [""]}]
        return schema

    def _map_basic_serializer(self, serializer: serializers.Serializer, direction: str) -> dict[str, Any]:
        """A serializer with `closed_schema = True` takes no keys but its fields (additionalProperties: false):
        for bodies whose other keys change their meaning."""
        schema = super()._map_basic_serializer(serializer, direction)
        if getattr(serializer, "closed_schema", False):
            schema["additionalProperties"] = False
        return schema

    def _resolve_path_parameters(self, variables: list[str]) -> list[dict[str, Any]]:
        """A view's `lookup_description` describes its lookup variable (`{id}` for the pk)."""
        parameters = super()._resolve_path_parameters(variables)
        description = getattr(self.view, "lookup_description", "")
        lookup = getattr(self.view, "lookup_url_kwarg", None) or getattr(self.view, "lookup_field", None)
        names = {lookup, "id"} if lookup == "pk" else {lookup}
        for parameter in parameters:
            if description and parameter["name"] in names:
                parameter["description"] = description
        return parameters

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code, response in list(responses.items()):
            if int(code) >= 400 and "content" not in response:  # declared with a description only
                description = response.get("description") or ERROR_DESCRIPTIONS.get(int(code), "")
                responses[code] = self._error_response(int(code), description)
        for code in self.error_status_codes():
            responses.setdefault(str(code), self._error_response(code, ERROR_DESCRIPTIONS[code]))
        return dict(sorted(responses.items()))

    def _error_response(self, code: int, description: str) -> dict[str, Any]:
        return self._get_response_for_code(
            OpenApiResponse(ErrorSerializer, description=description), str(code), media_types=["application/json"]
        )

    def error_status_codes(self) -> set[int]:
        """The error codes every operation of this kind can answer, from the view's make-up."""
        view = self.view
        authenticators = view.get_authenticators() if hasattr(view, "get_authenticators") else []
        permissions = view.get_permissions() if hasattr(view, "get_permissions") else []
        open_to_all = all(isinstance(p, AllowAny) for p in permissions)
        takes_body = self.method in ("POST", "PUT", "PATCH")
        codes: set[int] = set()
        if takes_body or self._has_query_parameters():
            codes.add(400)
        if authenticators:
            codes.add(401)
        if not open_to_all or (
            self.method in UNSAFE_METHODS and any(isinstance(a, SessionAuthentication) for a in authenticators)
        ):
            codes.add(403)
        if "{" in self.path or self._is_paginated_list():
            codes.add(404)
        if self.method in UNSAFE_METHODS and not open_to_all:
            codes.add(409)
        if takes_body:
            codes.update((413, 415))
        if hasattr(view, "get_throttles") and view.get_throttles():
            codes.add(429)
        return codes

    def _has_query_parameters(self) -> bool:
        return any(p.get("in") == "query" for p in self._get_parameters())

    def _is_paginated_list(self) -> bool:
        return self.method == "GET" and self._get_paginator() is not None and self._is_list_view()
