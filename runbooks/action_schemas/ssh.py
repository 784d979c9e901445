"""Parameter schemas of the ssh actions (registered on import); the executor is failover/engine/actions/ssh.py.

The connection parameters are shared: an action that runs something on another host over SSH (e.g. a
PostgreSQL rewind on the node that holds the data) takes the same ones, as `ssh_connection_schema()`
(an object, e.g. under an `ssh:` parameter) or merged into its own with `SSH_CONNECTION_PROPERTIES`,
`SSH_CONNECTION_REQUIRED` and `ONE_SSH_CREDENTIAL`, and passes them to `failover.engine.actions.ssh.run_remote`.
"""

from __future__ import annotations

from typing import Any

from runbooks.actions import ActionSpec, _or_template, register_action

_SECRET_NAME = {"type": "string", "minLength": 1}

SSH_CONNECTION_PROPERTIES: dict[str, Any] = {
    "host": {"type": "string", "minLength": 1},
    "port": _or_template({"type": "integer", "minimum": 1, "maximum": 65535}, "port (1-65535)"),
    "username": {"type": "string", "minLength": 1},
    "known_hosts_secret": {
        **_SECRET_NAME,
        "description": "Secret holding known_hosts lines with the host's key ('[host]:port key' or 'host key').",
    },
    "key_secret": {**_SECRET_NAME, "description": "Secret holding an unencrypted private key (OpenSSH or PEM)."},
    "password_secret": {**_SECRET_NAME, "description": "Secret holding the password (instead of key_secret)."},
    "connect_timeout": {"type": "number", "exclusiveMinimum": 0, "description": "Seconds (default 10)."},
}
SSH_CONNECTION_REQUIRED = ["host", "username", "known_hosts_secret"]
# Exactly one credential; a parameter object that uses this must not have another top-level oneOf.
ONE_SSH_CREDENTIAL: dict[str, Any] = {
    "oneOf": [{"required": ["key_secret"]}, {"required": ["password_secret"]}],
    "x-error": "needs exactly one of key_secret and password_secret",
}


def ssh_connection_schema(**properties: Any) -> dict[str, Any]:
    """A strict object schema of the SSH connection parameters, plus `properties`."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(SSH_CONNECTION_REQUIRED),
        "properties": {**SSH_CONNECTION_PROPERTIES, **properties},
        **ONE_SSH_CREDENTIAL,
    }


_run_schema = ssh_connection_schema(
    argv={"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
    cwd={"type": "string", "minLength": 1},
    env={
        "type": "object",
        "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
        "additionalProperties": {"type": "string"},
    },
    expected_exit_codes={"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0, "maximum": 255}},
)
_run_schema["required"].append("argv")

register_action(
    ActionSpec(
        "ssh.run",
        "Run a command (argv list, each element quoted for the remote shell) on a host over SSH; the host key "
        "is checked against a known_hosts secret; succeeds on an expected exit code.",
        _run_schema,
    )
)
