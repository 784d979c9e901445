"""Parameter schemas of the redis actions (registered on import); executors in failover/engine/actions/.

A node is named by a secret holding its URL (`redis://[[user]:password@]host:port/db`, or `rediss://`), never
by a URL in the runbook: `url_secret: cache-dr-url`.
"""

from __future__ import annotations

from runbooks.actions import ActionSpec, _or_template, register_action

SECRET_NAME = {"type": "string", "minLength": 1}
URL_SECRET = {
    **SECRET_NAME,
    "description": "Name of the secret holding the node's URL, redis://[:password@]host:port/db.",
}
PORT = _or_template({"type": "integer", "minimum": 1, "maximum": 65535}, "port (1-65535)")

register_action(
    ActionSpec(
        "redis.replication_status",
        "Read a Redis node's replication state: role, offsets, replicas with their offsets and lag, link status.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["url_secret"],
            "properties": {
                "url_secret": URL_SECRET,
                "expect_role": {"enum": ["primary", "replica"], "description": "Fail unless the node has this role."},
            },
        },
    )
)
register_action(
    ActionSpec(
        "redis.promote",
        "Promote a Redis replica (REPLICAOF NO ONE), measuring the bytes it lacked; a primary is left as it is.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["url_secret"],
            "properties": {
                "url_secret": URL_SECRET,
                "primary_url_secret": {
                    **SECRET_NAME,
                    "description": "The old primary's URL secret: its offset, if it still answers, measures the loss.",
                },
                "primary_offset": _or_template(
                    {"type": "integer", "minimum": 0}, "replication offset (e.g. from an earlier status step)"
                ),
            },
        },
    )
)
register_action(
    ActionSpec(
        "redis.replicaof",
        "Make a Redis node a replica of host:port (REPLICAOF) and wait until its replication link is up.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["url_secret", "host", "port"],
            "properties": {
                "url_secret": URL_SECRET,
                "host": {"type": "string", "minLength": 1, "description": "The new primary, as the node reaches it."},
                "port": PORT,
            },
        },
    )
)
register_action(
    ActionSpec(
        "redis.failover",
        "Coordinated failover from a Redis primary to a replica (FAILOVER, Redis 6.2+); waits for the roles to swap.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["url_secret"],
            "properties": {
                "url_secret": {**URL_SECRET, "description": "Name of the secret holding the current primary's URL."},
                "to_host": {"type": "string", "minLength": 1, "description": "FAILOVER TO this replica (host)."},
                "to_port": PORT,
                "force": {"type": "boolean", "description": "FORCE: switch after timeout_ms even if not caught up."},
                "timeout_ms": _or_template({"type": "integer", "minimum": 1}, "number of milliseconds"),
                "target_url_secret": {
                    **SECRET_NAME,
                    "description": "The new primary's URL secret: wait for it to be primary, measure the loss.",
                },
            },
            "dependentRequired": {"to_host": ["to_port"], "to_port": ["to_host"]},
            "if": {"properties": {"force": {"const": True}}, "required": ["force"]},
            "then": {"required": ["to_host", "to_port", "timeout_ms"]},
        },
    )
)
