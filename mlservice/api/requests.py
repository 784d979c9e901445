"""Request bodies of the ML service: JSON Schemas that both validate (jsonschema) and document (OpenAPI).

`validate(schema, body)` refuses with InvalidInput naming the field (dotted path): a missing or an extra
property, a wrong type, a negative duration, NaN or infinity (the parser keeps them as non-finite floats so
the field can be named)."""

from __future__ import annotations

import math
from typing import Any

from jsonschema import Draft202012Validator

from core.exceptions import InvalidInput
from mlservice.failure_risk import FEATURES as SMART_FEATURES
from mlservice.impact import BIA_FIELDS
from mlservice.rto import CONDITIONS
from mlservice.rto import FEATURES as RTO_FEATURES
from mlservice.simulation import MAX_SIMULATIONS, MAX_STEPS

PLAN_REF = {"type": "string", "minLength": 1, "maxLength": 100, "description": "Plan id (digits) or plan_id."}
SECONDS = {"type": "number", "minimum": 0}
CONDITION = {"type": ["number", "null"], "minimum": 0}
DISTRIBUTION = {
    "type": "object",
    "description": "fixed {value} · lognormal {median, sigma} · exponential {mean} · uniform {low, high} · "
    "empirical {samples}; seconds.",
    "properties": {
        "type": {"enum": ["fixed", "lognormal", "exponential", "uniform", "empirical"]},
        "value": SECONDS,
        "median": SECONDS,
        "sigma": SECONDS,
        "mean": SECONDS,
        "low": SECONDS,
        "high": SECONDS,
        "samples": {"type": "array", "items": SECONDS, "minItems": 1, "maxItems": 10000},
    },
    "required": ["type"],
    "additionalProperties": False,
}

PREDICT_RTO = {
    "type": "object",
    "description": "Either `plan` (features read from the plan's composed failover and its history) or `features`.",
    "properties": {
        "plan": PLAN_REF,
        "features": {
            "type": "object",
            "properties": {f: (CONDITION if f in CONDITIONS else SECONDS) for f in RTO_FEATURES},
            "required": RTO_FEATURES,
            "additionalProperties": False,
        },
        "rto_seconds": {"type": "number", "exclusiveMinimum": 0},
        **{c: CONDITION for c in CONDITIONS},
    },
    "oneOf": [{"required": ["plan"]}, {"required": ["features"]}],
    "additionalProperties": False,
}

ESTIMATE = {
    "type": "object",
    "description": "Either `plan` (its composed failover; optionally only the `applications` of a disaster "
    "scenario) or `steps`. A step gives its `duration` distribution, or its `action` (and `estimate`, `gate`) for the "
    "service to fit from the step's history, else its estimate and the priors. A running execution (the console's "
    "projection): `now_offset` is the seconds since its clock started, a finished step has `done_at`, a running one "
    "`started_at` (offsets on the same clock); the answer's times are from the clock's start.",
    "properties": {
        "plan": PLAN_REF,
        "applications": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": 500},
        "steps": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_STEPS,
            "items": {
                "type": "object",
                "properties": {
                    "key": {"type": "string", "minLength": 1, "maxLength": 200},
                    "needs": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_STEPS},
                    "duration": DISTRIBUTION,
                    "wait": DISTRIBUTION,
                    "priority": {"type": "number"},
                    "action": {"type": "string", "minLength": 1, "maxLength": 100, "description": "Runbook action."},
                    "estimate": {**CONDITION, "description": "The step's estimated duration, seconds."},
                    "gate": {"type": "boolean", "description": "A person approves before it runs."},
                    "done_at": {**SECONDS, "description": "Finished at this offset (a running execution)."},
                    "started_at": {**SECONDS, "description": "Running since this offset (a running execution)."},
                },
                "required": ["key"],
                "oneOf": [{"required": ["duration"]}, {"required": ["action"]}],
                "dependentSchemas": {  # `estimate` and `gate` describe a step the service fits; `wait` a given one
                    "estimate": {"required": ["action"]},
                    "gate": {"required": ["action"]},
                    "wait": {"required": ["duration"]},
                },
                "additionalProperties": False,
            },
        },
        "now_offset": {**SECONDS, "description": "Seconds since the running execution's clock started."},
        "parallelism": {"type": ["integer", "null"], "minimum": 1},
        "approval_levels": {"type": "integer", "minimum": 0, "maximum": 10},
        "rto_seconds": {"type": "number", "exclusiveMinimum": 0},
        "simulations": {"type": "integer", "minimum": 100, "maximum": MAX_SIMULATIONS},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
    },
    "oneOf": [{"required": ["plan"]}, {"required": ["steps"]}],
    "dependentSchemas": {  # `applications` only with `plan`, `approval_levels` only with `steps`
        "applications": {"required": ["plan"]},
        "approval_levels": {"required": ["steps"]},
        "now_offset": {"required": ["steps"]},
    },
    "additionalProperties": False,
}

