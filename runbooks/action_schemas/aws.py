"""Parameter schemas of the aws actions (registered on import).

Every aws action names a secret (`credentials_secret`) whose value is a JSON object with the region and
the credentials (see failover/engine/actions/aws.py); nothing about the account is written in the runbook.
"""

from runbooks.actions import ActionSpec, _or_template, register_action

_SECRET = {"type": "string", "minLength": 1}
_POLL = {"type": "number", "exclusiveMinimum": 0, "maximum": 300}
_INSTANCE_IDS = _or_template(
    {
        "type": "array",
        "minItems": 1,
        "maxItems": 100,
        "items": {"type": "string", "pattern": r"^(i-[0-9a-f]{8,17}|\s*\{\{.*\}\}\s*)$"},
    },
    "list of instance ids (i-…)",
)

register_action(
    ActionSpec(
        "aws.route53_failover",
        "Point a Route 53 record (A/AAAA/CNAME, or an alias) at the DR target (UPSERT) and wait until the change "
        "is INSYNC; outputs the change id and the previous value.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["credentials_secret", "hosted_zone_id", "record_name", "record_type"],
            "oneOf": [{"required": ["values"]}, {"required": ["alias_target"]}],
            "x-error": "needs exactly one of values (the record's addresses or name) and alias_target",
            "properties": {
                "credentials_secret": _SECRET,
                "hosted_zone_id": {"type": "string", "minLength": 1},
                "record_name": {"type": "string", "minLength": 1},
                "record_type": {"enum": ["A", "AAAA", "CNAME"]},
                "values": _or_template(
                    {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string", "minLength": 1}},
                    "list of values",
                ),
                "ttl": _or_template({"type": "integer", "minimum": 0, "maximum": 2147483647}, "TTL in seconds"),
                "alias_target": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["hosted_zone_id", "dns_name"],
                    "properties": {
                        "hosted_zone_id": {"type": "string", "minLength": 1},
                        "dns_name": {"type": "string", "minLength": 1},
                        "evaluate_target_health": {"type": "boolean"},
                    },
                },
                "comment": {"type": "string", "maxLength": 256},
                "poll_seconds": _POLL,
            },
        },
    )
)
register_action(
    ActionSpec(
        "aws.ec2_start",
        "Start EC2 instances and wait until every one is running; outputs their states and IP addresses.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["credentials_secret", "instance_ids"],
            "properties": {"credentials_secret": _SECRET, "instance_ids": _INSTANCE_IDS, "poll_seconds": _POLL},
        },
    )
)
register_action(
    ActionSpec(
        "aws.ec2_stop",
        "Stop EC2 instances and wait until every one is stopped (force: without a clean OS shutdown).",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["credentials_secret", "instance_ids"],
            "properties": {
                "credentials_secret": _SECRET,
                "instance_ids": _INSTANCE_IDS,
                "force": {"type": "boolean"},
                "poll_seconds": _POLL,
            },
        },
    )
)
register_action(
    ActionSpec(
        "aws.rds_promote_read_replica",
        "Promote an RDS read replica to a standalone primary and wait until it is available "
        "(an instance that is no longer a replica is reported, not promoted twice).",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["credentials_secret", "db_instance_identifier"],
            "properties": {
                "credentials_secret": _SECRET,
                "db_instance_identifier": {"type": "string", "minLength": 1, "maxLength": 63},
                "backup_retention_period": _or_template(
                    {"type": "integer", "minimum": 0, "maximum": 35}, "number of days (0-35)"
                ),
                "poll_seconds": _POLL,
            },
        },
    )
)
_PROPERTY_CHECK = {
    "type": "object",
    "additionalProperties": False,
    "required": ["selector", "values"],
    "properties": {
        "selector": {
            "type": "string",
            "pattern": r"^\$",
            "description": "JSON path into the response, e.g. $.DBClusters[0].Status.",
        },
        "values": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string"}},
    },
}
register_action(
    ActionSpec(
        "aws.call",
        "Call any AWS API operation (service, operation, parameters); outputs values of the response picked by JSON "
        "path. With wait_for, repeat the call until a property has one of the desired values; with expect, fail "
        "unless it has one.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["credentials_secret", "service", "operation"],
            "not": {"required": ["wait_for", "expect"]},
            "properties": {
                "credentials_secret": _SECRET,
                "service": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9-]*$", "description": "e.g. rds, ec2, s3."},
                "operation": {
                    "type": "string",
                    "pattern": r"^[A-Z][A-Za-z0-9]*$",
                    "description": "The API operation, e.g. FailoverDBCluster.",
                },
                "parameters": {"type": "object", "description": "The operation's request parameters."},
                "outputs": {
                    "type": "array",
                    "maxItems": 50,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "selector"],
                        "properties": {
                            "name": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                            "selector": {"type": "string", "pattern": r"^\$"},
                            "type": {"enum": ["String", "Integer", "Boolean", "StringList", "MapList", "StringMap"]},
                        },
                    },
                },
                "wait_for": _PROPERTY_CHECK,
                "expect": _PROPERTY_CHECK,
                "poll_seconds": _POLL,
            },
        },
    )
)
