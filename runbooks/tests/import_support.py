"""The real runbook documents the importer tests read, and what each must import as.

They are read from ../shared/data/runbooks/ (the sibling of the repository; DRPLAN_SHARED_RUNBOOKS overrides the
path); a test that needs one skips cleanly when it is absent. A few permissively licensed ones are copied into
data/import/ (see its NOTICE.md) so that each format has one real document that is always there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("DRPLAN_SHARED_RUNBOOKS") or ROOT.parent / "shared" / "data" / "runbooks")
COPIED = Path(__file__).resolve().parent / "data" / "import"
SSM = "aws-ssm-automation"

# file (under SHARED) -> format, category, step actions in order, parameters (name: required?), report summary,
# and `needs` when the steps are not one chain in document order.
EXPECTED: dict[str, dict[str, Any]] = {
    "rundeck/rundeck-functional-test_test-copyfile-job1.yaml": {
        "format": "rundeck",
        "category": "maintenance",
        "actions": ["ssh.run", "ssh.run", "manual"],
        "params": {"sourcedir": True, "destdir": True, "ssh_username": True, "ssh_known_hosts": True, "ssh_key": True},
        "summary": {"converted": 6, "manual": 1, "dropped": 2},
    },
    "rundeck/rundeck-functional-test_job-213b0213-cb72-417e-9707-1371eb44dfe3.xml": {
        "format": "rundeck",
        "category": "maintenance",
        "actions": ["shell"],
        "params": {"test": False},
        "summary": {"converted": 4, "manual": 0, "dropped": 0},
    },
    "rundeck/rundeck-functional-test_execution-1295.xml": {
        "format": "rundeck",
        "category": "maintenance",
        "actions": ["ssh.run"],
        "params": {"ssh_username": True, "ssh_known_hosts": True, "ssh_key": True, "target_host": True},
        "summary": {"converted": 3, "manual": 0, "dropped": 0},
    },
    "chaostoolkit/community-playground_drain-node-experiment.json": {
        "format": "chaostoolkit",
        "category": "test",
        "actions": ["http", "noop", "manual", "http"],
        "params": {"service_url": True, "pod_label_selector": True, "node_name": True},
        "summary": {"converted": 5, "manual": 2, "dropped": 2},
    },
    "chaostoolkit/community-playground_lose-all-of-powersources.json": {
        "format": "chaostoolkit",
        "category": "test",
        "actions": ["manual", "manual", "manual", "wait", "http", "manual", "manual", "manual"],
        "params": {"service_url": True},
        "summary": {"converted": 3, "manual": 6, "dropped": 2},
    },
    "chaostoolkit/chaosiq-demos_lab1_terminate-middle-pod.json": {
        "format": "chaostoolkit",
        "category": "test",
        "actions": ["http", "manual", "shell", "wait", "manual", "wait", "manual", "manual", "http", "manual"],
        "params": {"front_url": False},
        "summary": {"converted": 7, "manual": 5, "dropped": 0},
        # simulate-some-traffic runs in the background: the pause after it needs the step before it
        "needs": {
            "simulate-some-traffic": ["before-front-service-does-not-return-an-error"],
            "pause-before-terminate-middle-pod": ["before-front-service-does-not-return-an-error"],
        },
    },
    "chaostoolkit/chaosiq-demos_lab3_deny-ingress-network-partition.json": {
        "format": "chaostoolkit",
        "category": "test",
        "actions": ["http", "http", "noop", "shell", "wait", "manual", "wait", "manual", "manual", "http", "http"],
        "params": {"front_url": False},
        "summary": {"converted": 9, "manual": 4, "dropped": 0},
        "needs": {
            "simulate-some-traffic": ["rollback-marker-remove-deny-all-ingress-traffic"],
            "pause-before-deny-all-ingress-traffic": ["rollback-marker-remove-deny-all-ingress-traffic"],
        },
    },
    f"{SSM}/rds_force_aurora_failover.AutomationDocument.yml": {
        "format": "ssm",
        "category": "restore",
        "actions": ["aws.call", "aws.call", "manual", "manual", "manual", "manual", "manual", "aws.call"],
        "params": {"aws_credentials": True, "ClusterId": True, "InstanceId": False, "SyntheticAlarmName": True},
        "summary": {"converted": 6, "manual": 5, "dropped": 4},
    },
    f"{SSM}/docdb_restore_from_point_in_time.AutomationDocument.yml": {
        "format": "ssm",
        "category": "restore",
        "actions": ["manual"] * 14,
        "params": {"aws_credentials": True, "DBClusterIdentifier": True, "RestoreToDate": False},
        "summary": {"converted": 2, "manual": 14, "dropped": 9},
    },
    f"{SSM}/dynamodb_restore_to_point_in_time.AutomationDocument.yml": {
        "format": "ssm",
        "category": "restore",
        "actions": [
            "manual",
            "aws.call",
            "aws.call",
            "manual",
            "manual",
            "manual",
            "aws.call",
            "manual",
            "manual",
            "manual",
        ],
        "params": {
            "aws_credentials": True,
            "DynamoDBTableSourceName": True,
            "DynamoDBTableTargetName": True,
            "RecoveryPointDateTime": False,
            "CopyAllProperties": False,
            "DynamoDBSourceTableAlarmNames": False,
        },
        "summary": {"converted": 8, "manual": 7, "dropped": 11},
    },
    f"{SSM}/efs_restore_backup_in_another_region.AutomationDocument.yml": {
        "format": "ssm",
        "category": "restore",
        "actions": ["manual", "aws.call", "manual", "manual", "manual", "manual", "manual", "manual"],
        "params": {
            "aws_credentials": True,
            "FileSystemID": True,
            "RecoveryPointArn": True,
            "CopyJobIAMRoleArn": True,
            "RestoreJobIAMRoleArn": True,
            "BackupVaultSourceName": True,
            "BackupVaultDestinationArn": True,
            "DestinationRegionName": True,
        },
        "summary": {"converted": 8, "manual": 7, "dropped": 6},
    },
    f"{SSM}/elasticache_promote_replica_cluster_mode_disabled.AutomationDocument.yml": {
        "format": "ssm",
        "category": "restore",
        "actions": [
            "manual",
            "manual",
            "manual",
            "manual",
            "manual",
            "aws.call",
            "manual",
            "aws.call",
            "manual",
            "manual",
            "aws.call",
            "manual",
        ],
        "params": {"aws_credentials": True, "ReplicationGroupId": True, "NewPrimaryClusterId": True},
        "summary": {"converted": 5, "manual": 9, "dropped": 3},
    },
    f"{SSM}/s3_restore_from_backup.AutomationDocument.yml": {
        "format": "ssm",
        "category": "restore",
        "actions": ["manual"] * 7,
        "params": {
            "aws_credentials": True,
            "S3BackupBucketName": True,
            "S3BucketToRestoreName": True,
            "SNSTopicARNForManualApproval": True,
            "IAMPrincipalForManualApproval": True,
            "ApproveCleanRestoreBucketAutomatically": False,
        },
        "summary": {"converted": 5, "manual": 7, "dropped": 6},
    },
    "ansible/postgresql_cluster_update_pgcluster.yml": {
        "format": "ansible",
        "category": "maintenance",
        "actions": ["ansible.playbook"] * 5,
        "params": {"ansible_inventory": True, "ansible_project_dir": False},
        "summary": {"converted": 5, "manual": 0, "dropped": 0},
    },
    "ansible/postgresql_cluster_roles_update_tasks_switchover.yml": {
        "format": "ansible",
        "category": "maintenance",
        "actions": ["ansible.playbook"],
        "params": {"ansible_inventory": True, "ansible_project_dir": False},
        "summary": {"converted": 1, "manual": 0, "dropped": 0},
    },
    "ansible/postgresql_cluster_pg_upgrade_rollback.yml": {
        "format": "ansible",
        "category": "maintenance",
        "actions": ["ansible.playbook"] * 2,
        "params": {"ansible_inventory": True, "ansible_project_dir": False},
        "summary": {"converted": 2, "manual": 0, "dropped": 0},
    },
    "azure-site-recovery/ReplicationRecoveryPlans_Get.json": {
        "format": "asr",
        "category": "failover",
        "actions": ["manual", "manual"],
        "params": {},
        # two boot groups, one replicated item each: items → applications (created), groups → tiers in order
        "summary": {"converted": 4, "manual": 2, "dropped": 3},
    },
    "azure-site-recovery/ReplicationJobs_Get.json": {
        "format": "asr",
        "category": "maintenance",
        "actions": ["manual"],
        "params": {},
        "summary": {"converted": 0, "manual": 1, "dropped": 0},
    },
}


def shared_file(name: str) -> Path:
    """A file under ../shared/data/runbooks; skips the test when ../shared is absent."""
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (../shared/data/runbooks is not next to the repository)")
    return path


def real_files() -> list[Any]:
    """pytest params: every expected file, from ../shared (skipped there if absent)."""
    return [pytest.param(name, id=Path(name).name) for name in EXPECTED]


def copied_files() -> list[Any]:
    """pytest params: the expected files that are also copied into data/import (always present)."""
    return [
        pytest.param(name, id=f"copied-{Path(name).name}") for name in EXPECTED if (COPIED / Path(name).name).is_file()
    ]


def read(name: str, *, copied: bool = False) -> tuple[str, str]:
    """(text, file name) of an expected file, from data/import or from ../shared."""
    path = COPIED / Path(name).name if copied else shared_file(name)
    return path.read_text(encoding="utf-8"), path.name


def run_values(document_params: dict[str, Any], secret_name: str) -> dict[str, str]:
    """A value for each parameter without a default, enough for a dry run: a secret's name for secret
    parameters, a URL for URLs, 1 for numbers, a word otherwise."""
    values = {}
    for name, spec in document_params.items():
        if spec.get("default") is not None:
            continue
        if spec.get("secret"):
            values[name] = secret_name
        elif spec.get("type") in ("integer", "number"):
            values[name] = "1"
        elif spec.get("type") == "boolean":
            values[name] = "true"
        elif "url" in name.lower():
            values[name] = "http://127.0.0.1:9/"
        elif "inventory" in name.lower():
            values[name] = "localhost ansible_connection=local"
        else:
            values[name] = "example"
    return values
