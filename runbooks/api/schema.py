"""The runbook document in the OpenAPI schema: `RunbookDocument`, converted from the document's own
JSON Schema (runbooks/schema/runbook.schema.json, draft 2020-12) to the OpenAPI 3.0 dialect.

Import and export bodies are runbook documents; documenting them as free-form objects would let a
client send anything. The conversion inlines `$defs`, turns `type: [x, "null"]` and a `{"type": "null"}`
branch into `nullable`, and drops `propertyNames` (OpenAPI 3.0 has no such keyword; parameter names
are still checked when a document is imported). What JSON Schema cannot say (each step's `with`
against its action's parameters, `needs` naming steps of the document, no cycles) is checked on
import and answered with 400 naming the step.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

from runbooks import documents

_DROPPED = {"$schema", "$id", "$defs", "propertyNames"}


def _convert(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return {**_convert(defs[name], defs), **_convert(siblings, defs)}
    out = {key: _convert(value, defs) for key, value in node.items() if key not in _DROPPED}
    kind = out.get("type")
    if isinstance(kind, list) and "null" in kind:
        rest = [k for k in kind if k != "null"]
        out["type"] = rest[0] if len(rest) == 1 else rest
        out["nullable"] = True
    for keyword in ("anyOf", "oneOf"):
        branches = out.get(keyword)
        if isinstance(branches, list) and {"type": "null"} in branches:
            out[keyword] = [branch for branch in branches if branch != {"type": "null"}]
            out["nullable"] = True
    return out


@cache
def _converted() -> dict[str, Any]:
    source = documents.load_schema()
    return _convert(source, source.get("$defs", {}))


def runbook_document_schema() -> dict[str, Any]:
    """A fresh copy each time: schema generation rewrites what it is given (enums become components)."""
    return copy.deepcopy(_converted())


class RunbookDocumentSerializer(serializers.Serializer):
    """Stands for a runbook document in request and response schemas (see RunbookDocumentExtension)."""


class RunbookDocumentExtension(OpenApiSerializerExtension):
    target_class = RunbookDocumentSerializer

    def get_name(self, auto_schema: Any, direction: str) -> str:
        return "RunbookDocument"

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        return runbook_document_schema()
