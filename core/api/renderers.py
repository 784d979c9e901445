"""A JSON renderer for large responses: orjson, with DRF's encoder for the types orjson does not know.

DRF's JSONRenderer spends most of a big response (a year of daily points for 100 applications: 36,500 points)
in the standard library's encoder; orjson writes the same JSON about ten times faster. Only endpoints that
return large numeric payloads use it (`renderer_classes`); the rest keep DRF's renderer.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_FALLBACK = JSONEncoder()  # lazy strings, Decimal, timedelta, querysets …: DRF's representation
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


class FastJSONRenderer(JSONRenderer):
    """The same document as JSONRenderer (compact; datetimes through DRF's encoder: ISO 8601, 'Z' for UTC).
    A client that asks for indentation (`Accept: application/json; indent=4`) gets DRF's renderer."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        return orjson.dumps(data, default=_FALLBACK.default, option=_OPTIONS)
