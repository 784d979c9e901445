"""`aws.call` against moto's standalone server (started by these tests on 127.0.0.1, never AWS): any operation
with its parameters coerced to the operation's types, outputs picked by JSON path, `wait_for` polling until a
property has a desired value (the relay holds a transitional state), `expect` failing on any other value."""

from __future__ import annotations

import time

import pytest

from failover.tests.aws_support import Ctx, MotoServer, Relay, credentials
from failover.tests.test_actions_aws import in_background, run

pytestmark = pytest.mark.realsystem

FAST = 0.05


def make_cluster(moto: MotoServer) -> None:
    rds = moto.client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier="orders", Engine="aurora-postgresql", MasterUsername="dr", MasterUserPassword="pw123456789"
    )
    for name in ("orders-1", "orders-2"):
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            DBInstanceClass="db.r5.large",
            Engine="aurora-postgresql",
            DBClusterIdentifier="orders",
        )


def call(**params) -> dict:
    return {"credentials_secret": "aws-dr", "poll_seconds": FAST, **params}


def test_outputs_by_json_path_and_parameters_coerced(moto: MotoServer, ctx: Ctx) -> None:
    make_cluster(moto)
    result = run(
        "aws.call",
        call(
            service="rds",
            operation="DescribeDBClusters",
            parameters={"DBClusterIdentifier": "orders", "MaxRecords": "20"},  # a templated "20" becomes 20
            outputs=[
                {"name": "Status", "selector": "$.DBClusters[0].Status"},
                {"name": "Members", "selector": "$.DBClusters[0].DBClusterMembers"},
                {"name": "Missing", "selector": "$.DBClusters[3].Status"},
            ],
        ),
        ctx,
    )
    assert result.ok, result.error
    assert result.output["Status"] == "available"
    assert sorted(m["DBInstanceIdentifier"] for m in result.output["Members"]) == ["orders-1", "orders-2"]
    assert result.output["Missing"] is None
    assert result.output["response"]["DBClusters"][0]["DBClusterIdentifier"] == "orders"
    assert any("DescribeDBClusters: done" in line for line in ctx.lines)


def test_a_change_then_the_answer_shows_it(moto: MotoServer, ctx: Ctx) -> None:
    alarm = {
        "AlarmName": "shop-synthetic",
        "MetricName": "Errors",
        "Namespace": "Shop",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    moto.client("cloudwatch").put_metric_alarm(**alarm)
    changed = run(
        "aws.call",
        call(
            service="cloudwatch",
            operation="SetAlarmState",
            parameters={"AlarmName": "shop-synthetic", "StateValue": "OK", "StateReason": "drill"},
        ),
        ctx,
    )
    assert changed.ok, changed.error
    check = {"selector": "$.MetricAlarms[0].StateValue", "values": ["OK"]}
    described = run(
        "aws.call",
        call(
            service="cloudwatch",
            operation="DescribeAlarms",
            parameters={"AlarmNames": ["shop-synthetic"]},
            expect=check,
        ),
        ctx,
    )
    assert described.ok, described.error
    assert described.output["property"] == "OK"


def test_expect_fails_naming_the_value(moto: MotoServer, ctx: Ctx) -> None:
    make_cluster(moto)
    result = run(
        "aws.call",
        call(
            service="rds",
            operation="DescribeDBClusters",
            parameters={"DBClusterIdentifier": "orders"},
            expect={"selector": "$.DBClusters[0].Status", "values": ["stopped"]},
        ),
        ctx,
    )
    assert not result.ok
    assert result.error == (
        "aws.call rds DescribeDBClusters: $.DBClusters[0].Status is 'available', expected one of stopped"
    )


def test_wait_for_polls_until_the_property_has_a_desired_value(moto: MotoServer, relay: Relay, ctx: Ctx) -> None:
    make_cluster(moto)
    relay.hold(b"Action=DescribeDBClusters", b"<Status>available</Status>", b"<Status>failing-over</Status>")
    thread, results = in_background(
        "aws.call",
        call(
            service="rds",
            operation="DescribeDBClusters",
            parameters={"DBClusterIdentifier": "orders"},
            wait_for={"selector": "$.DBClusters[0].Status", "values": ["available"]},
        ),
        ctx,
    )
    relay.wait_held(3)
    assert thread.is_alive()  # still waiting while the cluster is failing over
    relay.release()
    thread.join(30)
    [result] = results
    assert result.ok, result.error
    assert result.output["property"] == "available"
    assert any("'failing-over'" in line for line in ctx.lines) or result.output["waited_seconds"] > 0


def test_wait_for_times_out_with_the_last_value(moto: MotoServer, relay: Relay) -> None:
    make_cluster(moto)
    relay.hold(b"Action=DescribeDBClusters", b"<Status>available</Status>", b"<Status>failing-over</Status>")
    ctx = Ctx({"aws-dr": credentials(relay.url)}, timeout=1)
    started = time.monotonic()
    result = run(
        "aws.call",
        call(
            service="rds",
            operation="DescribeDBClusters",
            parameters={"DBClusterIdentifier": "orders"},
            wait_for={"selector": "$.DBClusters[0].Status", "values": ["available"]},
        ),
        ctx,
    )
    assert not result.ok
    assert (
        "timed out after 1s waiting for $.DBClusters[0].Status to be one of available (last: 'failing-over')"
        in result.error
    )
    assert time.monotonic() - started < 30


def test_unknown_operation_and_aws_errors_are_named(moto: MotoServer, ctx: Ctx) -> None:
    result = run("aws.call", call(service="rds", operation="FlyToTheMoon"), ctx)
    assert (result.ok, result.error) == (False, "aws.call rds FlyToTheMoon: rds has no operation FlyToTheMoon")
    result = run(
        "aws.call", call(service="rds", operation="DescribeDBClusters", parameters={"DBClusterIdentifier": "nope"}), ctx
    )
    assert not result.ok
    assert "DescribeDBClusters: DBClusterNotFoundFault" in result.error
