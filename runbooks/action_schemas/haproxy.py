"""Parameter schemas of the haproxy actions (registered on import); executor in failover/engine/actions/haproxy.py.

They speak HAProxy's runtime API (the `stats socket ... level admin` of its configuration): a unix socket
path or a TCP address `host:port`, given as `runtime_api` in the step or, when it should not live in the
runbook, by the name of a secret holding it (`runtime_api_secret`). Exactly one of the two.
"""

from __future__ import annotations

from typing import Any

from runbooks.actions import ActionSpec, _or_template, register_action

NAME = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"^[^\s/;#]+$|^\s*\{\{.*\}\}\s*$"}
RUNTIME_API = {
    "type": "string",
    "minLength": 1,
    "maxLength": 1024,
    "description": "HAProxy's runtime API: a unix socket path (/run/haproxy/admin.sock) or host:port.",
}
RUNTIME_API_SECRET = {
    "type": "string",
    "minLength": 1,
    "description": "Name of the secret holding the runtime API's socket path or host:port.",
}
WEIGHT = _or_template({"type": "integer", "minimum": 0, "maximum": 256}, "weight (0-256)")
CONNECTION: dict[str, Any] = {"runtime_api": RUNTIME_API, "runtime_api_secret": RUNTIME_API_SECRET}
ONE_CONNECTION = {"oneOf": [{"required": ["runtime_api"]}, {"required": ["runtime_api_secret"]}]}


def _schema(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": {**CONNECTION, **properties},
        **ONE_CONNECTION,
    }


register_action(
    ActionSpec(
        "haproxy.set_weight",
        "Set the weights of servers of an HAProxy backend (runtime API `set weight`); raised weights first, so "
        "the backend never has fewer servers taking traffic than before or after. Optionally waits until the "
        "backend's servers report them.",
        _schema(
            ["backend", "weights"],
            {
                "backend": {**NAME, "description": "The backend's name."},
                "weights": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 64,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["server", "weight"],
                        "properties": {"server": {**NAME, "description": "The server's name."}, "weight": WEIGHT},
                    },
                    "description": "The servers' new weights (0-256; 0 takes no new traffic), each server once.",
                },
            },
        ),
    )
)
register_action(
    ActionSpec(
        "haproxy.set_state",
        "Set an HAProxy server's administrative state (runtime API `set server ... state`): ready, drain (no new "
        "traffic; with wait_drained, until its current sessions end) or maint.",
        _schema(
            ["backend", "server", "state"],
            {
                "backend": {**NAME, "description": "The backend's name."},
                "server": {**NAME, "description": "The server's name in the backend."},
                "state": {"enum": ["ready", "drain", "maint"]},
                "wait_drained": {
                    "type": "boolean",
                    "description": "After drain or maint: wait until the server has no current session or queue.",
                },
            },
        ),
    )
)
register_action(
    ActionSpec(
        "haproxy.server_status",
        "Read the servers of an HAProxy backend (runtime API `show stat`): status, weight, current and total "
        "sessions; optionally fail unless a server has the expected status or weight.",
        _schema(
            ["backend"],
            {
                "backend": {**NAME, "description": "The backend's name."},
                "server": {**NAME, "description": "Only this server (expect_* apply to it)."},
                "expect_status": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"enum": ["UP", "DOWN", "DRAIN", "MAINT", "NOLB", "no check"]},
                    "description": "Fail unless the server's status (without HAProxy's transition suffix) is one "
                    "of these.",
                },
                "expect_weight": WEIGHT,
            },
        )
        | {"dependentRequired": {"expect_status": ["server"], "expect_weight": ["server"]}},
    )
)
