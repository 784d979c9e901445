"""A runbook with the redis and ssh actions, imported like any runbook and run by a real coordinator in
process against a real Redis pair and a real sshd on 127.0.0.1: a planned Redis FAILOVER, a check, an
ssh.run step that uses an earlier step's output, and a failover back; then an ssh step the engine times out.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from core.secrets import set_secret
from failover.engine.graph import build_runbook_steps, create_step_runs
from failover.engine.runner import run_execution
from failover.models import ExecutionEvent, FailoverExecution, StepRun
from failover.tests.engine_support import messages, steps_of, wait_for
from failover.tests.redis_support import HOST, RedisPair, start_pair, version_of
from failover.tests.sshd_support import SSHServer, processes_with, start_sshd, stop_sshd
from runbooks.services import import_runbook_text

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.realsystem]

RUNBOOK = """
name: Cache switchover
slug: cache-switchover-e2e
version: 1.0.0
category: test
description: Planned Redis switchover to the DR node, tell the application host, and back.
parameters:
  dr_host: {type: string}
  dr_port: {type: integer}
  main_host: {type: string}
  main_port: {type: integer}
  app_host: {type: string}
  ssh_port: {type: integer}
  ssh_user: {type: string}
steps:
  - id: main-is-primary
    action: redis.replication_status
    with: {url_secret: cache-main-url, expect_role: primary}
    timeout: 10s
  - id: switchover
    action: redis.failover
    with:
      url_secret: cache-main-url
      to_host: "{{ params.dr_host }}"
      to_port: "{{ params.dr_port }}"
      timeout_ms: 5000
      target_url_secret: cache-dr-url
    needs: [main-is-primary]
    timeout: 30s
  - id: dr-is-primary
    action: redis.replication_status
    with: {url_secret: cache-dr-url, expect_role: primary}
    needs: [switchover]
    timeout: 10s
  - id: tell-app
    action: ssh.run
    with:
      host: "{{ params.app_host }}"
      port: "{{ params.ssh_port }}"
      username: "{{ params.ssh_user }}"
      known_hosts_secret: app-known-hosts
      key_secret: drplan-ssh-key
      argv: [sh, -c, 'echo "cache primary is now $0"; echo "lost: $1 bytes"',
             "{{ steps.switchover.output.new_primary }}", "{{ steps.switchover.output.data_loss_bytes }}"]
    needs: [dr-is-primary]
    timeout: 30s
  - id: switch-back
    action: redis.failover
    with:
      url_secret: cache-dr-url
      to_host: "{{ params.main_host }}"
      to_port: "{{ params.main_port }}"
      timeout_ms: 5000
      target_url_secret: cache-main-url
    needs: [tell-app]
    timeout: 30s
"""


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[RedisPair]:
    started = start_pair(tmp_path)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def sshd() -> Iterator[SSHServer]:
    server = start_sshd()
    yield server
    stop_sshd(server)


def _execution(text: str, parameters: dict) -> FailoverExecution:
    version = import_runbook_text(text)
    execution = FailoverExecution.objects.create(
        execution_type="runbook", status="pending", triggered_at=timezone.now(), parameters=parameters
    )
    create_step_runs(execution, build_runbook_steps(version))
    return execution


def test_a_redis_switchover_runbook_with_an_ssh_step_runs_end_to_end(pair: RedisPair, sshd: SSHServer) -> None:
    if version_of(pair.primary) < (6, 2):
        pytest.skip("FAILOVER needs Redis 6.2 or later")
    set_secret("cache-main-url", pair.primary.url)
    set_secret("cache-dr-url", pair.replica.url)
    set_secret("app-known-hosts", sshd.known_hosts)
    set_secret("drplan-ssh-key", sshd.client_key)
    with pair.primary.client() as client:
        client.set("order:1", "paid")
    parameters = {
        "dr_host": HOST,
        "dr_port": pair.replica.port,
        "main_host": HOST,
        "main_port": pair.primary.port,
        "app_host": HOST,
        "ssh_port": sshd.port,
        "ssh_user": sshd.username,
    }
    execution = _execution(RUNBOOK, parameters)
    assert run_execution(execution.pk) == "completed", FailoverExecution.objects.get(pk=execution.pk).error
    steps = steps_of(execution)
    assert {s.status for s in steps.values()} == {"succeeded"}
    assert steps["switchover"].output["new_primary"] == f"{HOST}:{pair.replica.port}"
    assert steps["switchover"].output["data_loss_bytes"] == 0
    assert steps["dr-is-primary"].output["role"] == "primary"
    assert steps["tell-app"].output["stdout"] == f"cache primary is now {HOST}:{pair.replica.port}\nlost: 0 bytes"
    assert steps["switch-back"].output["new_primary"] == f"{HOST}:{pair.primary.port}"
    logs = messages(execution, "log")
    assert f"cache primary is now {HOST}:{pair.replica.port}" in logs  # streamed into the step's log
    execution.refresh_from_db()
    assert execution.data_loss_bytes == 0
    assert execution.actual_rpo_seconds == 0.0
    assert pair.primary.info()["role"] == "master"
    with pair.primary.client() as client:
        assert client.get("order:1") == "paid"
    stored = repr(
        [
            *ExecutionEvent.objects.filter(execution=execution).values_list("message", "data"),
            *StepRun.objects.filter(execution=execution).values_list("rendered", "output", "error"),
        ]
    )
    assert pair.primary.password not in stored
    assert sshd.client_key.splitlines()[1] not in stored


def test_the_engine_times_out_an_ssh_step_and_nothing_is_left_on_the_host(sshd: SSHServer) -> None:
    set_secret("app-known-hosts", sshd.known_hosts)
    set_secret("drplan-ssh-key", sshd.client_key)
    token = f"300.{random.randrange(10**6):06d}"
    text = f"""
name: Slow remote step
slug: slow-remote-e2e
version: 1.0.0
category: test
steps:
  - id: hang
    action: ssh.run
    with:
      host: {HOST}
      port: {sshd.port}
      username: {sshd.username}
      known_hosts_secret: app-known-hosts
      key_secret: drplan-ssh-key
      argv: [sh, -c, "echo waiting; sleep {token}"]
    timeout: 1s
  - id: after
    action: noop
    needs: [hang]
"""
    execution = _execution(text, {})
    assert run_execution(execution.pk) == "failed"
    steps = steps_of(execution)
    assert steps["hang"].status == "failed"
    assert steps["hang"].error.startswith(f"ssh {sshd.username}@{HOST}:{sshd.port}: timed out after 1s; remote process")
    assert steps["after"].status == "pending"
    assert "waiting" in messages(execution, "log")
    wait_for(lambda: not processes_with(token), timeout=10)
