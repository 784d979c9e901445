"""How deeply structured input (JSON request bodies, runbook documents) may nest.

Python's json and PyYAML recurse once per level: a body of 100,000 "[" (200 KB, well under the request-size
limit) raises RecursionError, a 500. So the depth is measured first, without recursion, and anything deeper
than MAX_JSON_DEPTH is refused as malformed input. 64 is far above anything DRPlan reads: a runbook document
is about 6 levels deep.
"""

from __future__ import annotations

import re

MAX_JSON_DEPTH = 64

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


def too_deep_message(limit: int = MAX_JSON_DEPTH) -> str:
    return f"nested deeper than {limit} levels (the limit)"


def json_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if the JSON text nests arrays and objects more than `limit` levels deep.

    One linear pass (brackets inside strings do not count); malformed text is left to the parser."""
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub('""', text)):
        if bracket.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
