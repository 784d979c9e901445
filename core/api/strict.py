"""Serializers that take JSON as it is: a value of the wrong JSON type is refused (400), not converted.

DRF converts input: 5 becomes "5" for a text field, "5" becomes 5 for an integer, "yes" and 1 become
True, and a primary key sent as "5" finds object 5. The OpenAPI schema promises JSON types, so a
request the schema calls invalid must not be accepted; every serializer that reads a request body
derives from `StrictSerializer` or `StrictModelSerializer`.

A field that accepts more than one JSON type declares them: `field.json_types = (str, int)`.
A nested object is complete even in a PATCH: DRF skips missing required fields at every depth of a
partial update, which let PATCH /test-results store an action item without a description.
Form-encoded input (the browsable API's forms) is all text, so it is left to DRF's own conversion.
Nested serializers check their own fields; list and dict fields check each item.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.http import QueryDict
from rest_framework import relations, serializers

_NAMES = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}
# Field classes whose value has no one JSON type (any JSON, or computed on output only).
_UNCHECKED = (
    serializers.JSONField,
    serializers.ReadOnlyField,
    serializers.HiddenField,
    serializers.SerializerMethodField,
    serializers.ModelField,
    serializers.BaseSerializer,  # a nested serializer checks its own input
)
_TEXT = (
    serializers.CharField,
    serializers.DateField,
    serializers.DateTimeField,
    serializers.TimeField,
    serializers.DurationField,
    serializers.UUIDField,
    relations.SlugRelatedField,
    relations.HyperlinkedRelatedField,
)


def decimal_pattern(field: serializers.DecimalField) -> str:
    """The exact text a decimal field takes: plain digits, at most its whole and fractional digits, within
    its range. The OpenAPI schema documents it and `type_errors` enforces it (no exponent, no spaces)."""
    places = field.decimal_places or 0
    whole = field.max_whole_digits
    if field.min_value is None:
        sign = "-?"
    elif Decimal(field.min_value) == 0:
        sign = ""
    else:
        raise ValueError(f"{field.field_name}: a minimum other than 0 cannot be written as a pattern")
    integer = rf"\d{{1,{whole}}}" if whole else r"\d+"
    fraction = rf"(?:\.\d{{0,{places}}})?" if places else ""
    alternatives = [integer + fraction] + ([rf"\.\d{{1,{places}}}"] if places else [])
    if field.max_value is not None:
        exponent = len(str(int(field.max_value))) - 1
        if Decimal(field.max_value) != 10**exponent or (whole is not None and exponent > whole):
            raise ValueError(f"{field.field_name}: only a power of ten can be written as a maximum in a pattern")
        zeros = rf"(?:\.0{{0,{places}}})?" if places else ""
        alternatives = [rf"\d{{1,{exponent}}}" + fraction, *alternatives[1:], f"{10**exponent}{zeros}"]
    return f"^{sign}(?:{'|'.join(alternatives)})$"


def _decimal_limits(field: serializers.DecimalField) -> str:
    limits = [f"at most {field.max_whole_digits} digits before the point"] if field.max_whole_digits else []
    limits.append(f"at most {field.decimal_places} after it")
    low, high = field.min_value, field.max_value
    if low is not None and high is not None:
        limits.append(f"from {low} to {high}")
    elif low is not None:
        limits.append(f"{low} or more")
    elif high is not None:
        limits.append(f"{high} or less")
    return ", ".join(limits)


def _json_name(value: Any) -> str:
    if value is None:
        return "null"
    return next((name for kind, name in _NAMES.items() if isinstance(value, kind)), type(value).__name__)


def _is_integer(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())


def _expected(field: serializers.Field, value: Any) -> str | None:
    """What the field's JSON value must be, when `value` is not that; None when it is."""
    declared = getattr(field, "json_types", None)
    if declared is not None:
        ok = isinstance(value, tuple(declared)) and not (isinstance(value, bool) and bool not in declared)
        return None if ok else " or ".join(dict.fromkeys(_NAMES.get(kind, kind.__name__) for kind in declared))
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "a boolean"
    if isinstance(field, serializers.IntegerField) or (
        isinstance(field, relations.PrimaryKeyRelatedField) and field.pk_field is None
    ):
        return None if _is_integer(value) else "an integer"
    if isinstance(field, serializers.DecimalField):
        return None if isinstance(value, str) else "a string"  # the decimal's text is checked in type_errors
    if isinstance(field, serializers.FloatField):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    if isinstance(field, serializers.MultipleChoiceField):
        return None if isinstance(value, list) else "a list"
    if isinstance(field, serializers.ChoiceField):
        keys = [key for key in field.choices if key != ""]
        if keys and all(_is_integer(key) for key in keys):
            return None if _is_integer(value) else "an integer"
        return None if isinstance(value, str) else "a string"
    if isinstance(field, _TEXT):
        return None if isinstance(value, str) else "a string"
    if isinstance(field, (serializers.ListField, relations.ManyRelatedField)):
        return None if isinstance(value, list) else "a list"
    if isinstance(field, serializers.DictField):
        return None if isinstance(value, dict) else "an object"
    return None


def type_errors(field: serializers.Field, value: Any) -> list[str] | dict[Any, Any] | None:
    """Errors for a JSON value of the wrong type, per item for lists and dicts; None when it fits."""
    if value is None or isinstance(field, _UNCHECKED):
        return None  # whether null is allowed is DRF's to say
    expected = _expected(field, value)
    if expected is not None:
        return [f"Expected {expected}, got {_json_name(value)}."]
    if isinstance(field, relations.RelatedField) and value == "":  # DRF would read "" as null
        return ["An empty string names nothing: send null to clear the reference."]
    if isinstance(field, serializers.DecimalField) and not re.match(decimal_pattern(field), value):
        return [f'Enter a plain decimal number, e.g. "12.50": digits and a point, {_decimal_limits(field)}.']
    child = getattr(field, "child_relation", None) or getattr(field, "child", None)
    if child is None or isinstance(field, serializers.MultipleChoiceField):
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    errors = {key: problem for key, item in items if (problem := type_errors(child, item))}
    return errors or None


class StrictTypesMixin:
    """Refuses JSON values of the wrong type before DRF converts them (see the module docstring)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping) and not isinstance(data, QueryDict):
            errors = {
                field.field_name: problem
                for field in self._writable_fields
                if field.field_name in data and (problem := type_errors(field, data[field.field_name]))
            }
            if self.parent is not None and getattr(self.root, "partial", False):
                errors.update(
                    {
                        field.field_name: [field.error_messages["required"]]
                        for field in self._writable_fields
                        if field.required and field.field_name not in data and field.field_name not in errors
                    }
                )
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class StrictSerializer(StrictTypesMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictTypesMixin, serializers.ModelSerializer):
    pass
