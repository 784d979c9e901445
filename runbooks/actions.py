"""The registry of runbook action types.

Each action type has a name (used as a step's `action`), a description and a JSON
Schema for its parameters (the step's `with`). Importing a runbook checks every
step's `with` against its action's schema. The execution engine attaches
executors to these names; this module stays a plain registry.

Adding an action: define an ActionSpec with a strict schema (additionalProperties
false), call `register_action(spec)`, add an example to a template and a test.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

# A value that is either of the given JSON type or a `{{ ... }}` template string.
TEMPLATE_PATTERN = r"^\s*\{\{.*\}\}\s*$"


def _or_template(schema: dict[str, Any], what: str) -> dict[str, Any]:
    return {
        "anyOf": [schema, {"type": "string", "pattern": TEMPLATE_PATTERN}],
        "x-error": f"is not a valid {what} (or a '{{{{ ... }}}}' template)",
    }


_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


@dataclass(frozen=True)
class ActionSpec:
    name: str
    description: str
    params_schema: dict[str, Any]

    @functools.cached_property
    def validator(self) -> Draft202012Validator:
        """The schema's validator, built on first use: checking the ~30 schemas against the JSON Schema
        meta-schema costs ~0.1 s, which every process would pay at start-up (runbooks/tests/test_actions_registry
        checks them all)."""
        Draft202012Validator.check_schema(self.params_schema)
        return Draft202012Validator(self.params_schema)


_REGISTRY: dict[str, ActionSpec] = {}


def register_action(spec: ActionSpec, *, replace: bool = False) -> ActionSpec:
    """Add an action type. Registering a known name again needs `replace=True`."""
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"action {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_action(name: str) -> ActionSpec | None:
    return _REGISTRY.get(name)


def action_names() -> list[str]:
    return sorted(_REGISTRY)


register_action(
    ActionSpec(
        "shell",
        "Run a command (argv list, no shell interpretation); succeeds on an expected exit code.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["argv"],
            "properties": {
                "argv": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                "cwd": {"type": "string"},
                "env": _STRING_MAP,
                "user": {
                    "type": "string",
                    "description": "OS user to run the command as, e.g. postgres (the worker must be root, or that "
                    "user); empty or absent: the worker's own user.",
                },
                "expected_exit_codes": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "integer", "minimum": 0, "maximum": 255},
                },
            },
        },
    )
)
register_action(
    ActionSpec(
        "http",
        "Send an HTTP request; succeeds on the expected status and JSON checks.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "properties": {
                "method": {"enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]},
                "url": {"type": "string", "pattern": r"^(https?://|\s*\{\{)"},
                "headers": _STRING_MAP,
                "body": {"type": ["string", "object", "array", "null"]},
                "expected_status": {
                    "anyOf": [
                        {"type": "integer", "minimum": 100, "maximum": 599},
                        {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "integer", "minimum": 100, "maximum": 599},
                        },
                    ],
                    "x-error": "is not a valid HTTP status or list of statuses (100-599)",
                },
                "json_checks": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["path"],
                        "properties": {
                            "path": {"type": "string", "minLength": 1},
                            "equals": {},
                            "exists": {"type": "boolean"},
                        },
                    },
                },
                "verify_tls": {"type": "boolean"},
                "follow_redirects": {"type": "boolean"},
            },
        },
    )
)
register_action(
    ActionSpec(
        "tcp",
        "Open a TCP connection; succeeds if the port is (or, with expect: unreachable, is not) reachable.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["host", "port"],
            "properties": {
                "host": {"type": "string", "minLength": 1},
                "port": _or_template({"type": "integer", "minimum": 1, "maximum": 65535}, "port (1-65535)"),
                "expect": {"enum": ["reachable", "unreachable"]},
                "connect_timeout": {"type": "number", "exclusiveMinimum": 0},
            },
        },
    )
)
register_action(
    ActionSpec(
        "sql",
        "Run a query with a DSN from the secret store; succeeds if the result meets `expect`.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["dsn_secret", "query"],
            "properties": {
                "dsn_secret": {"type": "string", "minLength": 1},
                "query": {"type": "string", "minLength": 1},
                "expect": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "row_count": {"type": "integer", "minimum": 0},
                        "value": {},
                        "min_value": {"type": "number"},
                        "max_value": {"type": "number"},
                    },
                },
            },
        },
    )
)
register_action(
    ActionSpec(
        "wait",
        "Pause for a number of seconds (e.g. to let DNS TTLs expire).",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["seconds"],
            "properties": {
                "seconds": _or_template({"type": "integer", "minimum": 0, "maximum": 86400}, "number of seconds")
            },
        },
    )
)
register_action(
    ActionSpec(
        "manual",
        "A person follows the instructions and confirms completion.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["instructions"],
            "properties": {
                "instructions": {"type": "string", "minLength": 1},
                "checklist": {"type": "array", "items": {"type": "string", "minLength": 1}},
            },
        },
    )
)
register_action(
    ActionSpec(
        "noop",
        "Does nothing; a marker or join point in the graph.",
        {"type": "object", "additionalProperties": False, "properties": {"message": {"type": "string"}}},
    )
)
register_action(
    ActionSpec(
        "python",
        "Call a Python function by dotted path with keyword arguments.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["callable"],
            "properties": {
                "callable": {"type": "string", "pattern": r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$"},
                "kwargs": {"type": "object"},
            },
        },
    )
)

# The infrastructure actions (PostgreSQL, Redis, SSH, AWS) register themselves from their own modules.
from runbooks import action_schemas  # noqa: E402, F401
