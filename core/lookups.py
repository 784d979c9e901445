"""Finding a row by "numeric id or natural key", with one rule everywhere (API paths, request fields, CLI).

All digits is the numeric id; anything else is the natural key. Natural keys can never be all digits
(core.validators.validate_natural_key), so the two never overlap and nothing is guessed: "3" is the row
with id 3, never a plan whose plan_id is "3" (there can be none).
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)
MAX_ID = 2**63 - 1  # ids are 64-bit; a larger number matches nothing (and must not reach the database)


def parse_id(value: Any) -> int | None:
    """A numeric id (an int, or text of ASCII digits) within the 64-bit range, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()):
            return None
        number = int(text)
    return number if 0 < number <= MAX_ID else None


def is_id(value: Any) -> bool:
    """Is `value` written as a numeric id (whether or not it is in range)?"""
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    text = str(value).strip()
    return text.isascii() and text.isdigit()


def lookup_kwargs(value: Any, natural_key: str) -> dict[str, Any]:
    """{"pk": 3} for 3 or "3"; {natural_key: "crm-dr"} otherwise (an id out of range matches nothing)."""
    if not is_id(value):
        return {natural_key: str(value).strip()}
    number = parse_id(value)
    return {"pk": number} if number is not None else {"pk__in": []}


def find(queryset: models.QuerySet[M], value: Any, natural_key: str) -> M | None:
    """The row of `queryset` with that id or natural key, or None."""
    return queryset.filter(**lookup_kwargs(value, natural_key)).first()
