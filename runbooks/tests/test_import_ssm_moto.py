"""An rds_force_aurora_failover-style SSM Automation document, imported and run for real against moto's
standalone server (started by this test on 127.0.0.1, never AWS): alarm and cluster checks, the failover through
`aws.call`, an output passed on to a later step, a sleep, and the alarm again afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from core.secrets import set_secret
from failover.models import FailoverExecution
from failover.tests.aws_support import REGION, MotoServer
from runbooks import services
from runbooks.models import RunbookVersion

pytestmark = [pytest.mark.realsystem, pytest.mark.django_db(transaction=True)]

DOCUMENT = """\
description: 'Failover Aurora cluster (the rds_force_aurora_failover flow without its scripts)'
schemaVersion: '0.3'
assumeRole: '{{ AutomationAssumeRole }}'
parameters:
  ClusterId: {type: String, description: The Aurora cluster.}
  SyntheticAlarmName: {type: String, description: Alarm which should be green before and after.}
  AutomationAssumeRole: {type: String, description: The role.}
mainSteps:
  - name: AssertAlarmToBeGreenBeforeTest
    action: aws:assertAwsResourceProperty
    inputs:
      Service: cloudwatch
      Api: DescribeAlarms
      AlarmNames: ["{{SyntheticAlarmName}}"]
      PropertySelector: "$.MetricAlarms[0].StateValue"
      DesiredValues: ["OK"]
  - name: WaitForAvailableStateBeforeFailover
    action: 'aws:waitForAwsResourceProperty'
    maxAttempts: 10
    timeoutSeconds: 600
    onFailure: Abort
    inputs:
      Service: rds
      Api: DescribeDBClusters
      DBClusterIdentifier: '{{ClusterId}}'
      PropertySelector: '$.DBClusters[0].Status'
      DesiredValues: [available]
  - name: GetClusterWriterId
    action: aws:executeAwsApi
    inputs: {Service: rds, Api: DescribeDBClusters, DBClusterIdentifier: '{{ClusterId}}'}
    outputs:
      - {Name: WriterId, Selector: '$.DBClusters[0].DBClusterMembers[0].DBInstanceIdentifier', Type: String}
  - name: FailoverClusterDefault
    action: 'aws:executeAwsApi'
    inputs: {Service: rds, Api: FailoverDBCluster, DBClusterIdentifier: '{{ClusterId}}'}
  - name: LetItSettle
    action: aws:sleep
    inputs: {Duration: PT1S}
  - name: OldWriterStillServes
    action: aws:assertAwsResourceProperty
    inputs:
      Service: rds
      Api: DescribeDBInstances
      DBInstanceIdentifier: '{{ GetClusterWriterId.WriterId }}'
      PropertySelector: '$.DBInstances[0].DBInstanceStatus'
      DesiredValues: [available]
  - name: AssertAlarmToBeGreen
    action: aws:waitForAwsResourceProperty
    maxAttempts: 10
    timeoutSeconds: 600
    inputs:
      Service: cloudwatch
      Api: DescribeAlarms
      AlarmNames: ["{{SyntheticAlarmName}}"]
      PropertySelector: "$.MetricAlarms[0].StateValue"
      DesiredValues: ["OK"]
    isEnd: true
"""


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


def run(*args: str) -> tuple[int, list[str]]:
    out = StringIO()
    code = 0
    try:
        call_command(*args, stdout=out)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue().splitlines()


def test_ssm_aurora_failover_flow_runs_against_moto(moto: MotoServer, users, tmp_path: Path) -> None:
    moto.reset()
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
    writer_before = next(
        m for m in rds.describe_db_clusters()["DBClusters"][0]["DBClusterMembers"] if m["IsClusterWriter"]
    )
    cloudwatch = moto.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="orders-synthetic",
        MetricName="Errors",
        Namespace="Shop",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="orders-synthetic", StateValue="OK", StateReason="healthy")
    keys = {"aws_access_key_id": "AKIAIMPORTTEST", "aws_secret_access_key": "import-secret", "region_name": REGION}
    set_secret("aws-moto", json.dumps({**keys, "endpoint_url": moto.url}))

    path = tmp_path / "force_aurora_failover.yml"
    path.write_text(DOCUMENT)
    params = [
        "--param",
        "aws_credentials=aws-moto",
        "--param",
        "ClusterId=orders",
        "--param",
        "SyntheticAlarmName=orders-synthetic",
    ]
    code, lines = run("runbook", "run", str(path), "--dry-run", "--wait", "--json", *params)
    assert (code, json.loads(lines[-1])["status"]) == (0, "completed")
    version = RunbookVersion.objects.get()
    assert [s.action for s in version.steps.order_by("number")] == ["aws.call"] * 4 + ["wait"] + ["aws.call"] * 2
    services.submit_for_approval(version, users["admin"])
    services.decide(version, users["approver"], "approve", "import report reviewed")

    code, lines = run("runbook", "run", str(path), "--wait", "--json", "--user", "operator", *params)
    result = json.loads(lines[-1])
    assert (code, result["status"]) == (0, "completed"), lines
    execution = FailoverExecution.objects.get(pk=result["execution"])
    runs = {s.step_key: s for s in execution.step_runs.all()}
    assert runs["GetClusterWriterId"].output["WriterId"] == writer_before["DBInstanceIdentifier"]
    # the output was passed on: the later step described the instance the earlier one found
    assert runs["OldWriterStillServes"].rendered["parameters"] == {
        "DBInstanceIdentifier": writer_before["DBInstanceIdentifier"]
    }
    assert runs["WaitForAvailableStateBeforeFailover"].output["property"] == "available"
    members = rds.describe_db_clusters()["DBClusters"][0]["DBClusterMembers"]
    writer_after = next(m for m in members if m["IsClusterWriter"])
    assert writer_after["DBInstanceIdentifier"] != writer_before["DBInstanceIdentifier"]
