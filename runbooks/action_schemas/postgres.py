"""Parameter schemas of the postgres actions (registered on import). Executors: failover/engine/actions/
postgres.py (SQL) and postgres_rebuild.py (programs run on the node). Documented in docs/actions.md."""

from __future__ import annotations

from typing import Any

from runbooks.action_schemas.ssh import ssh_connection_schema
from runbooks.actions import ActionSpec, _or_template, register_action

_LSN = r"^(\s*\{\{.*\}\}\s*|[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8})$"
_PATH = r"^(/|\s*\{\{)"  # absolute, or a template


def _secret(what: str) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "description": f"Name of the secret holding the DSN of {what} (postgresql:// URI or key=value conninfo).",
    }


def _seconds(description: str, minimum: float = 0) -> dict[str, Any]:
    return {
        **_or_template({"type": "number", "minimum": minimum}, "number of seconds"),
        "description": description,
    }


CONNECT_TIMEOUT = {
    **_or_template({"type": "number", "exclusiveMinimum": 0}, "number of seconds"),
    "description": "Seconds to wait for a connection (default 10, never beyond the step's timeout).",
}
PG_BIN_DIR = {
    "type": "string",
    "pattern": _PATH,
    "description": "Directory of the PostgreSQL programs, e.g. /usr/lib/postgresql/16/bin (default: PATH).",
}
RUN_ON = {
    "type": "object",
    "additionalProperties": False,
    "required": ["ssh"],
    "properties": {"ssh": ssh_connection_schema()},
    "description": "Where the programs run: absent, the DRPlan worker's machine; {ssh: {host, port, username, "
    "known_hosts_secret, key_secret | password_secret, connect_timeout}} (as ssh.run): that host over SSH, as "
    "the login user.",
}
OS_USER = {
    "type": "string",
    "minLength": 1,
    "description": "OS user the programs run as, e.g. postgres (the worker must be root, or that user).",
}


def _spec(name: str, description: str, properties: dict[str, Any], required: list[str]) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": required, "properties": properties}
    register_action(ActionSpec(name, description, schema))


_spec(
    "postgres.replication_status",
    "Role and replication of one PostgreSQL server: a standby's received/replayed LSNs, lag and last replayed "
    "transaction; a primary's standbys (pg_stat_replication) with their state and lag.",
    {"dsn_secret": _secret("the server"), "connect_timeout": CONNECT_TIMEOUT},
    ["dsn_secret"],
)
_spec(
    "postgres.check_lag",
    "Fail if replication lag is above a threshold in seconds and/or bytes (on a standby: its own lag; on a "
    "primary: every standby's, or the one named).",
    {
        "dsn_secret": _secret("the standby (or the primary)"),
        "max_lag_seconds": _seconds("Fail above this lag in seconds, e.g. {{ plan.rpo_seconds }}."),
        "max_lag_bytes": {
            **_or_template({"type": "integer", "minimum": 0}, "number of bytes"),
            "description": "Fail above this lag in bytes of WAL.",
        },
        "standby": {
            "type": "string",
            "minLength": 1,
            "description": "On a primary: check only the standby with this application_name.",
        },
        "connect_timeout": CONNECT_TIMEOUT,
    },
    ["dsn_secret"],
)
_spec(
    "postgres.fence",
    "Stop writes on the old primary by SQL: default_transaction_read_only = on (ALTER SYSTEM, reload), then "
    "terminate client sessions; reports its end LSN. lift: true undoes it.",
    {
        "dsn_secret": _secret("the old primary"),
        "if_unreachable": {
            "enum": ["fail", "continue"],
            "description": "continue: succeed, reporting it was not fenced, when it does not answer (fence it with "
            "a command step then). Default fail.",
        },
        "lift": {
            "type": "boolean",
            "description": "Undo a fence (reset default_transaction_read_only), e.g. in a rollback.",
        },
        "connect_timeout": CONNECT_TIMEOUT,
    },
    ["dsn_secret"],
)
_spec(
    "postgres.promote",
    "Promote a standby: pg_promote(wait => true). A node that is already primary is reported "
    "(already_primary: true), not promoted again.",
    {
        "dsn_secret": _secret("the standby"),
        "wait_seconds": _seconds(
            "How long pg_promote() waits for the promotion (default 60, within the step's timeout).", 1
        ),
        "connect_timeout": CONNECT_TIMEOUT,
    },
    ["dsn_secret"],
)
_spec(
    "postgres.wait_writable",
    "Wait (within the step's timeout) until the server accepts writes: out of recovery and not read-only.",
    {"dsn_secret": _secret("the server"), "connect_timeout": CONNECT_TIMEOUT},
    ["dsn_secret"],
)
_spec(
    "postgres.switchover",
    "Planned switchover without loss: fence the primary, wait until the standby has replayed its last WAL, "
    "promote the standby. If it does not catch up within max_wait_seconds: no promotion, the fence is lifted.",
    {
        "primary_dsn_secret": _secret("the current primary"),
        "standby_dsn_secret": _secret("the standby to promote"),
        "max_wait_seconds": _seconds("How long the standby may take to catch up (default 60)."),
        "wait_seconds": _seconds("How long pg_promote() waits (default 60).", 1),
        "connect_timeout": CONNECT_TIMEOUT,
    },
    ["primary_dsn_secret", "standby_dsn_secret"],
)
_spec(
    "postgres.data_loss",
    "What the new primary lacks: the old primary's end LSN against what the standby had when promoted, and, "
    "when the old primary's WAL is readable (wal_dir), the transactions and time span lost (pg_waldump).",
    {
        "dsn_secret": _secret("the new primary (it knows where it was promoted)"),
        "standby_lsn": {
            "type": "string",
            "pattern": _LSN,
            "description": "Instead of asking the new primary: its LSN when promoted, e.g. "
            "{{ steps.promote.output.promoted_at_lsn }}.",
        },
        "old_primary_end_lsn": {
            "type": "string",
            "pattern": _LSN,
            "description": "The old primary's end of WAL, e.g. {{ steps.fence.output.end_lsn }}.",
        },
        "wal_dir": {
            "type": "string",
            "pattern": _PATH,
            "description": "The old primary's pg_wal directory, read with pg_waldump on the machine that has it.",
        },
        "timeline": {
            **_or_template({"type": "integer", "minimum": 1}, "timeline"),
            "description": "The old primary's timeline (default: the newest in wal_dir).",
        },
        "pg_bin_dir": PG_BIN_DIR,
        "os_user": OS_USER,
        "run_on": RUN_ON,
        "connect_timeout": CONNECT_TIMEOUT,
    },
    [],
)

