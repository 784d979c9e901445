"""The DR lab end to end, against real processes, with the first-class actions only: lab up → failover of
the Lab plan through the real engine → validate → failback → a second failover → DR test on a clone while
production keeps serving → chaos (replication stopped, primary killed) → automatic failover detected by
the monitor, with the loss measured from the database equal to the application's count → lab down with
no process left (by pid). Then the same failover and failback with the nodes reached only over SSH, and
a synchronous lab that loses nothing.

Waits are on state (an execution's status, the app's acknowledgements, a server's role), never on time.
Marked `lab` and `realsystem`; skipped when DATABASE_URL is set so it runs once, in make test's SQLite pass.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command

from core.localservers import procs
from failover import services
from failover.engine.runner import run_execution
from failover.models import FailoverExecution, StepRun
from lab import cluster
from lab.state import app_status_path, read_acked, read_json, read_route
from plans.models import DRPlan
from runbooks.choices import VersionStatus
from runbooks.models import RunbookVersion

pytestmark = [
    pytest.mark.lab,
    pytest.mark.realsystem,
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="the lab runs once, in the SQLite pass"),
]
RUNBOOKS = ("postgres-failover", "postgres-failback", "redis-failover", "lab-dr-test")


@pytest.fixture
def lab_root(monkeypatch: pytest.MonkeyPatch):
    root = Path(settings.VAR_DIR) / f"lab-test-{os.getpid()}"
    monkeypatch.setenv("DRPLAN_LAB_DIR", str(root))
    yield root
    try:
        cluster.down(root=root, log=lambda _: None)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def lab(*args: str) -> str:
    out = io.StringIO()
    call_command("lab", *args, stdout=out)
    return out.getvalue()


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.05)
    return found


def roles(root: Path) -> dict[str, str | None]:
    info = cluster.status(root)
    return {name: node.get("role") if node.get("reachable") else None for name, node in info["postgres"].items()}


def output(execution: FailoverExecution, step_key: str) -> dict:
    return StepRun.objects.get(execution=execution, step_key=step_key).output


def run(execution: FailoverExecution) -> FailoverExecution:
    status = run_execution(execution.pk)
    execution.refresh_from_db()
    failed = StepRun.objects.filter(execution=execution, status="failed").values_list("step_key", "error")
    assert status == "completed", (execution.error, list(failed))
    return execution


def assert_streaming(root: Path, primary: str, standby: str) -> None:
    def streaming() -> list:
        replication = cluster.status(root)["replication"]
        return replication if replication and replication[0]["state"] == "streaming" else []

    replication = wait_for(streaming, 30, "streaming replication")
    assert (replication[0]["primary"], replication[0]["standby"]) == (primary, standby)


def acks_grow(root: Path, seconds: float = 10) -> bool:
    before = len(read_acked(root))
    return bool(wait_for(lambda: len(read_acked(root)) > before, seconds, "a new acknowledged order"))


def fail_over_and_back(root: Path, plan: DRPlan, operator: User) -> tuple[FailoverExecution, FailoverExecution]:
    """A planned failover of the Lab plan (postgres tier 1, redis tier 2), then its failback; checked."""
    triggered = time.monotonic()
    execution = run(services.start_failover(plan, execution_type="planned", actor=operator, reason="lab test"))
    elapsed = time.monotonic() - triggered
    keys = set(StepRun.objects.filter(execution=execution).values_list("step_key", flat=True))
    assert {"lab-postgres.promote-standby", "lab-redis.promote-replica"} <= keys
    assert roles(root)["pg2"] == "primary"
    assert read_route(root)["postgres"]["node"] == "pg2" and read_route(root)["redis"]["node"] == "redis2"
    switch = output(execution, "lab-postgres.validate-orders")["json"]["switch"]
    assert switch["verified"] is True and switch["acked_before"] > 0 and switch["acked_after"] > 0
    assert switch["missing_count"] == 0
    assert output(execution, "lab-postgres.validate-writable")["writable"] is True
    loss = output(execution, "lab-postgres.measure-data-loss")
    assert loss["data_loss_bytes"] == 0 and loss["data_loss_transactions"] == 0
    assert (execution.data_loss_transactions, execution.data_loss_bytes, execution.actual_rpo_seconds) == (0, 0, 0.0)
    assert execution.actual_rto_seconds is not None and execution.actual_rto_seconds < 30
    assert list(execution.validation_results.values_list("status", flat=True)) == ["passed"]
    promoted = output(execution, "lab-postgres.promote-standby")
    print(
        f"\n[lab] planned failover: trigger -> completed {elapsed:.2f} s,"
        f" measured RTO {execution.actual_rto_seconds:.2f} s, pg_promote() {promoted['promote_seconds']:.3f} s"
    )

    failback = run(services.start_failback(plan, actor=operator))
    assert output(failback, "lab-postgres.rebuild-old-primary")["method"] == "pg_rewind"
    assert output(failback, "lab-postgres.rebuild-other-node")["method"] == "pg_rewind"
    assert output(failback, "lab-postgres.switchover-back")["promote"]["promoted"] is True
    assert output(failback, "lab-postgres.validate-orders")["json"]["switch"]["missing_count"] == 0
    assert failback.data_loss_transactions == 0
    assert roles(root) == {"pg1": "primary", "pg2": "standby"}
    assert_streaming(root, "pg1", "pg2")
    return execution, failback


@pytest.mark.django_db(transaction=True)
def test_lab_cycle_failover_failback_dr_test_chaos(lab_root: Path, api_for) -> None:
    call_command("seed_demo", verbosity=0)
    out = lab("up")
    assert "orders app pid" in out and "secrets" in out
    for slug in RUNBOOKS:
        version = RunbookVersion.objects.get(runbook__slug=slug, status=VersionStatus.APPROVED)
        assert f"{slug} {version.version}: approved by approver" in out
        assert version.created_by is None and "-lab." in version.version
        assert "python" not in {step.action for step in version.steps.all()}
        assert not any("run_on" in (step.params or {}) for step in version.steps.all())  # local nodes
    state = read_json(lab_root / "state.json")
    started_pids = cluster.recorded_pids(state)
    again = lab("up")  # twice is harmless: nothing started, the same runbook versions
    assert "already up" in again and "already approved" in again
    assert cluster.recorded_pids(read_json(lab_root / "state.json")) == started_pids

    assert "replication pg1 -> pg2: streaming (async)" in lab("status")
    assert roles(lab_root) == {"pg1": "primary", "pg2": "standby"}
    plan = DRPlan.objects.get(plan_id="lab")
    operator = User.objects.get(username="operator")

    # 1-2. A planned failover (postgres tier 1 and redis tier 2 composed), then the failback.
    fail_over_and_back(lab_root, plan, operator)

    # 3. A second failover works, and a second failback.
    second = run(services.start_failover(plan, execution_type="planned", actor=operator))
    assert roles(lab_root)["pg2"] == "primary" and second.data_loss_transactions == 0
    run(services.start_failback(plan, actor=operator))
    assert roles(lab_root) == {"pg1": "primary", "pg2": "standby"}

    # 4. Non-disruptive DR test through the API, on a clone of the standby.
    response = api_for("operator").post("/api/v1/dr/test", {"plan": "lab"}, format="json")
    assert response.status_code == 201, response.json()
    test = run(FailoverExecution.objects.get(pk=response.json()["id"]))
    before = output(test, "lab-postgres.app-before")["json"]
    after = output(test, "lab-postgres.check-production")["json"]
    assert after["acked_total"] > before["acked_total"]  # orders kept flowing during the test
    assert output(test, "lab-postgres.check-replication")["checked"][0]["state"] == "streaming"
    assert output(test, "lab-postgres.clone-standby")["method"] == "pg_basebackup"
    assert output(test, "lab-postgres.promote-clone")["promoted"] is True
    assert output(test, "lab-postgres.validate-clone")["rows"][0]["missing"] == before["lost_count"] == 0
    teardown = json.loads(output(test, "lab-postgres.teardown-clone")["stdout"].splitlines()[-1])
    assert teardown["removed"] is True and teardown["pids_checked"]
    assert not [p for p in teardown["pids_checked"] if procs.alive(p)]
    assert not (lab_root / cluster.CLONE_DIR).exists() and cluster.status(lab_root)["clone"] is None
    assert test.actual_rto_seconds is not None
    assert roles(lab_root) == {"pg1": "primary", "pg2": "standby"}
    assert_streaming(lab_root, "pg1", "pg2")
    assert acks_grow(lab_root)

    # 5. Chaos: the standby stops receiving WAL, the primary is SIGKILLed. The lab's monitor (started by
    #    `lab up`) sees the primary gone for the plan's detection window and, the Lab plan being automatic,
    #    starts an unplanned failover; it loses what the standby never got, measured from the dead
    #    primary's WAL, and the application's own count agrees.
    assert procs.alive(read_json(lab_root / "state.json")["monitor"]["pid"])
    lab("chaos", "stop-replication")
    committed = len(read_acked(lab_root))
    wait_for(lambda: len(read_acked(lab_root)) >= committed + 20, 30, "orders the standby never gets")
    lab("chaos", "kill-primary")
    killed_at = time.monotonic()
    assert cluster.status(lab_root)["postgres"]["pg1"]["running"] is False
    window = plan.detection_window_seconds
    found = wait_for(
        lambda: FailoverExecution.objects.filter(trigger_type="automatic").first(), window + 30, "automatic failover"
    )
    detected = time.monotonic() - killed_at
    assert detected >= window - 1  # a failure must last the window (first probe up to 1 s after the kill)
    automatic = run(found)
    assert automatic.execution_type == "unplanned" and automatic.trigger_type == "automatic"
    assert automatic.disaster_declared_at < automatic.triggered_at
    print(f"[lab] kill -9 of the primary -> automatic failover started {detected:.2f} s later (window {window} s)")
    assert output(automatic, "lab-postgres.fence-old-primary")["fenced"] is False  # it was dead
    switch = output(automatic, "lab-postgres.validate-orders")["json"]["switch"]
    app_lost = wait_for(  # the app rewrites its status file twice a second
        lambda: (read_json(app_status_path(lab_root)) or {}).get("lost", {}).get(str(switch["from_epoch"])),
        10,
        "the app's own count of lost orders",
    )
    assert switch["missing_ids"] == app_lost and len(app_lost) > 0
    loss = output(automatic, "lab-postgres.measure-data-loss")
    # The database's own count (commits in the dead primary's WAL the new primary lacks) agrees with the
    # app's (+1 if a commit was in flight, never acknowledged).
    assert len(app_lost) <= loss["data_loss_transactions"] <= len(app_lost) + 1
    assert automatic.data_loss_transactions == loss["data_loss_transactions"]
    assert automatic.data_loss_bytes == loss["data_loss_bytes"] > 0
    assert 0 < automatic.actual_rpo_seconds < 30
    print(f"[lab] async loss: {len(app_lost)} orders (app), {loss['data_loss_transactions']} commits in the WAL")
    assert acks_grow(lab_root)

    # 6. lab down stops everything, checked by pid.
    everything = cluster.recorded_pids(read_json(lab_root / "state.json"))
    assert "no lab process left" in lab("down")
    assert not [pid for pid in everything if procs.alive(pid)]


@pytest.mark.django_db(transaction=True)
def test_lab_over_ssh_fails_over_and_back_with_the_nodes_reached_only_over_ssh(lab_root: Path, api_for) -> None:
    """`lab up --ssh`: the servers run as the SSH login user; the runbooks' rewind, base backup and
    pg_waldump run on the nodes through the lab's sshd (run_on), host key checked."""
    from core.localservers import sshd as local_sshd

    if not local_sshd.available():
        pytest.skip(f"Debian's openssh-server is not installed ({local_sshd.SSHD}); run scripts/ensure_sshd.sh")
    call_command("seed_demo", verbosity=0)
    out = lab("up", "--ssh", "--no-monitor")
    assert "nodes reached over SSH" in out and "pg_hosts_known_hosts" in out
    state = read_json(lab_root / "state.json")
    for slug in RUNBOOKS:
        version = RunbookVersion.objects.get(runbook__slug=slug, status=VersionStatus.APPROVED)
        run_on = [s.params["run_on"]["ssh"] for s in version.steps.all() if "run_on" in (s.params or {})]
        assert all(r["known_hosts_secret"] == "pg_hosts_known_hosts" for r in run_on)
    plan = DRPlan.objects.get(plan_id="lab")
    operator = User.objects.get(username="operator")
    failover, failback = fail_over_and_back(lab_root, plan, operator)
    loss = output(failover, "lab-postgres.measure-data-loss")
    assert "wal_error" not in loss or "could not find a valid record" in loss["wal_error"]  # nothing to read
    rewound = StepRun.objects.get(execution=failback, step_key="lab-postgres.rebuild-old-primary")
    assert rewound.output["method"] == "pg_rewind"
    # The servers the rewinds started run as the SSH login user: started over SSH, not by the worker.
    for node in ("pg1", "pg2"):
        pid = cluster.postgres_pid(state["postgres"][node])
        assert psutil.Process(pid).username() == state["ssh"]["username"]

    response = api_for("operator").post("/api/v1/dr/test", {"plan": "lab"}, format="json")
    test = run(FailoverExecution.objects.get(pk=response.json()["id"]))
    assert output(test, "lab-postgres.clone-standby")["method"] == "pg_basebackup"
    assert not (lab_root / cluster.CLONE_DIR).exists()
    everything = cluster.recorded_pids(read_json(lab_root / "state.json"))
    assert "no lab process left" in lab("down")
    assert not [pid for pid in everything if procs.alive(pid)]


