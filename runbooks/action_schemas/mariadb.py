"""Parameter schemas of the mariadb actions (registered on import); executor in failover/engine/actions/mariadb.py.

A server is named by a secret holding its DSN, `mysql://user:password@host:port/db` (or `mariadb://`), never by a
DSN in the runbook: `dsn_secret: orders-dr-dsn`.
"""

from __future__ import annotations

from runbooks.actions import ActionSpec, _or_template, register_action

DSN_SECRET = {
    "type": "string",
    "minLength": 1,
    "description": "Name of the secret holding the server's DSN, mysql://user:password@host:port/db.",
}
SECONDS = _or_template({"type": "integer", "minimum": 0, "maximum": 86400}, "number of seconds")

register_action(
    ActionSpec(
        "mariadb.replication_status",
        "Read a MariaDB server's replication state: role, IO/SQL threads running, lag in seconds, GTID positions, "
        "read_only; optionally fail unless it has a role or is within a lag.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["dsn_secret"],
            "properties": {
                "dsn_secret": DSN_SECRET,
                "expect_role": {"enum": ["primary", "replica"], "description": "Fail unless the server has this role."},
                "max_lag_seconds": {
                    **SECONDS,
                    "description": "Fail unless it is a replica with both threads running and at most this lag.",
                },
            },
        },
    )
)
register_action(
    ActionSpec(
        "mariadb.promote",
        "Promote a MariaDB replica: stop fetching, apply what it already received, STOP SLAVE, RESET SLAVE ALL, "
        "read_only OFF. A server that is no replica is reported and left as it is.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["dsn_secret"],
            "properties": {
                "dsn_secret": DSN_SECRET,
                "primary_dsn_secret": {
                    "type": "string",
                    "minLength": 1,
                    "description": "The old primary's DSN secret: its GTID position, if it still answers, "
                    "measures the transactions the replica lacks.",
                },
            },
        },
    )
)
register_action(
    ActionSpec(
        "mariadb.set_read_only",
        "Set a MariaDB server's read_only (fence an old primary: ON; open a new one: OFF), and check it took.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["dsn_secret", "read_only"],
            "properties": {
                "dsn_secret": DSN_SECRET,
                "read_only": {"type": "boolean"},
            },
        },
    )
)
register_action(
    ActionSpec(
        "mariadb.check_writable",
        "Check a MariaDB server takes writes: write a row (id 1, the time) into a heartbeat table, created if "
        "missing, and read it back. Use the application's own user: read_only stops it, not an admin.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["dsn_secret", "table"],
            "properties": {
                "dsn_secret": DSN_SECRET,
                "table": {
                    "type": "string",
                    "pattern": r"^[A-Za-z0-9_]{1,64}(\.[A-Za-z0-9_]{1,64})?$|^\s*\{\{.*\}\}\s*$",
                    "description": "The heartbeat table, db.table or table (in the DSN's database).",
                },
            },
        },
    )
)
