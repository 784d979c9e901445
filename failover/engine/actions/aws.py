"""The aws actions (boto3): point a Route 53 record at the DR target, start and stop EC2 instances, promote
an RDS read replica. Each makes its change, then waits for the new state with its own polling loop.

    action: aws.route53_failover
    with:
      credentials_secret: aws-dr
      hosted_zone_id: Z0123456789ABCDEFGHIJ
      record_name: www.example.com
      record_type: CNAME
      values: ["web-dr-lb-1234567890.eu-west-1.elb.amazonaws.com"]
      ttl: 60

The secret named by `credentials_secret` is a JSON object: aws_access_key_id, aws_secret_access_key,
region_name, and optionally aws_session_token and endpoint_url (an emulator, a VPC endpoint). Nothing else
configures the client: no profile, and no endpoint configured in the worker's environment. The keys never
appear in a log line, an output or an error (the region and the endpoint may). If the secret has allowed
hosts, the endpoint the client resolves must be one of them.

Timeout and cancel: every API call and every wait shares one deadline, the step's timeout (else
DEFAULT_TIMEOUTS); a call runs through run_blocking, the waits sleep on ctx.cancelled, never in a boto3
waiter, so a cancel stops the step at once. A failure names the AWS error code (`NoSuchHostedZone`,
`InvalidInstanceID.NotFound`), or the endpoint that did not answer.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from failover.engine.actions import ActionResult, StepContext, executor
from failover.engine.actions.blocking import run_blocking, step_timeout

DEFAULT_TIMEOUTS = {  # seconds, for a step without a timeout of its own
    "aws.route53_failover": 300.0,
    "aws.ec2_start": 600.0,
    "aws.ec2_stop": 600.0,
    "aws.rds_promote_read_replica": 1800.0,
}
DEFAULT_POLL_SECONDS = 5.0
REQUIRED_KEYS = ("aws_access_key_id", "aws_secret_access_key", "region_name")
OPTIONAL_KEYS = ("aws_session_token", "endpoint_url")
HIDDEN_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
EXPECTED_SECRET = "a JSON object with aws_access_key_id, aws_secret_access_key, region_name (optional: {})".format(
    ", ".join(OPTIONAL_KEYS)
)
MAX_MESSAGE = 500
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
GONE_INSTANCE_STATES = ("shutting-down", "terminated")
GONE_DB_STATES = ("deleting", "failed")


class AwsStepError(Exception):
    """Ends an aws step; the message (never a key) becomes the step's error after the step's name."""


class DeadlinePassed(AwsStepError):
    """A call had no answer before the step's deadline."""


@dataclass(frozen=True, repr=False)
class AwsCredentials:
    secret_name: str
    region_name: str
    endpoint_url: str | None
    keys: dict[str, str]  # aws_access_key_id, aws_secret_access_key, aws_session_token (if any)

    def __repr__(self) -> str:  # never the keys, even in a traceback
        return f"AwsCredentials(secret={self.secret_name!r}, region={self.region_name!r})"


def read_credentials(ctx: StepContext, name: str) -> AwsCredentials:
    """The credentials in the secret `name`; AwsStepError naming the secret (never a value) if it is missing
    or not what an aws action needs."""
    if ctx.secret is None:
        raise AwsStepError(f"no secret store available to read secret '{name}'")
    try:
        raw = ctx.secret(name)
    except Exception as exc:  # InvalidInput "secret 'X' is not defined", or a key that cannot decrypt it
        raise AwsStepError(getattr(exc, "message", None) or f"secret '{name}' cannot be read") from None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise AwsStepError(f"secret '{name}' is not {EXPECTED_SECRET}")
    unknown = sorted(str(k) for k in value if k not in REQUIRED_KEYS + OPTIONAL_KEYS)
    if unknown:
        raise AwsStepError(f"secret '{name}' has unknown keys {', '.join(unknown)} (expected {EXPECTED_SECRET})")
    missing = [k for k in REQUIRED_KEYS if k not in value]
    if missing:
        raise AwsStepError(f"secret '{name}' lacks {', '.join(missing)} (expected {EXPECTED_SECRET})")
    for key, item in value.items():
        if not isinstance(item, str) or not item.strip():
            raise AwsStepError(f"secret '{name}': {key} must be a non-empty string")
    endpoint = value.get("endpoint_url")
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AwsStepError(f"secret '{name}': endpoint_url must be an http:// or https:// URL")
    keys = {k: value[k] for k in HIDDEN_KEYS if k in value}
    return AwsCredentials(name, value["region_name"].strip(), endpoint, keys)


