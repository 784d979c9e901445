"""The API's JSON parser (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]): DRF's, with a bound on nesting depth."""

from __future__ import annotations

import codecs
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

from core.jsondepth import MAX_JSON_DEPTH, json_too_deep, too_deep_message


class DepthLimitedJSONParser(JSONParser):
    """JSON nested deeper than MAX_JSON_DEPTH is a 400 (malformed_request) before json.loads can recurse."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
            if json_too_deep(text):
                raise ParseError(f"JSON {too_deep_message(MAX_JSON_DEPTH)}.")
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