LEVEL = {"enum": ["low", "medium", "high", "critical"]}
COUNT = {"type": "integer", "minimum": 0}
NAMES = {"type": "array", "items": {"type": "string"}, "maxItems": 1000}
BIA = {
    "type": "object",
    "description": "The figures of an impact analysis (analytics.ImpactAnalysis), currency units as entered.",
    "properties": {
        "revenue_per_hour": SECONDS,
        "downtime_cost_24h": SECONDS,
        "recovery_cost": SECONDS,
        "affected_processes": NAMES,
        "critical_processes": NAMES,
        "affected_employees": COUNT,
        "affected_customers": COUNT,
        "customer_sentiment": {"enum": ["positive", "neutral", "negative", "severe"]},
        "media_exposure": LEVEL,
        "brand_damage": LEVEL,
        "customer_churn_percent": {"type": "number", "minimum": 0, "maximum": 100},
        "estimated_fines": SECONDS,
        "potential_violations": NAMES,
        "regulatory_frameworks": NAMES,
    },
    "additionalProperties": False,
}
BIA["required"] = list(BIA["properties"])
assert tuple(BIA["properties"]) == BIA_FIELDS, "the request schema and impact.scores() read the same figures"

SCORE_IMPACT = {
    "type": "object",
    "description": "`bia` (or `impact_analysis`, the id of a stored one) for the four scores, `applications` "
    "for the recovery order; at least one.",
    "properties": {
        "bia": BIA,
        "impact_analysis": {"type": "integer", "minimum": 1, "description": "Id of a stored impact analysis."},
        "applications": {
            "type": "array",
            "minItems": 1,
            "maxItems": 500,
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "minLength": 1, "maxLength": 100},
                    "recovery_seconds": SECONDS,
                    "cost_per_hour": SECONDS,
                    "depends_on": {"type": "array", "items": {"type": "string"}, "maxItems": 500},
                },
                "required": ["id", "recovery_seconds", "cost_per_hour"],
                "additionalProperties": False,
            },
        },
        "parallelism": {"type": ["integer", "null"], "minimum": 1},
    },
    "anyOf": [{"required": ["bia"]}, {"required": ["impact_analysis"]}, {"required": ["applications"]}],
    "not": {"required": ["bia", "impact_analysis"]},
    "additionalProperties": False,
}

ANALYZE_FAILURE_RISK = {
    "type": "object",
    "description": "One drive's SMART raw values (Backblaze Drive Stats column names).",
    "properties": {
        "serial_number": {"type": "string", "maxLength": 100},
        "smart": {
            "type": "object",
            "properties": {f: SECONDS for f in SMART_FEATURES},
            "required": SMART_FEATURES,
            "additionalProperties": False,
        },
    },
    "required": ["smart"],
    "additionalProperties": False,
}


def openapi30(schema: Any) -> Any:
    """The schema as OpenAPI 3.0 (what drf-spectacular writes) says it: `nullable` instead of a type list, a
    boolean exclusiveMinimum, no dependentSchemas (its rule is in the description)."""
    if isinstance(schema, list):
        return [openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, list):
            out["type"] = next(t for t in value if t != "null")
            out["nullable"] = "null" in value
        elif key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "dependentSchemas":
            continue
        elif key in ("properties",):
            out[key] = {name: openapi30(item) for name, item in value.items()}
        else:
            out[key] = openapi30(value)
    return out


