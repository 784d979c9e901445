"""Execution parameters: checked against what the runbook versions declare, defaults applied."""

from __future__ import annotations

import math
from typing import Any

from core.exceptions import InvalidInput
from runbooks.choices import ParameterType
from runbooks.models import RunbookParameter, RunbookVersion

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _coerce(name: str, kind: str, value: Any, coerce_strings: bool) -> Any:
    field = f"parameters.{name}"
    if kind == ParameterType.STRING:
        if isinstance(value, str):
            return value
        raise InvalidInput(f"parameter {name!r} must be a string", field=field)
    if kind == ParameterType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if coerce_strings and isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise InvalidInput(f"parameter {name!r} must be a boolean", field=field)
    if kind == ParameterType.INTEGER:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if coerce_strings and isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise InvalidInput(f"parameter {name!r} must be an integer", field=field)
    if kind == ParameterType.NUMBER:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return value
        if coerce_strings and isinstance(value, str):
            try:
                number = float(value)
                if math.isfinite(number):
                    return int(number) if number.is_integer() and "." not in value else number
            except ValueError:
                pass
        raise InvalidInput(f"parameter {name!r} must be a number", field=field)
    raise InvalidInput(f"parameter {name!r} has an unknown type {kind!r}", field=field)


def validate_parameters(versions: list[RunbookVersion], given: Any, *, coerce_strings: bool = False) -> dict[str, Any]:
    """Check execution parameters against what the runbook versions declare; return them with
    defaults applied. Unknown names, wrong types and missing required values → InvalidInput naming
    the parameter. A secret parameter's value is the NAME of a core.Secret, which must exist (the
    error never repeats the value, in case someone typed the secret itself)."""
    from core.models import Secret

    given = {} if given is None else given
    if not isinstance(given, dict):
        raise InvalidInput("parameters must be an object of name: value", field="parameters")
    declared: dict[str, list[RunbookParameter]] = {}
    for param in RunbookParameter.objects.filter(version__in=versions).order_by("version_id", "order"):
        declared.setdefault(param.name, []).append(param)
    for name in given:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise InvalidInput(f"unknown parameter {name!r} (declared: {known})", field=f"parameters.{name}")
    resolved: dict[str, Any] = {}
    for name, params in declared.items():
        for param in params:
            if name in given:
                value = _coerce(name, param.type, given[name], coerce_strings)
            elif param.default is not None:
                value = param.default
            else:
                raise InvalidInput(f"parameter {name!r} is required (it has no default)", field=f"parameters.{name}")
            if param.secret and (not isinstance(value, str) or not Secret.objects.filter(name=value).exists()):
                raise InvalidInput(
                    f"parameter {name!r} is a secret parameter: its value must be the name of a defined secret",
                    field=f"parameters.{name}",
                )
            resolved[name] = value
    return resolved
