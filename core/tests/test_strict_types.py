"""Request bodies are taken as the JSON they are: a value of the wrong type is 400, never converted
(DRF's conversions would accept what the OpenAPI schema calls invalid)."""

from __future__ import annotations

import inspect

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework import serializers

from core.api.strict import StrictTypesMixin, decimal_pattern, type_errors
from plans.models import Application, Site


def test_every_serializer_the_schema_documents_as_a_request_body_is_strict():
    generator = SchemaGenerator()
    generator.get_schema(request=None, public=True)
    requests = {
        name: component.object if inspect.isclass(component.object) else type(component.object)
        for (name, _), component in generator.registry._components.items()
        if name.endswith("Request") and isinstance(component.object, (serializers.Serializer, type))
    }
    assert len(requests) >= 20
    lax = sorted(name for name, cls in requests.items() if not issubclass(cls, StrictTypesMixin))
    assert lax == [
        "AuthTokenRequest",  # DRF's own token view: a username or password of another type only fails to log in
        "NewVersionBodyRequest",  # oneOf of strict serializers and the runbook document
        "RunbookDocumentBodyRequest",  # the same
        "RunbookDocumentRequest",  # validated against runbooks/schema/runbook.schema.json, which has the types
        "RunbookImportBodyRequest",  # oneOf of strict serializers and the runbook document (POST /runbooks/import)
    ]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (serializers.CharField(), 5, ["Expected a string, got a number."]),
        (serializers.CharField(), "5", None),
        (serializers.IntegerField(), "5", ["Expected an integer, got a string."]),
        (serializers.IntegerField(), True, ["Expected an integer, got a boolean."]),
        (serializers.IntegerField(), 5.0, None),
        (serializers.FloatField(), "1.5", ["Expected a number, got a string."]),
        (serializers.BooleanField(), "true", ["Expected a boolean, got a string."]),
        (serializers.BooleanField(), 1, ["Expected a boolean, got a number."]),
        (serializers.DecimalField(max_digits=5, decimal_places=2), 1.5, ["Expected a string, got a number."]),
        (serializers.ChoiceField(choices=[(1, "one"), (2, "two")]), "1", ["Expected an integer, got a string."]),
        (serializers.ChoiceField(choices=["a", "b"]), 1, ["Expected a string, got a number."]),
        (
            serializers.ListField(child=serializers.CharField()),
            ["a", 2, "c"],
            {1: ["Expected a string, got a number."]},
        ),
        (serializers.ListField(child=serializers.CharField()), "abc", ["Expected a list, got a string."]),
        (
            serializers.DictField(child=serializers.IntegerField()),
            {"a": 1, "b": "2"},
            {"b": ["Expected an integer, got a string."]},
        ),
        (serializers.JSONField(), 5, None),
        (serializers.CharField(allow_null=True), None, None),
    ],
)
def test_type_errors(field, value, expected):
    assert type_errors(field, value) == expected


def test_a_field_may_declare_the_json_types_it_takes():
    field = serializers.CharField()
    field.json_types = (str, int)
    assert type_errors(field, 5) is None
    assert type_errors(field, True) == ["Expected a string or a number, got a boolean."]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "ams9", "name": "Amsterdam", "description": 0}, "description"),
        ({"code": 9, "name": "Amsterdam"}, "code"),
        ({"code": "ams9", "name": "Amsterdam", "kind": ["datacenter"]}, "kind"),
    ],
)
def test_a_wrong_json_type_is_400_and_nothing_is_stored(api_for, body, field):
    response = api_for("approver").post("/api/v1/dr/sites", body, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert response.json()["error"]["fields"][field][0].startswith("Expected ")
    assert not Site.objects.exists()


def test_nested_and_related_values_are_checked_too(api_for):
    site = Site.objects.create(code="ams1", name="Amsterdam")
    Application.objects.create(slug="db", name="DB", tier=1)
    client = api_for("approver")
    response = client.post(
        "/api/v1/dr/applications",
        {"slug": "api", "name": "API", "tier": "1", "site": site.code, "depends_on": ["db", 7]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "tier": ["Expected an integer, got a string."],
        "depends_on.1": ["Expected a string, got a number."],
    }
    ok = client.post(
        "/api/v1/dr/applications", {"slug": "api", "name": "API", "tier": 1, "depends_on": ["db"]}, format="json"
    )
    assert ok.status_code == 201, ok.content


def test_an_empty_string_is_not_a_reference(api_for):
    """DRF reads "" as null for a relation; the schema's pattern refuses it, and so does the API (null clears)."""
    site = Site.objects.create(code="ams1", name="Amsterdam")
    app = Application.objects.create(slug="db", name="DB", tier=1, site=site)
    client = api_for("approver")
    response = client.patch("/api/v1/dr/applications/db", {"site": ""}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "site": ["An empty string names nothing: send null to clear the reference."]
    }
    app.refresh_from_db()
    assert app.site == site
    assert client.patch("/api/v1/dr/applications/db", {"site": None}, format="json").status_code == 200
    app.refresh_from_db()
    assert app.site is None


def test_form_encoded_input_is_left_to_drf(api_for):
    """The browsable API's forms send text; only JSON has types to check."""
    response = api_for("approver").post("/api/v1/dr/sites", {"code": "ams9", "name": "Amsterdam"})
    assert response.status_code == 201, response.content


PERCENT = serializers.DecimalField(max_digits=7, decimal_places=4, min_value=0, max_value=100)
MONEY = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)


@pytest.mark.parametrize("text", ["0", "12.5", "99.9999", ".5", "5.", "100", "100.0000"])
def test_a_decimal_within_its_digits_and_range_is_taken(text):
    assert type_errors(PERCENT, text) is None


@pytest.mark.parametrize("text", ["", "-1", "100.5", "1e2", " 1", "1.23456", "Infinity", "1,5", "000"])
def test_any_other_decimal_text_is_refused_with_what_it_takes(text):
    assert type_errors(PERCENT, text) == [
        'Enter a plain decimal number, e.g. "12.50": digits and a point, at most 3 digits before the point, '
        "at most 4 after it, from 0 to 100."
    ]


def test_a_decimal_range_the_pattern_cannot_say_is_refused_when_the_schema_is_made():
    with pytest.raises(ValueError, match="power of ten"):
        decimal_pattern(serializers.DecimalField(max_digits=5, decimal_places=2, max_value=50))
    assert decimal_pattern(MONEY) == r"^(?:\d{1,12}(?:\.\d{0,2})?|\.\d{1,2})$"


def test_a_nested_object_is_complete_even_in_a_patch(api_for):
    """DRF skips missing required fields at every depth of a partial update."""
    from analytics.models import ActionItem
    from analytics.tests.factories import make_result
    from plans.tests.factories import make_plan

    result = make_result(make_plan())
    before = ActionItem.objects.count()
    response = api_for("approver").patch(
        f"/api/v1/dr/test-results/{result.pk}", {"action_items": [{"assignee": "ops"}]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"action_items[0].description": ["This field is required."]}
    assert ActionItem.objects.count() == before
    ok = api_for("approver").patch(f"/api/v1/dr/test-results/{result.pk}", {"summary": "ok"}, format="json")
    assert ok.status_code == 200  # the top level of a PATCH stays partial
