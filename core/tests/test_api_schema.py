"""The OpenAPI schema documents every error an operation can answer, in the one error shape,
and list pagination rejects what its parameters' schema rejects."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from django.urls import path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from core.api.errors import error_body
from core.api.schema import NOT_ONLY_WHITESPACE
from core.validators import NATURAL_KEY_PATTERN


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), url, op) for url, item in schema["paths"].items() for method, op in item.items()]


def _error_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The Error component as a standalone JSON Schema (its $refs resolved against the components)."""
    return {"$ref": "#/components/schemas/Error", "components": schema["components"]}


def test_every_error_response_is_the_error_component(schema):
    errors = [
        (method, url, code, response)
        for method, url, op in _operations(schema)
        for code, response in op["responses"].items()
        if int(code) >= 400
    ]
    assert len(errors) > 400
    for method, url, code, response in errors:
        assert response["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}, (
            method,
            url,
            code,
        )
        assert response["description"], (method, url, code)


def test_the_error_component_describes_what_the_handler_writes(schema):
    validator = jsonschema.Draft202012Validator(_error_schema(schema))
    validator.validate(error_body("validation_error", "name: required.", {"name": ["required."]}))
    validator.validate(error_body("not_found", "Not found."))
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"detail": "Not found."})  # DRF's own shape is not ours
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"error": {"code": "x", "message": "y", "fields": {"name": "not a list"}}})


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("GET", "/api/v1/dr/plans/", {"200", "400", "401", "403", "404"}),  # filters, pagination
        ("POST", "/api/v1/dr/plans/", {"201", "400", "401", "403", "409", "413", "415"}),
        ("GET", "/api/v1/dr/plans/{id}/", {"200", "401", "403", "404"}),
        ("DELETE", "/api/v1/dr/plans/{id}/", {"204", "401", "403", "404", "409"}),
        ("GET", "/api/v1/dr/test/compliance/", {"200", "401", "403"}),
        ("GET", "/api/v1/dr/health/", {"200"}),  # public, no authentication
    ],
)
def test_status_codes_follow_from_what_the_operation_is(schema, method, url, expected):
    assert set(schema["paths"][url][method.lower()]["responses"]) == expected


def test_a_path_that_accepts_id_or_natural_key_says_so(schema):
    (parameter,) = schema["paths"]["/api/v1/dr/plans/{id}/"]["get"]["parameters"]
    assert parameter["schema"] == {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"}
    assert parameter["description"] == "Numeric id or plan_id."


_OK = inline_serializer("Ok", {"ok": serializers.BooleanField()})


class _Throttled(APIView):
    throttle_classes = [AnonRateThrottle]
    permission_classes = [AllowAny]

    @extend_schema(responses=_OK)
    def post(self, request: Request) -> Response:
        return Response({"ok": True})


class _Open(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(responses=_OK)
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


def test_a_view_with_throttles_documents_429_and_an_open_one_no_auth_errors():
    generated = SchemaGenerator(
        patterns=[path("throttled", _Throttled.as_view()), path("open", _Open.as_view())]
    ).get_schema(request=None, public=True)
    throttled = generated["paths"]["/throttled"]["post"]["responses"]
    assert {"429", "401", "413", "415"} <= set(throttled)  # 401: the default authenticators still run
    assert "409" not in throttled  # open to everybody: nothing of theirs to conflict with
    assert set(generated["paths"]["/open"]["get"]["responses"]) == {"200"}


# --- pagination: the parameters' schema is what the server enforces ----------------------------


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "1.5", "true"])
def test_a_page_size_that_is_not_a_positive_integer_is_400(api_for, page_size):
    response = api_for("viewer").get("/api/v1/dr/sites", {"page_size": page_size})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"page_size": [f"'{page_size}' is not a positive integer."]}


def test_an_empty_page_size_is_the_default_like_any_empty_query_parameter(api_for, schema):
    assert api_for("viewer").get("/api/v1/dr/sites", {"page_size": ""}).status_code == 200
    (page_size,) = [p for p in schema["paths"]["/api/v1/dr/sites/"]["get"]["parameters"] if p["name"] == "page_size"]
    assert page_size["schema"] == {
        "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": [""]}],
    }


