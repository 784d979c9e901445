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

from django.core.exceptions import FieldDoesNotExist
from django.core.validators import RegexValidator
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import relations, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny

from core.api.strict import decimal_pattern
from core.validators import NATURAL_KEY_PATTERN, validate_natural_key

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# DRF trims text with str.strip(), so a required text needs a character Python does not count as
# whitespace (ECMA's \s differs: it lacks \x1c-\x1f and \x85, and has \ufeff).
NOT_ONLY_WHITESPACE = "[^" + "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x3001)) if c.isspace()) + "]"

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
        - a text that may be blank is "" or its format (an e-mail address, a URL);
        - a nested list says how many items it takes (min_length / allow_empty, max_length).
        """
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if not schema or "$ref" in schema:
            return schema
        if isinstance(field, serializers.ListSerializer) and schema.get("type") == "array":
            if field.min_length is not None or not field.allow_empty:
                schema["minItems"] = max(field.min_length or 0, 0 if field.allow_empty else 1)
            if field.max_length is not None:
                schema["maxItems"] = field.max_length
        if isinstance(field, serializers.ChoiceField) and field.read_only and "" not in schema.get("enum", [""]):
            model_field = _model_field(field)
            if model_field is not None and model_field.blank:  # DRF drops allow_blank on read-only fields
                schema["enum"].append("")
        if validate_natural_key in getattr(field, "validators", ()):
            schema["pattern"] = NATURAL_KEY_PATTERN  # a slug that is not all digits (core.lookups)
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

    def _get_request_body(self, direction: str = "request") -> dict[str, Any] | None:
        """A view lists in `body_required_actions` the actions whose body drf-spectacular cannot tell is
        required (a oneOf, or a choice of media types)."""
        body = super()._get_request_body(direction)
        if body and getattr(self.view, "action", None) in getattr(self.view, "body_required_actions", ()):
            body["required"] = True
        return body

    def get_auth(self) -> list[dict[str, Any]]:
        """Credentials are optional (`{}`) on a view anybody may use, such as POST /auth/token
        (DRF's token view has no permission classes at all, which drf-spectacular reads as "required")."""
        auths = super().get_auth()
        if auths and {} not in auths and self._open_to_all():
            auths.append({})
        return auths

    def _open_to_all(self) -> bool:
        permissions = self.view.get_permissions() if hasattr(self.view, "get_permissions") else []
        return all(isinstance(p, AllowAny) for p in permissions)

    def _get_parameters(self) -> list[dict[str, Any]]:
        """An empty query parameter is the same as leaving it out (django-filter's rule, which the
        API follows everywhere): each one's schema also takes ""."""
        parameters = super()._get_parameters()
        for parameter in parameters:
            if parameter.get("in") == "query":
                parameter["schema"] = _or_empty(parameter["schema"])
        return parameters

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
        open_to_all = self._open_to_all()
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
        return any(p.get("in") == "query" for p in super()._get_parameters())

    def _is_paginated_list(self) -> bool:
        return self.method == "GET" and self._get_paginator() is not None and self._is_list_view()


def _model_field(field: serializers.Field) -> Any:
    """The model field behind a ModelSerializer field with a plain `source`, if any."""
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if model is None or "." in field.source or field.source == "*":
        return None
    try:
        return model._meta.get_field(field.source)
    except FieldDoesNotExist:  # a property or a method: no model field
        return None


def _or_empty(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or the empty string."""
    if schema.get("type") == "string" and not {"enum", "format", "pattern", "minLength"} & set(schema):
        return schema  # any text already
    if schema.get("type") == "string" and "enum" in schema and set(schema) <= {"type", "enum", "description"}:
        return {**schema, "enum": [*schema["enum"], ""]} if "" not in schema["enum"] else schema
    if schema.get("type") == "array":
        return schema  # ?status= is one empty item, which is not one of the choices
    return {"anyOf": [schema, {"type": "string", "enum": [""]}]}