@dataclass
class AwsStep:
    """One run of an aws step: its credentials, its deadline, its calls (each bounded by the deadline and
    stopped by a cancel) and its waits. Whatever the step learnt goes to `output`, also when it fails."""

    ctx: StepContext
    credentials: AwsCredentials
    timeout: float
    poll_seconds: float
    deadline: float = 0.0
    output: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def hide(self, text: str) -> str:
        """The text without any key of the secret, and not too long."""
        for value in self.credentials.keys.values():
            text = text.replace(value, "***")
        return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"

    def log(self, line: str) -> None:
        self.ctx.log(self.hide(line))

    def client(self, service: str) -> Any:
        """A boto3 client for `service` configured only from the secret; refused if the secret's allowed
        hosts do not include its endpoint."""
        credentials = self.credentials
        config = Config(
            connect_timeout=max(1.0, min(10.0, self.timeout)),
            read_timeout=max(1.0, min(60.0, self.timeout)),
            retries={"mode": "standard", "total_max_attempts": 3},
            ignore_configured_endpoint_urls=True,  # AWS_ENDPOINT_URL* of the worker must not redirect the keys
        )

        def make() -> Any:
            session = boto3.session.Session(region_name=credentials.region_name, **credentials.keys)
            return session.client(service, endpoint_url=credentials.endpoint_url, config=config)

        client = self._blocking(f"creating the {service} client", make)
        endpoint = client.meta.endpoint_url
        parts = urlsplit(endpoint)
        refused = self.ctx.refuse_host(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        if refused:
            raise AwsStepError(f"{service} endpoint {endpoint}: {refused}")
        self.log(f"{service}: region {credentials.region_name}, endpoint {endpoint}")
        return client

    def call(self, client: Any, method: str, **kwargs: Any) -> dict[str, Any]:
        """client.method(**kwargs) within the step's deadline; AwsStepError with the AWS error code on failure."""
        operation = client.meta.method_to_api_mapping.get(method, method)
        endpoint = client.meta.endpoint_url
        return self._blocking(f"{operation} to {endpoint}", lambda: getattr(client, method)(**kwargs), operation)

    def _blocking(self, what: str, call: Callable[[], Any], operation: str = "") -> Any:
        if self.remaining() <= 0:
            raise AwsStepError(f"timed out after {self.timeout:g}s before {what}")
        outcome = run_blocking(call, self.ctx, self.remaining())
        if outcome.stopped == "cancelled":
            raise AwsStepError(f"cancelled during {what}")
        if outcome.stopped:
            raise DeadlinePassed(f"{what}: no answer within the step's timeout ({self.timeout:g}s)")
        exc = outcome.exception
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = error.get("Code") or "UnknownError"
            raise AwsStepError(self.hide(f"{operation or what}: {code}: {error.get('Message') or exc}"))
        if exc is not None:
            raise AwsStepError(self.hide(f"{what}: {type(exc).__name__}: {exc}"))
        return outcome.value

    def wait(
        self, what: str, check: Callable[[], tuple[bool, str]], *, pause_first: bool = False, state: str = "unknown"
    ) -> str:
        """Call `check` (done?, the state in words) every poll_seconds until it is done; AwsStepError when the
        deadline passes or the step is cancelled first. Logs each new state. With pause_first, the first call
        comes after one poll interval (`state`: what is known until then)."""
        started = time.monotonic()
        last = state
        if pause_first:
            self._pause(what, state)
        while True:
            try:
                done, state = check()
            except DeadlinePassed:  # the deadline came while a poll was under way: the wait timed out
                raise AwsStepError(f"timed out after {self.timeout:g}s waiting for {what} (last: {state})") from None
            if state != last:
                self.log(f"{what}: {state}")
                last = state
            if done:
                self.output["waited_seconds"] = round(time.monotonic() - started, 2)
                return state
            self._pause(what, state)

    def _pause(self, what: str, state: str) -> None:
        """Sleep one poll interval (less if the deadline is nearer), waking up at once on a cancel."""
        pause = min(self.poll_seconds, self.remaining())
        if pause > 0 and self.ctx.cancelled.wait(pause):
            raise AwsStepError(f"cancelled while waiting for {what} (last: {state})")
        if self.remaining() <= 0:
            raise AwsStepError(f"timed out after {self.timeout:g}s waiting for {what} (last: {state})")


def _run(
    action: str, target: str, params: dict[str, Any], ctx: StepContext, body: Callable[[AwsStep], None]
) -> ActionResult:
    """Read the credentials, run `body` and turn an AwsStepError into a failed result naming the target."""
    try:
        credentials = read_credentials(ctx, str(params.get("credentials_secret") or ""))
    except AwsStepError as exc:
        return ActionResult(False, error=f"{target}: {exc}")
    step = AwsStep(
        ctx,
        credentials,
        timeout=step_timeout(ctx, DEFAULT_TIMEOUTS[action]),
        poll_seconds=float(params.get("poll_seconds") or DEFAULT_POLL_SECONDS),
    )
    try:
        body(step)
    except AwsStepError as exc:
        return ActionResult(False, output=step.output, error=f"{target}: {exc}")
    return ActionResult(True, output=step.output)


# --- Route 53 ---------------------------------------------------------------------------------------------


def _fqdn(name: str) -> str:
    """Lower case, with the final dot; Route 53's octal escapes (\\052 for *) decoded."""
    name = re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1), 8)), name.strip())
    return name.lower().rstrip(".") + "."


