"""The DR lab end to end, against real processes: lab up → failover of the Lab plan through the
real engine → validate → failback → a second failover → DR test on a clone while production
keeps serving → chaos (replication stopped, primary killed) → automatic failover with the
measured loss equal to the application's count → lab down with no process left (by pid).

Marked `lab`; skipped when DATABASE_URL is set so it runs once, in make test's SQLite pass.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command

from failover import services
from failover.engine.runner import run_execution
from failover.lab import cluster, procs
from failover.lab.state import app_status_path, read_acked, read_json, read_route
from failover.models import FailoverExecution, StepRun
from plans.models import DRPlan
from runbooks.choices import VersionStatus
from runbooks.models import RunbookVersion

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="the lab runs once, in the SQLite pass"),
]


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
    deadline = time.monotonic() + 10
    while True:
        replication = cluster.status(root)["replication"]
        if replication and replication[0]["state"] == "streaming":
            break
        assert time.monotonic() < deadline, replication
        time.sleep(0.1)
    assert (replication[0]["primary"], replication[0]["standby"]) == (primary, standby)


def acks_grow(root: Path, seconds: float = 5) -> bool:
    before = len(read_acked(root))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if len(read_acked(root)) > before:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.django_db(transaction=True)
def test_lab_cycle_failover_failback_dr_test_chaos(lab_root: Path, api_for) -> None:
    call_command("seed_demo", verbosity=0)
    out = lab("up")
    assert "orders app pid" in out
    for slug in ("postgres-failover", "postgres-failback", "redis-failover", "lab-dr-test"):
        assert f"{slug} 1.0.0: approved by approver" in out
        version = RunbookVersion.objects.get(runbook__slug=slug)
        assert version.status == VersionStatus.APPROVED and version.created_by is None
    state = read_json(lab_root / "state.json")
    started_pids = cluster.recorded_pids(state)
    assert "already up" in lab("up")  # twice is harmless
    assert cluster.recorded_pids(read_json(lab_root / "state.json")) == started_pids

    status_text = lab("status")
    assert "replication pg1 -> pg2: streaming (async)" in status_text
    assert roles(lab_root) == {"pg1": "primary", "pg2": "standby"}
    plan = DRPlan.objects.get(plan_id="lab")
    operator = User.objects.get(username="operator")

    # 1. A planned failover of the Lab plan: postgres (tier 1) and redis (tier 2) composed.
    triggered = time.monotonic()
    execution = run(services.start_failover(plan, execution_type="planned", actor=operator, reason="lab test"))
    elapsed = time.monotonic() - triggered
    keys = set(StepRun.objects.filter(execution=execution).values_list("step_key", flat=True))
    assert {"lab-postgres.promote-standby", "lab-redis.promote-replica"} <= keys
    assert roles(lab_root) == {"pg1": None, "pg2": "primary"}
    assert read_route(lab_root)["postgres"]["node"] == "pg2"
    assert read_route(lab_root)["redis"]["node"] == "redis2"
    validated = output(execution, "lab-postgres.validate-orders")
    assert validated["write_ok"] is True
    assert validated["acked_before_switch"] > 0 and validated["acked_after_switch"] > 0
    assert validated["missing_count"] == 0 and validated["app_counted_lost"] == 0
    assert (execution.data_loss_transactions, execution.data_loss_bytes, execution.actual_rpo_seconds) == (0, 0, 0.0)
    assert execution.actual_rto_seconds is not None and execution.actual_rto_seconds < 30
    assert list(execution.validation_results.values_list("status", flat=True)) == ["passed"]
    promoted = output(execution, "lab-postgres.promote-standby")
    print(
        f"\n[lab] planned failover: trigger -> completed {elapsed:.2f} s,"
        f" measured RTO {execution.actual_rto_seconds:.2f} s, pg_promote() {promoted['promote_seconds']:.3f} s"
    )

    # 2. Failback: rebuild pg1 as a standby (pg_rewind), switch over back to it.
    failback = run(services.start_failback(plan, actor=operator))
    assert output(failback, "lab-postgres.rebuild-old-primary")["method"] == "pg_rewind"
    assert output(failback, "lab-postgres.validate-orders")["missing_count"] == 0
    assert roles(lab_root) == {"pg1": "primary", "pg2": "standby"}
    assert_streaming(lab_root, "pg1", "pg2")

    # 3. A second failover works, and a second failback.
    second = run(services.start_failover(plan, execution_type="planned", actor=operator))
    assert roles(lab_root) == {"pg1": None, "pg2": "primary"}
    assert second.data_loss_transactions == 0
    run(services.start_failback(plan, actor=operator))
    assert roles(lab_root) == {"pg1": "primary", "pg2": "standby"}

    # 4. Non-disruptive DR test through the API, on a clone of the standby.
    response = api_for("operator").post("/api/v1/dr/test", {"plan": "lab"}, format="json")
    assert response.status_code == 201, response.json()
    test = run(FailoverExecution.objects.get(pk=response.json()["id"]))
    production = output(test, "lab-postgres.check-production")
    assert production["orders_during_test"] > 0 and production["replication"] == "streaming"
    assert output(test, "lab-postgres.validate-clone")["missing"] == 0
    clone_pids = output(test, "lab-postgres.teardown-clone")["pids_checked"]
    assert clone_pids and not [p for p in clone_pids if procs.alive(p)]
    assert not list(lab_root.glob("clone-*/")) and not read_json(lab_root / "state.json")["clones"]
    assert test.actual_rto_seconds is not None
    assert roles(lab_root) == {"pg1": "primary", "pg2": "standby"}
    assert_streaming(lab_root, "pg1", "pg2")
    assert acks_grow(lab_root)

    # 5. Chaos: the standby stops receiving WAL, the primary is SIGKILLed. The lab's monitor (started
    #    by `lab up`) sees the primary gone for the plan's detection window and, the Lab plan being
    #    automatic, starts an unplanned failover; it loses what the standby never got, and reports
    #    exactly what the app counted.
    assert procs.alive(read_json(lab_root / "state.json")["monitor"]["pid"])
    lab("chaos", "stop-replication")
    time.sleep(0.7)
    lab("chaos", "kill-primary")
    killed_at = time.monotonic()
    assert not procs.alive(read_json(lab_root / "state.json")["postgres"]["pg1"]["pid"])
    window = plan.detection_window_seconds
    while not FailoverExecution.objects.filter(trigger_type="automatic").exists():
        assert time.monotonic() - killed_at < window + 5, "the monitor did not start a failover"
        time.sleep(0.1)
    detected = time.monotonic() - killed_at
    assert detected >= window - 1  # a failure must last the window (first probe up to 1 s after the kill)
    automatic = run(FailoverExecution.objects.get(trigger_type="automatic"))
    assert automatic.execution_type == "unplanned"
    assert automatic.disaster_declared_at < automatic.triggered_at
    print(f"[lab] kill -9 of the primary -> automatic failover started {detected:.2f} s later (window {window} s)")
    assert automatic.trigger_type == "automatic"
    validated = output(automatic, "lab-postgres.validate-orders")
    deadline = time.monotonic() + 5
    while str(validated["epoch"] - 1) not in (read_json(app_status_path(lab_root)) or {}).get("lost", {}):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    app_lost = read_json(app_status_path(lab_root))["lost"][str(validated["epoch"] - 1)]
    assert validated["missing_ids"] == app_lost
    assert automatic.data_loss_transactions == len(app_lost) > 0
    lost_wal = output(automatic, "lab-postgres.promote-standby")["lost_wal"]
    # The database's own count agrees with the app's (+1 if a commit was in flight, never acked).
    assert len(app_lost) <= lost_wal["commits"] <= len(app_lost) + 1
    assert automatic.data_loss_bytes == lost_wal["bytes"] > 0
    assert 0 < automatic.actual_rpo_seconds < 5
    print(f"[lab] async loss: {len(app_lost)} orders (app), {lost_wal['commits']} commits in the dead primary's WAL")
    assert acks_grow(lab_root)

    # 6. lab down stops everything, checked by pid.
    everything = cluster.recorded_pids(read_json(lab_root / "state.json"))
    assert "no lab process left" in lab("down")
    assert not [pid for pid in everything if procs.alive(pid)]


def test_lab_up_twice_and_recovery_after_a_crash_in_sync_mode(lab_root: Path) -> None:
    """A crashed lab (every process killed) recovers with down + up; in synchronous mode a killed
    primary with replication stopped loses no acknowledged order."""
    from failover.engine.actions import StepContext
    from failover.lab import actions

    cluster.up(root=lab_root, log=lambda _: None)
    state = read_json(lab_root / "state.json")
    crashed = cluster.recorded_pids(state)
    for pid in crashed:
        procs.kill(pid)
    assert not procs.wait_gone(crashed, 10)
    assert cluster.health(read_json(lab_root / "state.json"))
    with pytest.raises(cluster.LabError, match="partly running"):
        cluster.up(root=lab_root, log=lambda _: None)
    cluster.down(root=lab_root, log=lambda _: None)
    cluster.up(root=lab_root, sync=True, log=lambda _: None)
    assert cluster.status(lab_root)["replication"][0]["sync_state"] == "sync"
    cluster.up(root=lab_root, log=lambda _: None)  # up again: nothing to do

    cluster.chaos("stop-replication", lab_root)  # commits now wait for the standby: no acks
    time.sleep(0.5)
    cluster.chaos("kill-primary", lab_root)
    ctx = StepContext(execution_id=0, step_key="test")
    actions.fence_primary(ctx)
    promoted = actions.promote_standby(ctx)
    actions.repoint_app(ctx)
    validated = actions.validate_orders(ctx)
    assert validated.output["missing_count"] == 0 and validated.measurements["data_loss_transactions"] == 0
    assert validated.output["acked_after_switch"] > 0
    assert promoted.output["lost_wal"]["commits"] <= 1  # at most the one commit that waited, never acked
    everything = cluster.recorded_pids(read_json(lab_root / "state.json"))
    cluster.down(root=lab_root, log=lambda _: None)
    assert not [pid for pid in everything if procs.alive(pid)]
