"""The aws actions against moto's standalone server (the AWS API emulator), started by these tests on a free
127.0.0.1 port as a separate process; never against AWS, never moto's in-process mocks. Where AWS takes its
time (pending, modifying, PENDING), a relay holds that state in the emulator's answers (aws_support.py)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from core.secrets import set_secret
from failover.engine.actions import ActionResult, StepContext, run_action
from failover.engine.runner import run_execution
from failover.models import FailoverExecution
from failover.tests.aws_support import (
    HIDDEN,
    KEY_ID,
    REGION,
    SECRET_KEY,
    Blackhole,
    Ctx,
    MotoServer,
    Relay,
    credentials,
    free_port,
    make_replica,
)
from failover.tests.engine_support import in_thread, make_execution, messages, steps_of, wait_for
from runbooks.actions import get_action

pytestmark = pytest.mark.realsystem  # real servers; runs once, in the SQLite pass

ROOT = Path(__file__).resolve().parents[2]
FAST = 0.05  # poll_seconds in these tests
# The moto server, its relay and a step context on it are the fixtures `moto`, `relay`, `ctx` (tests/conftest.py).


def assert_nothing_hidden_shows(*texts: Any) -> None:
    shown = json.dumps(texts, default=str)
    for value in HIDDEN:
        assert value not in shown


def run(action: str, params: dict[str, Any], ctx: Ctx) -> ActionResult:
    """Run an action whose parameters the schema accepts; no key in its result or its log, ever."""
    errors = list(get_action(action).validator.iter_errors(params))
    assert errors == [], [e.message for e in errors]
    result = run_action(action, params, ctx)
    assert_nothing_hidden_shows(result.output, result.error, ctx.lines)
    return result


def in_background(action: str, params: dict[str, Any], ctx: Ctx) -> tuple[threading.Thread, list[ActionResult]]:
    results: list[ActionResult] = []
    thread = threading.Thread(target=lambda: results.append(run(action, params, ctx)), daemon=True)
    thread.start()
    return thread, results


def make_zone(moto: MotoServer) -> str:
    """example.com with www A 192.0.2.10 (TTL 300); its id without /hostedzone/."""
    route53 = moto.client("route53")
    zone = route53.create_hosted_zone(Name="example.com", CallerReference=str(time.monotonic()))["HostedZone"]["Id"]
    record = {"Name": "www.example.com", "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": "192.0.2.10"}]}
    route53.change_resource_record_sets(
        HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": record}]}
    )
    return zone.removeprefix("/hostedzone/")


def records(moto: MotoServer, zone: str) -> dict[tuple[str, str], dict[str, Any]]:
    found = moto.client("route53").list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return {(r["Name"], r["Type"]): r for r in found}


def make_instances(moto: MotoServer, count: int, state: str = "running") -> list[str]:
    ec2 = moto.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    answer = ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count, InstanceType="t3.micro")
    ids = [i["InstanceId"] for i in answer["Instances"]]
    if state == "stopped":
        ec2.stop_instances(InstanceIds=ids)
    elif state == "terminated":
        ec2.terminate_instances(InstanceIds=ids)
    return ids


def instance_states(moto: MotoServer, ids: list[str]) -> dict[str, str]:
    answer = moto.client("ec2").describe_instances(InstanceIds=ids)
    return {i["InstanceId"]: i["State"]["Name"] for r in answer["Reservations"] for i in r["Instances"]}


# --- Route 53 ---------------------------------------------------------------------------------------------


def test_route53_failover_repoints_a_record_and_reports_the_previous_value(moto: MotoServer, ctx: Ctx) -> None:
    zone = make_zone(moto)
    params = {
        "credentials_secret": "aws-dr",
        "hosted_zone_id": zone,
        "record_name": "www.example.com",
        "record_type": "A",
        "values": ["198.51.100.20", "198.51.100.21"],
        "ttl": 60,
        "comment": "DR drill",
        "poll_seconds": FAST,
    }
    result = run("aws.route53_failover", params, ctx)
    assert result.ok, result.error
    output = dict(result.output)
    assert re.fullmatch(r"C[0-9A-Z]+", output.pop("change_id"))
    assert output.pop("waited_seconds") >= 0
    assert output == {
        "hosted_zone_id": zone,
        "record_name": "www.example.com.",
        "record_type": "A",
        "previous": {"values": ["192.0.2.10"], "ttl": 300},
        "current": {"values": ["198.51.100.20", "198.51.100.21"], "ttl": 60},
        "changed": True,
        "status": "INSYNC",
    }
    now = records(moto, zone)[("www.example.com.", "A")]
    assert (now["TTL"], [r["Value"] for r in now["ResourceRecords"]]) == (60, ["198.51.100.20", "198.51.100.21"])
    assert ctx.lines[0] == f"route53: region {REGION}, endpoint {ctx_endpoint(ctx)}"
    assert ctx.lines[1].startswith(f"UPSERT www.example.com. A in zone {zone}: change C")
    assert ctx.lines[-1].endswith("to be INSYNC: INSYNC")

    again = run("aws.route53_failover", params, ctx)  # an UPSERT to the same value: safe to repeat
    assert again.ok and again.output["changed"] is False
    assert again.output["previous"] == again.output["current"]


def ctx_endpoint(ctx: Ctx) -> str:
    return json.loads(ctx.secret("aws-dr"))["endpoint_url"]


def test_route53_cname_alias_and_a_record_that_did_not_exist(moto: MotoServer, ctx: Ctx) -> None:
    zone = make_zone(moto)
    base = {"credentials_secret": "aws-dr", "hosted_zone_id": f"/hostedzone/{zone}", "poll_seconds": FAST}
    cname = run(
        "aws.route53_failover",
        {**base, "record_name": "DB.example.com.", "record_type": "CNAME", "values": ["orders-dr.rds.example"]},
        ctx,
    )
    assert cname.ok, cname.error
    assert (cname.output["previous"], cname.output["current"]) == (
        None,
        {"values": ["orders-dr.rds.example"], "ttl": 60},
    )
    alias = {"hosted_zone_id": zone, "dns_name": "www.example.com", "evaluate_target_health": True}
    aliased = run(
        "aws.route53_failover",
        {**base, "record_name": "app.example.com", "record_type": "A", "alias_target": alias},
        ctx,
    )
    assert aliased.ok, aliased.error
    assert aliased.output["current"] == {"alias_target": alias}
    stored = records(moto, zone)
    assert [r["Value"] for r in stored[("db.example.com.", "CNAME")]["ResourceRecords"]] == ["orders-dr.rds.example"]
    assert stored[("app.example.com.", "A")]["AliasTarget"]["DNSName"].rstrip(".") == "www.example.com"


def test_route53_errors_name_the_aws_error_code(moto: MotoServer, relay: Relay, ctx: Ctx) -> None:
    base = {"credentials_secret": "aws-dr", "record_name": "www.example.com", "record_type": "A"}
    result = run(
        "aws.route53_failover", {**base, "hosted_zone_id": "Z0000000000NOSUCHZONE", "values": ["192.0.2.1"]}, ctx
    )
    assert result.error == (
        "aws.route53_failover www.example.com. A: ListResourceRecordSets: NoSuchHostedZone: "
        "No hosted zone found with ID: Z0000000000NOSUCHZONE"
    )


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"record_type": "A", "values": ["192.0.2.300"]}, "'192.0.2.300' is not an IPv4 address (record type A)"),
        ({"record_type": "AAAA", "values": ["192.0.2.1"]}, "'192.0.2.1' is not an IPv6 address (record type AAAA)"),
        ({"record_type": "CNAME", "values": ["a.example", "b.example"]}, "a CNAME record has exactly one value, not 2"),
        (
            {"record_type": "A", "alias_target": {"hosted_zone_id": "Z1", "dns_name": "lb.example"}, "ttl": 60},
            "ttl does not apply to an alias_target (the target's TTL is used)",
        ),
    ],
)
def test_route53_bad_values_fail_before_any_call(relay: Relay, ctx: Ctx, params: dict, error: str) -> None:
    full = {"credentials_secret": "aws-dr", "hosted_zone_id": "Z1", "record_name": "www.example.com", **params}
    result = run("aws.route53_failover", full, ctx)
    assert result.error == f"aws.route53_failover www.example.com. {params['record_type']}: {error}"
    assert relay.requests == 0


def test_route53_schema_needs_exactly_one_of_values_and_alias_target() -> None:
    from runbooks.documents import DocumentError, validate

    validator = get_action("aws.route53_failover").validator
    base = {
        "credentials_secret": "aws-dr",
        "hosted_zone_id": "Z1",
        "record_name": "www.example.com",
        "record_type": "A",
    }
    alias = {"hosted_zone_id": "Z1", "dns_name": "lb.example"}
    assert list(validator.iter_errors({**base, "values": ["192.0.2.1"]})) == []
    assert list(validator.iter_errors({**base, "values": "{{ steps.start.output.private_ips }}"})) == []
    assert [e.validator for e in validator.iter_errors(base)] == ["oneOf"]
    assert [e.validator for e in validator.iter_errors({**base, "values": ["x"], "alias_target": alias})] == ["oneOf"]
    assert [e.validator for e in validator.iter_errors({**base, "record_type": "MX", "values": ["x"]})] == ["enum"]
    assert [e.validator for e in validator.iter_errors({**base, "values": ["x"], "region": "eu-west-1"})] == [
        "additionalProperties"
    ]
    doc = {
        "name": "DNS",
        "slug": "dns",
        "version": "1.0.0",
        "steps": [{"id": "dns", "action": "aws.route53_failover", "with": base}],
    }
    with pytest.raises(DocumentError) as error:
        validate(doc)
    assert error.value.message == (
        "steps[0] (dns).with: needs exactly one of values (the record's addresses or name) and alias_target"
    )


# --- EC2 --------------------------------------------------------------------------------------------------


def test_ec2_stop_and_start(moto: MotoServer, ctx: Ctx) -> None:
    ids = make_instances(moto, 2)
    stopped = run(
        "aws.ec2_stop", {"credentials_secret": "aws-dr", "instance_ids": ids, "force": True, "poll_seconds": FAST}, ctx
    )
    assert stopped.ok, stopped.error
    assert [(i["instance_id"], i["previous_state"], i["state"]) for i in stopped.output["instances"]] == [
        (ids[0], "running", "stopped"),
        (ids[1], "running", "stopped"),
    ]
    assert f"StopInstances {ids[0]}, {ids[1]} (force)" in ctx.lines
    assert instance_states(moto, ids) == {ids[0]: "stopped", ids[1]: "stopped"}

    started = run("aws.ec2_start", {"credentials_secret": "aws-dr", "instance_ids": ids, "poll_seconds": FAST}, ctx)
    assert started.ok, started.error
    assert [i["state"] for i in started.output["instances"]] == ["running", "running"]
    assert len(started.output["private_ips"]) == 2
    assert all(re.fullmatch(r"\d+\.\d+\.\d+\.\d+", ip) for ip in started.output["private_ips"])
    assert instance_states(moto, ids) == {ids[0]: "running", ids[1]: "running"}

    ctx.lines.clear()  # already running: nothing to start, the step succeeds
    again = run("aws.ec2_start", {"credentials_secret": "aws-dr", "instance_ids": ids, "poll_seconds": FAST}, ctx)
    assert again.ok, again.error
    assert f"already running: {ids[0]}, {ids[1]}" in ctx.lines
    assert not any(line.startswith("StartInstances") for line in ctx.lines)


def test_ec2_errors(moto: MotoServer, relay: Relay, ctx: Ctx) -> None:
    unknown = run("aws.ec2_start", {"credentials_secret": "aws-dr", "instance_ids": ["i-0123456789abcdef0"]}, ctx)
    assert unknown.error == (
        "aws.ec2_start i-0123456789abcdef0: DescribeInstances: InvalidInstanceID.NotFound: "
        "The instance ID 'i-0123456789abcdef0' does not exist"
    )
    gone = make_instances(moto, 1, "terminated")
    terminated = run("aws.ec2_start", {"credentials_secret": "aws-dr", "instance_ids": gone}, ctx)
    assert terminated.error == f"aws.ec2_start {gone[0]}: {gone[0]} is terminated: it will never be running"
    assert instance_states(moto, gone) == {gone[0]: "terminated"}  # not started by the action
    before = relay.requests
    templated_wrong = run_action("aws.ec2_stop", {"credentials_secret": "aws-dr", "instance_ids": ["web-1"]}, ctx)
    assert templated_wrong.error == "aws.ec2_stop: instance_ids must be instance ids (i-…): 'web-1'"
    assert relay.requests == before


# --- RDS --------------------------------------------------------------------------------------------------


def test_rds_promote_read_replica_and_not_twice(moto: MotoServer, ctx: Ctx) -> None:
    make_replica(moto)
    params = {"credentials_secret": "aws-dr", "db_instance_identifier": "orders-dr", "backup_retention_period": 7}
    result = run("aws.rds_promote_read_replica", {**params, "poll_seconds": FAST}, ctx)
    assert result.ok, result.error
    output = dict(result.output)
    assert output.pop("waited_seconds") >= FAST  # after a promote, the first look comes one poll later
    assert output == {
        "db_instance_identifier": "orders-dr",
        "previous_source": "orders",
        "promoted": True,
        "status": "available",
        "endpoint": {"address": output["endpoint"]["address"], "port": 5432},
    }
    assert output["endpoint"]["address"].startswith("orders-dr.")
    assert "PromoteReadReplica orders-dr (was a replica of orders)" in ctx.lines
    db = moto.client("rds").describe_db_instances(DBInstanceIdentifier="orders-dr")["DBInstances"][0]
    assert db["BackupRetentionPeriod"] == 7

    # An instance that is not (or no longer) a replica is reported and not promoted again. (moto keeps the
    # replica's source after a promotion, which AWS clears: the primary stands in for a promoted replica.)
    ctx.lines.clear()
    primary = run("aws.rds_promote_read_replica", {**params, "db_instance_identifier": "orders"}, ctx)
    assert primary.ok, primary.error
    assert (primary.output["promoted"], primary.output["previous_source"], primary.output["status"]) == (
        False,
        None,
        "available",
    )
    assert "orders is not a read replica (already promoted, or a primary): not promoting it again" in ctx.lines


def test_rds_errors(moto: MotoServer, ctx: Ctx) -> None:
    result = run(
        "aws.rds_promote_read_replica", {"credentials_secret": "aws-dr", "db_instance_identifier": "nope"}, ctx
    )
    assert result.error == (
        "aws.rds_promote_read_replica nope: DescribeDBInstances: DBInstanceNotFound: DBInstance nope not found."
    )


# --- Waiting: until the state arrives, a timeout, a cancel --------------------------------------------------

# action -> (the operation whose answers the relay holds, the final state, the transitional state shown instead)
WAITS = {
    "aws.route53_failover": (b"/change/", b"<Status>INSYNC</Status>", b"<Status>PENDING</Status>"),
    "aws.ec2_start": (b"Action=DescribeInstances&", b"<name>running</name>", b"<name>pending</name>"),
    "aws.ec2_stop": (b"Action=DescribeInstances&", b"<name>stopped</name>", b"<name>stopping</name>"),
    "aws.rds_promote_read_replica": (
        b"Action=DescribeDBInstances&",
        b"<DBInstanceStatus>available</DBInstanceStatus>",
        b"<DBInstanceStatus>modifying</DBInstanceStatus>",
    ),
}
WAITING_FOR = {
    "aws.route53_failover": "change {change} to be INSYNC (last: PENDING)",
    "aws.ec2_start": "1 instance(s) to be running (last: {instance} pending)",
    "aws.ec2_stop": "1 instance(s) to be stopped (last: {instance} stopping)",
    "aws.rds_promote_read_replica": "orders-dr to be available (last: modifying)",
}


def _set_up(action: str, moto: MotoServer) -> tuple[dict[str, Any], str]:
    """The params of a step of `action` on fresh resources, and the name of its target in errors."""
    common = {"credentials_secret": "aws-dr", "poll_seconds": FAST}
    if action == "aws.route53_failover":
        zone = make_zone(moto)
        values = {"record_name": "www.example.com", "record_type": "A", "values": ["198.51.100.20"]}
        return {**common, "hosted_zone_id": zone, **values}, "www.example.com. A"
    if action == "aws.rds_promote_read_replica":
        make_replica(moto)
        return {**common, "db_instance_identifier": "orders-dr"}, "orders-dr"
    ids = make_instances(moto, 1, "stopped" if action == "aws.ec2_start" else "running")
    return {**common, "instance_ids": ids}, ids[0]


@pytest.mark.parametrize("action", list(WAITS))
def test_waits_while_the_state_is_transitional(action: str, moto: MotoServer, relay: Relay, ctx: Ctx) -> None:
    params, _ = _set_up(action, moto)
    relay.hold(*WAITS[action])
    thread, results = in_background(action, params, ctx)
    relay.wait_held(3)  # polled three times and still waiting
    assert thread.is_alive()
    relay.release()
    thread.join(30)
    assert results[0].ok, results[0].error
    transitional = WAITS[action][2].decode().split(">")[1].split("<")[0]
    assert any(line.endswith(f": {transitional}") or f" {transitional}" in line for line in ctx.lines)


@pytest.mark.parametrize("action", list(WAITS))
def test_a_state_that_never_arrives_fails_at_the_steps_timeout(action: str, moto: MotoServer, relay: Relay) -> None:
    params, target = _set_up(action, moto)
    relay.hold(*WAITS[action])
    # 4 s: enough to create a boto3 client (it loads the service's model: over a second on a loaded
    # machine) and start waiting, so the timeout strikes while the state never arrives.
    ctx = Ctx({"aws-dr": credentials(relay.url)}, timeout=4)
    started = time.monotonic()
    result = run(action, params, ctx)
    elapsed = time.monotonic() - started
    assert 4 <= elapsed < 10
    waiting = WAITING_FOR[action].format(change=result.output.get("change_id"), instance=target)
    assert result.error == f"{action} {target}: timed out after 4s waiting for {waiting}"
    if action == "aws.route53_failover":  # made, not confirmed: the output says what to roll back to
        assert result.output["previous"] == {"values": ["192.0.2.10"], "ttl": 300}
        assert result.output["status"] == "PENDING"


@pytest.mark.parametrize("action", list(WAITS))
def test_cancel_while_waiting(action: str, moto: MotoServer, relay: Relay) -> None:
    params, target = _set_up(action, moto)
    relay.hold(*WAITS[action])
    ctx = Ctx({"aws-dr": credentials(relay.url)}, timeout=60)
    thread, results = in_background(action, {**params, "poll_seconds": 30}, ctx)
    transitional = WAITS[action][2].decode().split(">")[1].split("<")[0]
    waiting = "PromoteReadReplica " if action == "aws.rds_promote_read_replica" else f" {transitional}"
    wait_for(lambda: any(waiting in line for line in ctx.lines), timeout=30)  # in its pause
    cancelled_at = time.monotonic()
    ctx.cancelled.set()
    thread.join(10)
    assert time.monotonic() - cancelled_at < 3  # not the 30 s poll, not the 60 s timeout
    result = results[0]
    waiting = WAITING_FOR[action].format(change=result.output.get("change_id"), instance=target)
    assert result.error == f"{action} {target}: cancelled while waiting for {waiting}"


# --- The credentials secret and the endpoint --------------------------------------------------------------

EXPECTED = (
    "a JSON object with aws_access_key_id, aws_secret_access_key, region_name "
    "(optional: aws_session_token, endpoint_url)"
)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (None, "secret 'aws-dr' is not defined"),
        (f"{KEY_ID}:{SECRET_KEY}", f"secret 'aws-dr' is not {EXPECTED}"),
        (json.dumps([KEY_ID, SECRET_KEY]), f"secret 'aws-dr' is not {EXPECTED}"),
        (
            json.dumps({"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET_KEY}),
            f"secret 'aws-dr' lacks region_name (expected {EXPECTED})",
        ),
        (
            json.dumps({"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET_KEY, "region": REGION}),
            f"secret 'aws-dr' has unknown keys region (expected {EXPECTED})",
        ),
        (
            json.dumps({"aws_access_key_id": KEY_ID, "aws_secret_access_key": "", "region_name": REGION}),
            "secret 'aws-dr': aws_secret_access_key must be a non-empty string",
        ),
        (
            json.dumps({"aws_access_key_id": KEY_ID, "aws_secret_access_key": 12, "region_name": REGION}),
            "secret 'aws-dr': aws_secret_access_key must be a non-empty string",
        ),
        (credentials(f"ftp://{KEY_ID}@127.0.0.1"), "secret 'aws-dr': endpoint_url must be an http:// or https:// URL"),
    ],
)
def test_a_missing_or_wrong_secret_fails_before_any_call(relay: Relay, value: str | None, error: str) -> None:
    ctx = Ctx({} if value is None else {"aws-dr": value})
    for action, params, target in (
        ("aws.ec2_start", {"instance_ids": ["i-0123456789abcdef0"]}, "aws.ec2_start i-0123456789abcdef0"),
        (
            "aws.rds_promote_read_replica",
            {"db_instance_identifier": "orders-dr"},
            "aws.rds_promote_read_replica orders-dr",
        ),
        (
            "aws.route53_failover",
            {"hosted_zone_id": "Z1", "record_name": "www.example.com", "record_type": "A", "values": ["192.0.2.1"]},
            "aws.route53_failover www.example.com. A",
        ),
    ):
        result = run(action, {"credentials_secret": "aws-dr", **params}, ctx)
        assert (result.ok, result.error, result.output) == (False, f"{target}: {error}", {})
    assert relay.requests == 0
    no_store = run_action(
        "aws.ec2_stop", {"credentials_secret": "aws-dr", "instance_ids": ["i-0123456789abcdef0"]}, StepContext(1, "x")
    )
    assert no_store.error == "aws.ec2_stop i-0123456789abcdef0: no secret store available to read secret 'aws-dr'"


def test_an_unreachable_endpoint_fails_within_the_steps_timeout_naming_it() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    ctx = Ctx({"aws-dr": credentials(closed)}, timeout=5)
    started = time.monotonic()
    result = run("aws.ec2_start", {"credentials_secret": "aws-dr", "instance_ids": ["i-0123456789abcdef0"]}, ctx)
    assert time.monotonic() - started < 5 + 1
    assert result.error.startswith(f"aws.ec2_start i-0123456789abcdef0: DescribeInstances to {closed}")
    assert ("EndpointConnectionError" in result.error) or ("no answer within the step's timeout" in result.error)


def test_an_endpoint_that_never_answers_times_out_and_can_be_cancelled() -> None:
    hole = Blackhole()
    try:
        ctx = Ctx({"aws-dr": credentials(hole.url)}, timeout=4)  # room for the client's creation (see above)
        params = {"credentials_secret": "aws-dr", "db_instance_identifier": "orders-dr"}
        started = time.monotonic()
        result = run("aws.rds_promote_read_replica", params, ctx)
        assert 4 <= time.monotonic() - started < 10
        assert result.error == (
            f"aws.rds_promote_read_replica orders-dr: DescribeDBInstances to {hole.url}: "
            "no answer within the step's timeout (4s)"
        )

        ctx = Ctx({"aws-dr": credentials(hole.url)}, timeout=60)
        thread, results = in_background("aws.rds_promote_read_replica", params, ctx)
        deadline = time.monotonic() + 30
        while not ctx.lines and time.monotonic() < deadline:  # the client exists: the call is under way
            ctx.cancelled.wait(0.02)
        ctx.cancelled.set()
        thread.join(10)
        assert (
            results[0].error
            == f"aws.rds_promote_read_replica orders-dr: cancelled during DescribeDBInstances to {hole.url}"
        )
    finally:
        hole.close()


def test_keys_never_reach_the_logs(moto: MotoServer, ctx: Ctx, caplog: pytest.LogCaptureFixture) -> None:
    """botocore logs request headers (the access key id) at DEBUG: the project keeps it at WARNING."""
    caplog.set_level(logging.DEBUG)
    ids = make_instances(moto, 1)
    assert run("aws.ec2_stop", {"credentials_secret": "aws-dr", "instance_ids": ids, "poll_seconds": FAST}, ctx).ok
    assert run("aws.ec2_start", {"credentials_secret": "aws-dr", "instance_ids": ["i-0123456789abcdef0"]}, ctx).error
    assert_nothing_hidden_shows(caplog.text)


# --- Through the engine -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_runbook_fails_over_through_the_engine(
    moto: MotoServer, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    """Start the DR app server, promote the DR database, then point DNS at both (templated from the
    earlier steps' outputs), in one execution run by the coordinator."""
    caplog.set_level(logging.DEBUG)
    set_secret("aws-dr", credentials(relay.url))
    zone = make_zone(moto)
    app = make_instances(moto, 1, "stopped")
    make_replica(moto)
    common = {"credentials_secret": "aws-dr", "poll_seconds": FAST}
    steps = [
        {"key": "start-app", "action": "aws.ec2_start", "with": {**common, "instance_ids": app}, "timeout_seconds": 60},
        {
            "key": "promote-db",
            "action": "aws.rds_promote_read_replica",
            "with": {**common, "db_instance_identifier": "orders-dr"},
            "timeout_seconds": 60,
        },
        {
            "key": "dns-db",
            "action": "aws.route53_failover",
            "with": {
                **common,
                "hosted_zone_id": zone,
                "record_name": "db.example.com",
                "record_type": "CNAME",
                "values": ["{{ steps['promote-db'].output.endpoint.address }}"],
                "ttl": 30,
            },
            "needs": ["promote-db"],
            "timeout_seconds": 60,
        },
        {
            "key": "dns-app",
            "action": "aws.route53_failover",
            "with": {
                **common,
                "hosted_zone_id": zone,
                "record_name": "www.example.com",
                "record_type": "A",
                "values": "{{ steps['start-app'].output.private_ips }}",
            },
            "needs": ["start-app"],
            "timeout_seconds": 60,
        },
    ]
    for step in steps:
        assert list(get_action(step["action"]).validator.iter_errors(step["with"])) == []
    execution = make_execution(steps)
    assert run_execution(execution.pk) == "completed"
    runs = steps_of(execution)
    assert {key: s.status for key, s in runs.items()} == dict.fromkeys(runs, "succeeded")
    assert instance_states(moto, app) == {app[0]: "running"}
    stored = records(moto, zone)
    db_address = runs["promote-db"].output["endpoint"]["address"]
    assert [r["Value"] for r in stored[("db.example.com.", "CNAME")]["ResourceRecords"]] == [db_address]
    app_ips = runs["start-app"].output["private_ips"]
    assert [r["Value"] for r in stored[("www.example.com.", "A")]["ResourceRecords"]] == app_ips
    assert runs["dns-app"].output["previous"] == {"values": ["192.0.2.10"], "ttl": 300}
    stored_text = [s.output for s in runs.values()] + [s.params for s in runs.values()] + messages(execution)
    assert_nothing_hidden_shows(stored_text, caplog.text)


@pytest.mark.django_db(transaction=True)
def test_the_engine_cancels_and_times_out_a_step_mid_wait(moto: MotoServer, relay: Relay) -> None:
    set_secret("aws-dr", credentials(relay.url))
    zone = make_zone(moto)
    params = {
        "credentials_secret": "aws-dr",
        "hosted_zone_id": zone,
        "record_name": "www.example.com",
        "record_type": "A",
        "values": ["198.51.100.20"],
        "poll_seconds": FAST,
    }
    relay.hold(*WAITS["aws.route53_failover"])
    timed = make_execution([{"key": "dns", "action": "aws.route53_failover", "with": params, "timeout_seconds": 1}])
    assert run_execution(timed.pk) == "failed"
    step = steps_of(timed)["dns"]
    assert step.error.startswith("aws.route53_failover www.example.com. A: timed out after 1s waiting for change ")
    assert step.output["previous"] == {"values": ["192.0.2.10"], "ttl": 300}

    cancelled = make_execution(
        [{"key": "dns", "action": "aws.route53_failover", "with": params, "timeout_seconds": 120}]
    )
    held = relay.held

    def cancel() -> None:
        relay.wait_held(held + 1)
        FailoverExecution.objects.filter(pk=cancelled.pk).update(cancel_requested=True)

    thread = in_thread(cancel)
    started = time.monotonic()
    assert run_execution(cancelled.pk) == "cancelled"
    thread.join()
    assert time.monotonic() - started < 30
    assert steps_of(cancelled)["dns"].status == "cancelled"


@pytest.mark.django_db(transaction=True)
def test_the_secrets_allowed_hosts_must_include_the_endpoint(moto: MotoServer, relay: Relay) -> None:
    set_secret("aws-dr", credentials(relay.url), allowed_hosts=["*.amazonaws.com"])
    execution = make_execution(
        [
            {
                "key": "start",
                "action": "aws.ec2_start",
                "with": {"credentials_secret": "aws-dr", "instance_ids": ["i-0123456789abcdef0"]},
            }
        ]
    )
    assert run_execution(execution.pk) == "failed"
    port = relay.url.rsplit(":", 1)[1]
    assert steps_of(execution)["start"].error == (
        f"aws.ec2_start i-0123456789abcdef0: ec2 endpoint {relay.url}: secret 'aws-dr' may not be sent to "
        f"127.0.0.1:{port} (allowed hosts: *.amazonaws.com)"
    )
    assert relay.requests == 0


@pytest.mark.django_db
def test_readiness_lists_the_credentials_secret() -> None:
    from failover.readiness import referenced_secrets
    from failover.tests.engine_factories import make_runbook

    step = {
        "id": "start",
        "action": "aws.ec2_start",
        "with": {"credentials_secret": "aws-dr", "instance_ids": ["i-0123456789abcdef0"]},
    }
    rollback = {
        "action": "aws.ec2_stop",
        "with": {"credentials_secret": "aws-dr-rollback", "instance_ids": ["i-0123456789abcdef0"]},
    }
    version = make_runbook("aws-start", steps=[{**step, "rollback": rollback}])
    assert referenced_secrets(version) == {"aws-dr", "aws-dr-rollback"}


# --- The documented examples ------------------------------------------------------------------------------


def test_the_documented_examples_match_the_schemas() -> None:
    """Every `action: aws.…` example step in docs/actions.md is valid for its schema."""
    import yaml

    text = (ROOT / "docs" / "actions.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "action: aws." in b]
    seen = set()
    for block in blocks:
        for step in yaml.safe_load(block):
            if str(step.get("action", "")).startswith("aws."):
                errors = [e.message for e in get_action(step["action"]).validator.iter_errors(step["with"])]
                assert errors == [], (step["action"], errors)
                seen.add(step["action"])
    assert seen == set(WAITS) | {"aws.call"}  # aws.call: failover/tests/test_actions_aws_call.py
