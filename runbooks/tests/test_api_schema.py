"""The runbook document in the OpenAPI schema is the document's own JSON Schema, in OpenAPI 3.0 terms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from runbooks.api.schema import runbook_document_schema

TEMPLATES = sorted((Path(__file__).resolve().parents[1] / "templates").glob("*.yaml"))


def _as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable` as JSON Schema, to validate with jsonschema."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _as_json_schema(value) for key, value in node.items() if key != "nullable"}
    return {"anyOf": [out, {"type": "null"}]} if node.get("nullable") else out


def test_the_document_schema_is_openapi_3_0():
    text = json.dumps(runbook_document_schema())
    for keyword in ('"$ref"', '"$defs"', '"$schema"', '"propertyNames"', '"null"'):
        assert keyword not in text


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.stem)
def test_every_template_is_a_document_of_the_schema(template):
    validator = jsonschema.Draft4Validator(_as_json_schema(runbook_document_schema()))
    document = yaml.safe_load(template.read_text())
    document.pop("template", None)  # a library template's record, not part of the runbook document
    validator.validate(document)


def test_what_the_schema_refuses():
    validator = jsonschema.Draft4Validator(_as_json_schema(runbook_document_schema()))
    document = yaml.safe_load(TEMPLATES[0].read_text())
    document.pop("template", None)
    for broken in (
        {**document, "version": "one"},
        {**document, "steps": []},
        {**document, "unknown": 1},
        {**document, "parallelism": 0},
    ):
        assert not validator.is_valid(broken)
    assert validator.is_valid({**document, "parallelism": None, "application": None})


def test_export_and_import_bodies_are_runbook_documents():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    export = schema["paths"]["/api/v1/dr/runbooks/{id}/export/"]["get"]["responses"]["200"]["content"]
    assert export == {
        "application/yaml": {"schema": {"$ref": "#/components/schemas/RunbookDocument"}},
        "application/json": {"schema": {"$ref": "#/components/schemas/RunbookDocument"}},
    }
    body = schema["paths"]["/api/v1/dr/runbooks/import/"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/yaml", "text/yaml", "multipart/form-data"}
    assert schema["components"]["schemas"]["RunbookImportBodyRequest"] == {
        "oneOf": [
            {"$ref": "#/components/schemas/ForeignImportRequest"},
            {"$ref": "#/components/schemas/ImportDocumentRequest"},
            {"$ref": "#/components/schemas/RunbookDocumentRequest"},
        ]
    }
    create = schema["paths"]["/api/v1/dr/runbooks/"]["post"]["requestBody"]["content"]
    assert create["application/json"]["schema"] == {"$ref": "#/components/schemas/RunbookDocumentBodyRequest"}