_VALIDATORS: dict[int, Draft202012Validator] = {}
_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
}
_IGNORED = {"description", "title", "default", "examples"}


def _check(schema: dict[str, Any], value: Any) -> bool | None:
    """A fast, exact check of the JSON Schema subset these request schemas use: True (valid), False (invalid)
    or None (a keyword or a case it does not decide, such as 1.0 for an integer). `validate` answers from it
    only when it says True; anything else goes to jsonschema, which names the field. Measured: jsonschema's
    validation was a third of a predict-rto request's time in the service."""
    for key, rule in schema.items():
        if key in _IGNORED:
            continue
        if key == "type":
            kinds = rule if isinstance(rule, list) else [rule]
            if "integer" in kinds and isinstance(value, float):
                return None
            if not any(_TYPES[kind](value) for kind in kinds):
                return False
        elif key == "properties":
            if isinstance(value, dict):
                for name, sub in rule.items():
                    if name in value and (found := _check(sub, value[name])) is not True:
                        return found
        elif key == "required":
            if isinstance(value, dict) and any(name not in value for name in rule):
                return False
        elif key == "additionalProperties":
            if rule is not False:
                return None
            if isinstance(value, dict) and not set(value) <= set(schema.get("properties", {})):
                return False
        elif key == "dependentSchemas":
            if isinstance(value, dict):
                for name, sub in rule.items():
                    if name in value and (found := _check(sub, value)) is not True:
                        return found
        elif key == "oneOf":
            results = [_check(sub, value) for sub in rule]
            if None in results:
                return None
            if results.count(True) != 1:
                return False
        elif key == "anyOf":
            results = [_check(sub, value) for sub in rule]
            if True not in results:
                return None if None in results else False
        elif key == "not":
            found = _check(rule, value)
            if found is not False:
                return None if found is None else False
        elif key == "items":
            if isinstance(value, list):
                for item in value:
                    if (found := _check(rule, item)) is not True:
                        return found
        elif key in ("minimum", "maximum", "exclusiveMinimum"):
            if _TYPES["number"](value):
                ok = value >= rule if key == "minimum" else value <= rule if key == "maximum" else value > rule
                if not ok:
                    return False
        elif key in ("minLength", "maxLength"):
            if isinstance(value, str) and not (len(value) >= rule if key == "minLength" else len(value) <= rule):
                return False
        elif key in ("minItems", "maxItems"):
            if isinstance(value, list) and not (len(value) >= rule if key == "minItems" else len(value) <= rule):
                return False
        elif key == "enum":
            if not isinstance(value, str):
                return None
            if value not in rule:
                return False
        else:
            return None
    return True


def _non_finite(value: Any, path: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path or "body"
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _non_finite(item, f"{path}[{i}]")
            if found:
                return found
    return None


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate(schema: dict[str, Any], body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    bad = _non_finite(body, "")
    if bad:
        raise InvalidInput(f"{bad}: must be a finite number (NaN and infinity are refused)", field=bad)
    if _check(schema, body) is True:  # the common case, proved valid without jsonschema's machinery
        return body
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        validator = _VALIDATORS[id(schema)] = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(body), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return body
    error = errors[0]
    where = _path(error.absolute_path)
    if error.validator == "required":
        name = error.message.split("'")[1]
        field, message = (f"{where}.{name}" if where else name), "is required"
    elif error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        field, message = (f"{where}.{extra[0]}" if where else extra[0]), "is not a field this endpoint takes"
    elif error.validator in ("oneOf", "anyOf"):
        options = [" and ".join(s.get("required", [])) for s in error.validator_value]
        verb = "exactly one of" if error.validator == "oneOf" else "at least one of"
        field, message = where or "body", f"give {verb}: {', '.join(options)}"
    elif error.validator == "not":
        field, message = where or "body", "give bia or impact_analysis, not both"
    elif error.validator == "dependentSchemas":
        field, message = where or "body", error.message
    elif error.validator == "minimum" and error.validator_value == 0:
        field, message = where, "must not be negative"
    else:
        field, message = where or "body", error.message
    raise InvalidInput(f"{field}: {message}", field=field)