_REBUILD = {
    "data_dir": {
        "type": "string",
        "pattern": _PATH,
        "description": "The node's data directory (absolute), e.g. /var/lib/postgresql/16/main.",
    },
    "source_dsn_secret": _secret("the new primary (copied from, and streamed from afterwards)"),
    "os_user": OS_USER,
    "pg_bin_dir": PG_BIN_DIR,
    "run_on": RUN_ON,
    "max_rate": {
        "type": "string",
        "pattern": r"^[0-9]+[kM]?$",
        "description": "pg_basebackup --max-rate, e.g. 100M (default: no limit).",
    },
    "start": {"type": "boolean", "description": "Start the server as a standby afterwards (default false)."},
    "start_argv": {
        "type": "array",
        "minItems": 1,
        "items": {"type": "string", "minLength": 1},
        "description": "How to start it (default pg_ctl start -D DATA_DIR -w -l DATA_DIR/startup.log), e.g. "
        "systemctl start postgresql@16-main.",
    },
    "port": {
        **_or_template({"type": "integer", "minimum": 1, "maximum": 65535}, "port (1-65535)"),
        "description": "For the default start: the port, when postgresql.conf sets none (PGPORT).",
    },
    "log_file": {"type": "string", "pattern": _PATH, "description": "For the default start: pg_ctl's log file."},
    "connect_timeout": CONNECT_TIMEOUT,
}
_spec(
    "postgres.rewind",
    "Make the old primary a standby of the new one: stop it, pg_rewind from the new primary (else, with "
    "fallback: basebackup, a fresh pg_basebackup, the old directory kept aside), standby.signal and "
    "primary_conninfo; optionally start it. Runs on the node that holds the data.",
    {
        **_REBUILD,
        "fallback": {
            "enum": ["basebackup", "fail"],
            "description": "When pg_rewind fails: take a fresh base backup (default) or fail.",
        },
    },
    ["data_dir", "source_dsn_secret"],
)
_spec(
    "postgres.rebuild_standby",
    "Rebuild a standby from the new primary: stop it, pg_basebackup into a fresh directory (the old one kept "
    "aside), standby.signal and primary_conninfo; optionally start it. Runs on the node that holds the data.",
    _REBUILD,
    ["data_dir", "source_dsn_secret"],
)