def _record_value(record: dict[str, Any]) -> dict[str, Any]:
    if "AliasTarget" in record:
        alias = record["AliasTarget"]
        return {
            "alias_target": {
                "hosted_zone_id": alias["HostedZoneId"],
                "dns_name": alias["DNSName"],
                "evaluate_target_health": bool(alias.get("EvaluateTargetHealth", False)),
            }
        }
    return {"values": [r["Value"] for r in record.get("ResourceRecords", [])], "ttl": record.get("TTL")}


def _record_set(params: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    """The ResourceRecordSet to UPSERT, checked before any call (AwsStepError says what is wrong)."""
    record: dict[str, Any] = {"Name": name, "Type": kind}
    alias = params.get("alias_target")
    values = params.get("values")
    if (alias is None) == (values is None):
        raise AwsStepError("give exactly one of values and alias_target")
    if alias is not None:
        if params.get("ttl") is not None:
            raise AwsStepError("ttl does not apply to an alias_target (the target's TTL is used)")
        record["AliasTarget"] = {
            "HostedZoneId": str(alias["hosted_zone_id"]).strip(),
            "DNSName": str(alias["dns_name"]).strip(),
            "EvaluateTargetHealth": bool(alias.get("evaluate_target_health", False)),
        }
        return record
    values = [values] if isinstance(values, str) else list(values)
    values = [str(v).strip() for v in values]
    if not values or not all(values):
        raise AwsStepError("values must be a non-empty list of non-empty strings")
    if kind == "CNAME" and len(values) != 1:
        raise AwsStepError(f"a CNAME record has exactly one value, not {len(values)}")
    for value in values:
        if kind in ("A", "AAAA"):
            try:
                address = ipaddress.ip_address(value)
            except ValueError:
                address = None
            if address is None or address.version != (4 if kind == "A" else 6):
                raise AwsStepError(f"{value!r} is not an IPv{4 if kind == 'A' else 6} address (record type {kind})")
    try:
        ttl = int(params.get("ttl", 60))
    except (TypeError, ValueError):
        raise AwsStepError(f"ttl {params.get('ttl')!r} is not a number") from None
    record["TTL"] = ttl
    record["ResourceRecords"] = [{"Value": v} for v in values]
    return record


@executor("aws.route53_failover")
def run_route53_failover(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    name = _fqdn(str(params.get("record_name") or ""))
    kind = str(params.get("record_type") or "")
    zone = str(params.get("hosted_zone_id") or "").strip().removeprefix("/hostedzone/")
    target = f"aws.route53_failover {name} {kind}"
    try:
        if kind not in ("A", "AAAA", "CNAME") or name == "." or not zone:
            raise AwsStepError("record_type must be A, AAAA or CNAME; record_name and hosted_zone_id non-empty")
        record = _record_set(params, name, kind)
    except AwsStepError as exc:
        return ActionResult(False, error=f"{target}: {exc}")

    def body(step: AwsStep) -> None:
        route53 = step.client("route53")
        found = step.call(
            route53,
            "list_resource_record_sets",
            HostedZoneId=zone,
            StartRecordName=name,
            StartRecordType=kind,
            MaxItems="1",
        )
        previous = next(
            (r for r in found.get("ResourceRecordSets", []) if _fqdn(r["Name"]) == name and r["Type"] == kind), None
        )
        if previous is not None and previous.get("SetIdentifier"):
            raise AwsStepError(
                f"the record has a routing policy (set identifier {previous['SetIdentifier']!r}): not supported"
            )
        current = _record_value(record)
        step.output.update(
            hosted_zone_id=zone,
            record_name=name,
            record_type=kind,
            previous=_record_value(previous) if previous is not None else None,
            current=current,
            changed=previous is None or _record_value(previous) != current,
        )
        batch: dict[str, Any] = {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]}
        if params.get("comment"):
            batch["Comment"] = str(params["comment"])
        answer = step.call(route53, "change_resource_record_sets", HostedZoneId=zone, ChangeBatch=batch)
        change_id = answer["ChangeInfo"]["Id"].removeprefix("/change/")
        step.output.update(change_id=change_id, status=answer["ChangeInfo"]["Status"])
        step.log(f"UPSERT {name} {kind} in zone {zone}: change {change_id} {answer['ChangeInfo']['Status']}")

        def check() -> tuple[bool, str]:
            status = step.call(route53, "get_change", Id=change_id)["ChangeInfo"]["Status"]
            step.output["status"] = status
            return status == "INSYNC", status

        step.wait(f"change {change_id} to be INSYNC", check)

    return _run("aws.route53_failover", target, params, ctx, body)


# --- EC2 --------------------------------------------------------------------------------------------------


def _instance_ids(params: dict[str, Any]) -> list[str]:
    ids = params.get("instance_ids")
    ids = [ids] if isinstance(ids, str) else list(ids or [])
    ids = list(dict.fromkeys(str(i).strip() for i in ids))
    bad = [i for i in ids if not INSTANCE_ID.match(i)]
    if not ids or bad:
        raise AwsStepError(
            f"instance_ids must be instance ids (i-…): {', '.join(repr(b) for b in bad) or 'none given'}"
        )
    return ids


def _describe_instances(step: AwsStep, ec2: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    answer = step.call(ec2, "describe_instances", InstanceIds=ids)
    found = {}
    for reservation in answer.get("Reservations", []):
        for instance in reservation.get("Instances", []):
            found[instance["InstanceId"]] = {
                "state": instance["State"]["Name"],
                "reason": (instance.get("StateReason") or {}).get("Message", ""),
                "private_ip": instance.get("PrivateIpAddress"),
                "public_ip": instance.get("PublicIpAddress"),
            }
    missing = [i for i in ids if i not in found]
    if missing:
        raise AwsStepError(f"DescribeInstances: {', '.join(missing)} not found")
    return found


def _states_text(ids: list[str], states: dict[str, dict[str, Any]]) -> str:
    parts = [f"{i} {states[i]['state']}" for i in ids[:10]]
    return ", ".join(parts) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")


def _record_instances(step: AwsStep, ids: list[str], states: dict[str, dict[str, Any]], before: dict[str, Any]) -> None:
    step.output["instances"] = [
        {
            "instance_id": i,
            "previous_state": before[i]["state"],
            "state": states[i]["state"],
            "private_ip": states[i]["private_ip"],
            "public_ip": states[i]["public_ip"],
        }
        for i in ids
    ]
    step.output["private_ips"] = [states[i]["private_ip"] for i in ids if states[i]["private_ip"]]
    step.output["public_ips"] = [states[i]["public_ip"] for i in ids if states[i]["public_ip"]]


def _refuse_gone(ids: list[str], states: dict[str, dict[str, Any]], wanted: str) -> None:
    gone = [f"{i} is {states[i]['state']}" for i in ids if states[i]["state"] in GONE_INSTANCE_STATES]
    if gone:
        raise AwsStepError(f"{'; '.join(gone)}: it will never be {wanted}")


def _ec2_change(params: dict[str, Any], ctx: StepContext, action: str, wanted: str) -> ActionResult:
    """Start (wanted "running") or stop ("stopped") the instances that are not in that state yet, then wait
    until all are; an instance shutting down or terminated fails the step at once."""
    try:
        ids = _instance_ids(params)
    except AwsStepError as exc:
        return ActionResult(False, error=f"{action}: {exc}")
    target = f"{action} {', '.join(ids[:5])}" + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")

    def body(step: AwsStep) -> None:
        ec2 = step.client("ec2")
        before = _describe_instances(step, ec2, ids)
        _record_instances(step, ids, before, before)
        _refuse_gone(ids, before, wanted)
        to_change = [i for i in ids if before[i]["state"] != wanted]
        if not to_change:
            step.log(f"already {wanted}: {', '.join(ids)}")
        elif wanted == "running":
            step.call(ec2, "start_instances", InstanceIds=to_change)
            step.log(f"StartInstances {', '.join(to_change)}")
        else:
            force = bool(params.get("force", False))
            step.call(ec2, "stop_instances", InstanceIds=to_change, Force=force)
            step.log(f"StopInstances {', '.join(to_change)}" + (" (force)" if force else ""))

        def check() -> tuple[bool, str]:
            states = _describe_instances(step, ec2, ids)
            _record_instances(step, ids, states, before)
            _refuse_gone(ids, states, wanted)
            return all(states[i]["state"] == wanted for i in ids), _states_text(ids, states)

        step.wait(f"{len(ids)} instance(s) to be {wanted}", check)

    return _run(action, target, params, ctx, body)


@executor("aws.ec2_start")
def run_ec2_start(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    return _ec2_change(params, ctx, "aws.ec2_start", "running")


@executor("aws.ec2_stop")
def run_ec2_stop(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    return _ec2_change(params, ctx, "aws.ec2_stop", "stopped")


# --- RDS --------------------------------------------------------------------------------------------------


@executor("aws.rds_promote_read_replica")
def run_rds_promote_read_replica(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    identifier = str(params.get("db_instance_identifier") or "").strip()
    target = f"aws.rds_promote_read_replica {identifier}"
    retention = params.get("backup_retention_period")
    try:
        if not identifier:
            raise AwsStepError("db_instance_identifier must not be empty")
        if retention is not None and not (str(retention).isdigit() and 0 <= int(retention) <= 35):
            raise AwsStepError(f"backup_retention_period {retention!r} is not a number of days (0-35)")
    except AwsStepError as exc:
        return ActionResult(False, error=f"{target}: {exc}")

    def body(step: AwsStep) -> None:
        rds = step.client("rds")

        def describe() -> dict[str, Any]:
            db = step.call(rds, "describe_db_instances", DBInstanceIdentifier=identifier)["DBInstances"][0]
            endpoint = db.get("Endpoint") or {}
            step.output.update(
                status=db.get("DBInstanceStatus"),
                endpoint={"address": endpoint.get("Address"), "port": endpoint.get("Port")},
            )
            if db.get("DBInstanceStatus") in GONE_DB_STATES:
                raise AwsStepError(f"the instance is {db['DBInstanceStatus']}: it will never be available")
            return db

        db = describe()
        source = db.get("ReadReplicaSourceDBInstanceIdentifier")
        step.output.update(db_instance_identifier=identifier, previous_source=source, promoted=False)
        step.log(f"{identifier}: {db.get('DBInstanceStatus')}" + (f", a read replica of {source}" if source else ""))
        if source:
            kwargs: dict[str, Any] = {"DBInstanceIdentifier": identifier}
            if retention is not None:
                kwargs["BackupRetentionPeriod"] = int(retention)
            step.call(rds, "promote_read_replica", **kwargs)
            step.output["promoted"] = True
            step.log(f"PromoteReadReplica {identifier} (was a replica of {source})")
        else:
            step.log(f"{identifier} is not a read replica (already promoted, or a primary): not promoting it again")

        def check() -> tuple[bool, str]:
            status = describe().get("DBInstanceStatus") or "unknown"
            return status == "available", status

        # Right after PromoteReadReplica the instance may still say "available" for a moment (it turns
        # "modifying", then "available" again): after a promote, the first look comes one poll later.
        step.wait(
            f"{identifier} to be available", check, pause_first=step.output["promoted"], state=db["DBInstanceStatus"]
        )

    return _run("aws.rds_promote_read_replica", target, params, ctx, body)


# --- Any API operation ------------------------------------------------------------------------------------

DEFAULT_TIMEOUTS["aws.call"] = 600.0
_TRUE = ("true", "1", "yes")


def _coerce(value: Any, shape: Any) -> Any:
    """A templated value (often a string) as the type the operation's input shape wants."""
    if shape is None:
        return value
    kind = shape.type_name
    if kind in ("integer", "long") and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if kind in ("double", "float") and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if kind == "boolean" and isinstance(value, str) and value.strip().lower() in (*_TRUE, "false", "0", "no"):
        return value.strip().lower() in _TRUE
    if kind == "structure" and isinstance(value, dict):
        return {k: _coerce(v, shape.members.get(k)) for k, v in value.items()}
    if kind == "list":
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                value = json.loads(value)
            except ValueError:
                return value
        if isinstance(value, list):
            return [_coerce(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _coerce(v, shape.value) for k, v in value.items()}
    return value


def _select(response: Any, selector: str) -> Any:
    from failover.engine.actions.http import _ABSENT, json_path

    found = json_path(response, selector)
    return None if found is _ABSENT else found


def _plain(value: Any) -> Any:
    """JSON data (boto3 answers carry datetimes and bytes)."""
    return json.loads(json.dumps(value, default=str))


@executor("aws.call")
def run_call(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    service = str(params.get("service") or "").strip()
    operation = str(params.get("operation") or "").strip()
    target = f"aws.call {service} {operation}"
    check = params.get("wait_for") or params.get("expect")
    waiting = bool(params.get("wait_for"))

    def body(step: AwsStep) -> None:
        client = step.client(service)
        method = {api: name for name, api in client.meta.method_to_api_mapping.items()}.get(operation)
        if method is None:
            raise AwsStepError(f"{service} has no operation {operation}")
        shape = client.meta.service_model.operation_model(operation).input_shape
        arguments = _coerce(dict(params.get("parameters") or {}), shape)

        def call() -> dict[str, Any]:
            answer = step.call(client, method, **arguments)
            answer.pop("ResponseMetadata", None)
            answer = _plain(answer)
            step.output["response"] = answer
            for output in params.get("outputs") or []:
                step.output[output["name"]] = _select(answer, output["selector"])
            return answer

        answer = call()
        step.log(f"{operation}: done")
        if not check:
            return
        wanted = [str(v) for v in check["values"]]

        def matches() -> tuple[bool, str]:
            value = _select(step.output["response"], check["selector"])
            step.output["property"] = value
            return str(value) in wanted or (isinstance(value, bool) and str(value).lower() in wanted), repr(value)

        done, state = matches()
        if waiting:
            if not done:
                step.wait(
                    f"{check['selector']} to be one of {', '.join(wanted)}",
                    lambda: (call(), matches())[1],
                    pause_first=True,
                    state=state,
                )
        elif not done:
            raise AwsStepError(f"{check['selector']} is {state}, expected one of {', '.join(wanted)}")
        del answer

    return _run("aws.call", target, params, ctx, body)