def test_a_large_page_size_is_capped_and_a_page_past_the_end_is_404(api_for):
    from plans.models import Site

    Site.objects.bulk_create([Site(code=f"s{i:03d}", name=f"Site {i}") for i in range(501)])
    client = api_for("viewer")
    assert len(client.get("/api/v1/dr/sites", {"page_size": "9" * 5000}).json()["results"]) == 500
    assert len(client.get("/api/v1/dr/sites", {"page_size": "0007"}).json()["results"]) == 7
    past = client.get("/api/v1/dr/sites", {"page": 3, "page_size": 500})
    assert past.status_code == 404
    assert past.json()["error"]["code"] == "not_found"


def test_field_schemas_say_what_the_server_takes(schema):
    components = schema["components"]["schemas"]
    target = components["RTOTargetRequest"]["properties"]
    assert target["availability_target_percent"]["pattern"] == (
        r"^(?:\d{1,2}(?:\.\d{0,4})?|\.\d{1,4}|100(?:\.0{0,4})?)$"
    )
    application = components["ApplicationRequest"]["properties"]
    assert application["name"]["pattern"] == NOT_ONLY_WHITESPACE  # trimmed: whitespace only is blank
    # Python's re reads the \uXXXX escapes as ECMA regexes do:
    assert re.search(NOT_ONLY_WHITESPACE, "\x85 \u3000") is None  # what str.strip() removes
    assert re.search(NOT_ONLY_WHITESPACE, " x ")
    assert application["slug"]["pattern"] == NATURAL_KEY_PATTERN  # a slug, never all digits (core.lookups)
    assert re.fullmatch(NATURAL_KEY_PATTERN, "orders-db") and not re.fullmatch(NATURAL_KEY_PATTERN, "2026")
    assert "minLength" not in application["site"]  # "" is read as null
    assert application["owner_email"] == {
        "anyOf": [{"type": "string", "format": "email", "maxLength": 254}, {"type": "string", "enum": [""]}]
    }


# --- filters: what the query parameters' schema rejects is 400; an id that matches nothing is empty ---


@pytest.mark.parametrize(
    ("url", "query", "field"),
    [
        ("/api/v1/dr/executions", {"dry_run": "maybe"}, "dry_run"),
        ("/api/v1/dr/audit-log", {"seq__lte": "0.5"}, "seq__lte"),
        ("/api/v1/dr/test-results", {"plan": "one"}, "plan"),
        ("/api/v1/dr/test-results", {"execution": str(2**63)}, "execution"),  # was a 500 from the driver
    ],
)
def test_a_query_parameter_of_the_wrong_type_is_400(api_for, url, query, field):
    response = api_for("admin").get(url, query)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


def test_an_id_filter_that_matches_nothing_is_an_empty_list_like_a_slug_filter(api_for):
    client = api_for("viewer")
    for query in ({"plan": 999}, {"plan_slug": "nope"}):
        response = client.get("/api/v1/dr/test-results", query)
        assert (response.status_code, response.json()["count"]) == (200, 0)
    assert client.get("/api/v1/dr/executions", {"dry_run": "true"}).status_code == 200


def test_an_action_refuses_a_body_that_is_not_a_json_object(api_for):
    for url in ("/api/v1/dr/failover/cancel", "/api/v1/dr/executions/1/approve", "/api/v1/dr/runbooks/x/execute"):
        response = api_for("admin").post(url, [1, 2], format="json")
        assert response.status_code == 400, url
        assert response.json()["error"]["message"] == "Expected a JSON object."


def test_empty_query_parameters_are_left_out(api_for):
    client = api_for("admin")
    assert client.get("/api/v1/dr/failover/status", {"id": ""}).json() == {"count": 0, "executions": []}
    assert client.get("/api/v1/dr/executions", {"dry_run": "", "plan": "", "triggered_at_after": ""}).status_code == 200


def test_the_token_endpoint_takes_no_credentials_and_says_so(schema):
    operation = schema["paths"]["/api/v1/dr/auth/token"]["post"]
    assert {} in operation["security"]
    assert operation["requestBody"]["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/AuthTokenRequest"}}
    }
