"""Request bodies nested too deeply are refused with 400 in the error shape, before anything recurses
into them (Python's json would raise RecursionError: a 500)."""

from __future__ import annotations

import io
import json

import pytest
from rest_framework.exceptions import ParseError

from core.api.parsers import DepthLimitedJSONParser
from core.jsondepth import MAX_JSON_DEPTH
from failover.models import FailoverExecution
from plans.models import DRPlan

pytestmark = pytest.mark.django_db

DEEP = 100_000
DEEP_ARRAY = "[" * DEEP + "]" * DEEP
DEEP_OBJECT = '{"a":' * DEEP + "1" + "}" * DEEP
LIMIT_MESSAGE = f"JSON nested deeper than {MAX_JSON_DEPTH} levels (the limit)"


def nested(depth: int) -> str:
    return "[" * (depth - 1) + "{}" + "]" * (depth - 1)


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/dr/plans"),
        ("put", "/api/v1/dr/plans/core-dr"),
        ("post", "/api/v1/dr/failover"),
        ("post", "/api/v1/dr/secrets"),
        ("post", "/api/v1/dr/runbooks/core-failover/execute"),
    ],
)
def test_deeply_nested_json_is_a_400_naming_the_limit(api_for, method: str, path: str, body: str) -> None:
    DRPlan.objects.create(plan_id="core-dr", name="Core", rto_seconds=60, rpo_seconds=60)
    response = getattr(api_for("admin"), method)(path, data=body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == "malformed_request"
    assert LIMIT_MESSAGE in error["message"]
    assert DRPlan.objects.count() == 1
    assert FailoverExecution.objects.count() == 0


def test_the_parser_accepts_the_limit_and_refuses_one_more() -> None:
    parser = DepthLimitedJSONParser()
    assert parser.parse(io.BytesIO(nested(MAX_JSON_DEPTH).encode())) == json.loads(nested(MAX_JSON_DEPTH))
    with pytest.raises(ParseError) as info:
        parser.parse(io.BytesIO(nested(MAX_JSON_DEPTH + 1).encode()))
    assert LIMIT_MESSAGE in str(info.value.detail)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"note": "[" * 5000 + '\\"{' * 100, "list": [["]]]]"]]})
    assert DepthLimitedJSONParser().parse(io.BytesIO(text.encode())) == json.loads(text)


def test_malformed_json_is_still_reported_as_such(api_for) -> None:
    response = api_for("admin").post("/api/v1/dr/plans", data='{"plan_id": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert "JSON parse error" in response.json()["error"]["message"]


def test_it_is_the_default_json_parser() -> None:
    from django.conf import settings

    assert settings.REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"][0] == "core.api.parsers.DepthLimitedJSONParser"
