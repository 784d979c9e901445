"""Validators shared by the domain models."""

from __future__ import annotations

from django.core.exceptions import ValidationError

# A slug with at least one character that is not a digit (for OpenAPI and JSON Schema; no lookaround).
NATURAL_KEY_PATTERN = r"^[-a-zA-Z0-9_]*[-a-zA-Z_][-a-zA-Z0-9_]*$"


def validate_natural_key(value: str) -> None:
    """A natural key (a plan's plan_id, a site's code, an application's or runbook's slug) is never all
    digits, so `/{id}` and request fields that take "a numeric id or a natural key" are never ambiguous:
    all digits is always the id (core.lookups)."""
    if isinstance(value, str) and value.isdigit():
        raise ValidationError(
            f"{value!r} is all digits, which is how numeric ids are written; include a letter or a hyphen",
            code="all_digits",
        )