@pytest.mark.django_db(transaction=True)
def test_lab_up_twice_and_recovery_after_a_crash_in_sync_mode(lab_root: Path) -> None:
    """A crashed lab (every process killed) recovers with down + up; in synchronous mode a killed
    primary with replication stopped loses no acknowledged order."""
    cluster.up(root=lab_root, log=lambda _: None)
    crashed = cluster.recorded_pids(read_json(lab_root / "state.json"))
    for pid in crashed:
        procs.kill(pid)
    assert not procs.wait_gone(crashed, 10)
    assert cluster.health(read_json(lab_root / "state.json"))
    with pytest.raises(cluster.LabError, match="partly running"):
        cluster.up(root=lab_root, log=lambda _: None)
    cluster.down(root=lab_root, log=lambda _: None)

    call_command("seed_demo", verbosity=0)
    lab("up", "--sync", "--no-monitor")
    assert cluster.status(lab_root)["replication"][0]["sync_state"] == "sync"
    assert "already up" in lab("up", "--sync", "--no-monitor")
    acked = len(read_acked(lab_root))
    cluster.chaos("stop-replication", lab_root)  # commits now wait for the standby: no acks
    cluster.chaos("kill-primary", lab_root)
    plan = DRPlan.objects.get(plan_id="lab")
    operator = User.objects.get(username="operator")
    execution = run(services.start_failover(plan, execution_type="unplanned", actor=operator, reason="sync test"))
    switch = output(execution, "lab-postgres.validate-orders")["json"]["switch"]
    assert switch["missing_count"] == 0 and switch["acked_before"] >= 0 and switch["acked_after"] > 0
    assert read_json(app_status_path(lab_root))["lost_count"] == 0
    assert len(read_acked(lab_root)) > acked
    # At most the one commit that waited for the standby and was never acknowledged.
    loss = output(execution, "lab-postgres.measure-data-loss")
    assert loss.get("data_loss_transactions", 0) <= 1, loss
    everything = cluster.recorded_pids(read_json(lab_root / "state.json"))
    cluster.down(root=lab_root, log=lambda _: None)
    assert not [pid for pid in everything if procs.alive(pid)]
