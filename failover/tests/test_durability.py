"""Durability: worker death (kill -9 of a real worker process), the reaper, and the lease.

The worker processes use this test run's database (engine_support.subprocess_env): a
file-backed SQLite test database, or the PostgreSQL test database under with_postgres.py."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import subprocess
import threading
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from failover.engine.reaper import (
    REQUEUE_RESERVATION_SECONDS,
    coordinator_is_dead_local_process,
    reap,
    start_lease_watch,
    watch_leases,
)
from failover.engine.runner import run_execution
from failover.models import ExecutionEvent, FailoverExecution
from failover.tasks import REAP_SCHEDULE_NAME, enqueue_execution, on_worker_start
from failover.tests.engine_support import (
    in_thread,
    make_execution,
    messages,
    shell,
    start,
    steps_of,
    stop,
    subprocess_env,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = "1.5"  # seconds, for the worker processes of these tests


def _queued_executions() -> list[int]:
    return [q.task["args"][0] for q in OrmQ.objects.all() if q.task["func"] == "failover.tasks.run_execution"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _kill_leftovers(pids_file: Path) -> None:
    for pid in _lines(pids_file):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def _marked_step(tmp_path: Path, *, idempotent: bool) -> FailoverExecution:
    """`work` appends to a marker file, then takes 3 s; `after` runs once it succeeded."""
    marker, pids = tmp_path / "marker", tmp_path / "pids"
    script = f"echo $$ >> {pids}; echo ran >> {marker}; exec sleep 3"
    return make_execution(
        [shell("sh", "-c", script, key="work", idempotent=idempotent), shell("true", key="after", needs=["work"])]
    )


def _kill_coordinator_mid_step(tmp_path: Path, execution: FailoverExecution) -> str:
    """Run the execution on a real qcluster, SIGKILL the worker process running its coordinator
    while `work` runs, let the lease lapse, reap. Returns the dead coordinator's id."""
    env = subprocess_env(DRPLAN_ENGINE_LEASE_SECONDS=LEASE, DRPLAN_WORKERS="1")
    cluster = start(["manage.py", "qcluster"], env, tmp_path / "qcluster.log")
    try:
        enqueue_execution(execution.pk)
        wait_for(lambda: _lines(tmp_path / "marker"), timeout=30)
        execution.refresh_from_db()
        dead = execution.coordinator
        _, pid, _ = dead.split(":")
        assert int(pid) != cluster.pid  # a worker process of the cluster, not its sentinel
        os.kill(int(pid), signal.SIGKILL)
        assert steps_of(execution)["work"].status == "running"
        lapsed = FailoverExecution.objects.get(pk=execution.pk).lease_expires_at
        wait_for(lambda: timezone.now() > lapsed, timeout=5)
        reap()  # (the respawned worker reaps at start too; either re-enqueues, once)
        wait_for(lambda: FailoverExecution.objects.get(pk=execution.pk).status in ("completed", "paused"), timeout=30)
        return dead
    finally:
        stop(cluster)
        _kill_leftovers(tmp_path / "pids")


@pytest.mark.redis  # also run with the Redis broker (make test's Redis pass)
def test_kill_9_of_the_worker_mid_step_reruns_an_idempotent_step_exactly_once_more(tmp_path: Path):
    execution = _marked_step(tmp_path, idempotent=True)
    dead = _kill_coordinator_mid_step(tmp_path, execution)
    execution.refresh_from_db()
    assert execution.status == "completed"
    assert execution.coordinator == ""
    assert _lines(tmp_path / "marker") == ["ran", "ran"]
    steps = steps_of(execution)
    assert steps["work"].attempts == 2
    assert steps["work"].worker not in ("", dead)
    assert steps["after"].status == "succeeded"
    assert f"work: retrying after worker loss ({dead})" in messages(execution)


@pytest.mark.redis  # also run with the Redis broker (make test's Redis pass)
def test_kill_9_of_the_worker_mid_step_never_reruns_a_non_idempotent_step(tmp_path: Path):
    execution = _marked_step(tmp_path, idempotent=False)
    dead = _kill_coordinator_mid_step(tmp_path, execution)
    execution.refresh_from_db()
    assert execution.status == "paused"
    assert execution.error.startswith("step 'work' was running when its worker died and is not idempotent; not re-run.")
    steps = steps_of(execution)
    assert (steps["work"].status, steps["work"].attempts) == ("lost", 1)
    assert dead in steps["work"].error
    assert steps["after"].status == "pending"
    time.sleep(0.5)
    assert _lines(tmp_path / "marker") == ["ran"]
    # Paused: nobody holds it and the reaper leaves it to the operator.
    assert execution.coordinator == ""
    assert reap() == []


def test_a_worker_killed_mid_step_is_taken_over_by_its_respawned_sibling_before_its_lease_runs_out(tmp_path: Path):
    """With the default 15 s lease and nobody calling reap(): django-q2 respawns the killed worker, the new
    worker reaps at start, sees the coordinator's process is gone and takes the execution over at once."""
    execution = _marked_step(tmp_path, idempotent=True)
    env = subprocess_env(DRPLAN_ENGINE_LEASE_SECONDS="15", DRPLAN_WORKERS="1")
    cluster = start(["manage.py", "qcluster"], env, tmp_path / "qcluster.log")
    try:
        enqueue_execution(execution.pk)
        wait_for(lambda: _lines(tmp_path / "marker"), timeout=30)
        execution.refresh_from_db()
        dead, lease_of_the_dead = execution.coordinator, execution.lease_expires_at
        os.kill(int(dead.split(":")[1]), signal.SIGKILL)
        wait_for(lambda: len(_lines(tmp_path / "marker")) == 2, timeout=60)
        rerun_started = timezone.now()
        wait_for(lambda: FailoverExecution.objects.get(pk=execution.pk).status == "completed", timeout=60)
    finally:
        stop(cluster)
        _kill_leftovers(tmp_path / "pids")
    assert rerun_started < lease_of_the_dead
    assert f"work: retrying after worker loss ({dead})" in messages(execution)


def test_two_coordinators_for_one_execution_only_one_runs_the_steps(tmp_path: Path):
    marker = tmp_path / "marker"
    execution = make_execution([shell("sh", "-c", f"echo ran >> {marker}; sleep 1", key="once")])
    env = subprocess_env(DRPLAN_ENGINE_LEASE_SECONDS=LEASE)
    argv = ["manage.py", "engine", "run", str(execution.pk)]
    first, second = start(argv, env, tmp_path / "one.log"), start(argv, env, tmp_path / "two.log")
    try:
        assert first.wait(timeout=60) == 0
        assert second.wait(timeout=60) == 0
    finally:
        stop(first)
        stop(second)
    outputs = sorted([(tmp_path / "one.log").read_text().split()[-1], (tmp_path / "two.log").read_text().split()[-1]])
    assert "completed" in outputs
    assert _lines(marker) == ["ran"]
    execution.refresh_from_db()
    assert execution.status == "completed"
    assert steps_of(execution)["once"].attempts == 1
    assert len([m for m in messages(execution) if m.startswith("execution started by")]) == 1


# --------------------------------------------------------------------------- reaper, in process
def test_reaper_reenqueues_an_execution_whose_lease_expired_once():
    now = timezone.now()
    stale = make_execution([], status="running", coordinator="gone:1:x", lease_expires_at=now - timedelta(seconds=1))
    alive = make_execution([], status="running", coordinator="here:2:y", lease_expires_at=now + timedelta(seconds=10))
    assert reap(now) == [f"execution {stale.pk} (running): lease of gone:1:x expired; re-enqueued"]
    assert _queued_executions() == [stale.pk]
    assert reap(now + timedelta(seconds=5)) == []  # reserved: not enqueued twice while the task waits
    stale.refresh_from_db()
    assert stale.coordinator == ""
    assert alive.pk not in _queued_executions()


def test_reaper_takes_over_at_once_from_a_dead_process_of_this_host_whose_lease_is_still_live():
    """A crashed local worker's lease need not run out: its pid no longer exists, so it writes nothing more."""
    now = timezone.now()
    dead_process = subprocess.Popen(["true"])
    dead_process.wait()
    host = socket.gethostname()
    live_lease = now + timedelta(seconds=60)
    orphan = make_execution(
        [], status="running", coordinator=f"{host}:{dead_process.pid}:x", lease_expires_at=live_lease
    )
    mine = make_execution([], status="running", coordinator=f"{host}:{os.getpid()}:y", lease_expires_at=live_lease)
    remote = make_execution([], status="running", coordinator="other-host:1:z", lease_expires_at=live_lease)
    assert reap(now) == [
        f"execution {orphan.pk} (running): coordinator {host}:{dead_process.pid}:x is gone; re-enqueued"
    ]
    assert _queued_executions() == [orphan.pk]
    for untouched in (mine, remote):
        untouched.refresh_from_db()
        assert untouched.lease_expires_at == live_lease
    assert reap(now) == []  # reserved: not enqueued twice


def test_coordinator_identity_is_only_known_dead_for_a_missing_local_pid():
    host = socket.gethostname()
    assert not coordinator_is_dead_local_process(f"{host}:{os.getpid()}:a")
    assert not coordinator_is_dead_local_process("elsewhere:999999:a")
    assert not coordinator_is_dead_local_process("garbage")
    assert not coordinator_is_dead_local_process(f"{host}:notapid:a")
    zombie = subprocess.Popen(["true"])  # exited, not yet waited for: a zombie runs nothing
    try:
        wait_for(lambda: Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z", 15)
        assert coordinator_is_dead_local_process(f"{host}:{zombie.pid}:a")
    finally:
        zombie.wait()


def test_reaper_reenqueues_a_pending_execution_nobody_picked_up():
    now = timezone.now()
    old = make_execution([], triggered_at=now - timedelta(seconds=120))
    fresh = make_execution([], triggered_at=now - timedelta(seconds=5))
    make_execution([], status="paused", triggered_at=now - timedelta(hours=1))
    make_execution([], status="completed", triggered_at=now - timedelta(hours=1))
    assert reap(now) == [f"execution {old.pk} (pending): no coordinator; re-enqueued"]
    assert _queued_executions() == [old.pk]
    assert fresh.pk not in _queued_executions()


def test_a_new_coordinator_resolves_steps_of_a_dead_one(tmp_path: Path):
    marker = tmp_path / "marker"
    lapsed = timezone.now() - timedelta(seconds=1)
    execution = make_execution(
        [
            shell(
                "sh",
                "-c",
                f"echo again >> {marker}",
                key="safe",
                idempotent=True,
                status="running",
                attempts=1,
                worker="dead:9:z",
            ),
            shell("true", key="next", needs=["safe"]),
        ],
        status="running",
        coordinator="dead:9:z",
        lease_expires_at=lapsed,
    )
    assert run_execution(execution.pk) == "completed"
    assert _lines(marker) == ["again"]
    assert steps_of(execution)["safe"].attempts == 2

    unsafe = make_execution(
        [
            shell("true", key="a", status="succeeded"),
            shell("touch", str(tmp_path / "unsafe"), key="charge", status="running", attempts=1, worker="dead:9:z"),
        ],
        status="running",
        coordinator="dead:9:z",
        lease_expires_at=lapsed,
    )
    assert run_execution(unsafe.pk) == "paused"
    assert not (tmp_path / "unsafe").exists()
    assert steps_of(unsafe)["charge"].status == "lost"


def test_the_lease_and_step_heartbeats_are_renewed_while_a_long_step_runs(settings, tmp_path: Path):
    settings.ENGINE_LEASE_SECONDS = 0.6
    execution = make_execution([shell("sleep", "1.5", key="long")])
    reaped: list[list[str]] = []
    stop_reaping = threading.Event()

    def reaper_loop() -> None:
        while not stop_reaping.is_set():
            reaped.append(reap())
            time.sleep(0.1)

    thread = in_thread(reaper_loop)
    try:
        assert run_execution(execution.pk) == "completed"
    finally:
        stop_reaping.set()
        thread.join()
    assert len(reaped) > 5
    assert not any(reaped)  # the lease never lapsed: nobody re-enqueued a live execution
    step = steps_of(execution)["long"]
    assert (step.heartbeat_at - step.started_at).total_seconds() >= 0.2


def test_a_coordinator_that_lost_its_lease_stops_its_steps_and_writes_nothing_more(tmp_path: Path):
    pid_file = tmp_path / "pid"
    execution = make_execution(
        [
            {
                "key": "long",
                "action": "shell",
                "with": {"argv": ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"], "kill_grace_seconds": 0.3},
            }
        ]
    )
    events_at_steal: list[int] = []

    def steal() -> None:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())
        events_at_steal.append(ExecutionEvent.objects.filter(execution=execution).count())
        FailoverExecution.objects.filter(pk=execution.pk).update(coordinator="thief:1:t")

    thread = in_thread(steal)
    assert run_execution(execution.pk) == "running"
    thread.join()
    wait_for(lambda: not _alive(int(pid_file.read_text())), timeout=3)
    assert ExecutionEvent.objects.filter(execution=execution).count() == events_at_steal[0]
    assert steps_of(execution)["long"].status == "running"  # the new coordinator resolves it
    execution.refresh_from_db()
    assert execution.coordinator == "thief:1:t"


def test_the_lease_watch_takes_over_a_lapsed_lease_once_and_leaves_live_ones():
    """A node lost with its coordinator: the other nodes' lease watch re-enqueues the execution once its lease has
    lapsed by the database's clock, without waiting for the reap schedule's next pass, and only once."""
    now = timezone.now()
    lapsing_at = now + timedelta(seconds=1)
    lapsing = make_execution([], status="running", coordinator="lost-node:1:x", lease_expires_at=lapsing_at)
    live = make_execution(
        [], status="running", coordinator="other-node:2:y", lease_expires_at=now + timedelta(seconds=600)
    )
    stop = threading.Event()
    watch = threading.Thread(target=watch_leases, args=(0.05, stop), name="test-lease-watch")
    watch.start()
    try:
        wait_for(lambda: _queued_executions() == [lapsing.pk], timeout=30)
        time.sleep(0.5)  # further ticks of the watch
        assert _queued_executions() == [lapsing.pk], "enqueued once"
    finally:
        stop.set()
        watch.join(10)
    assert not watch.is_alive()
    lapsing.refresh_from_db()
    assert lapsing.coordinator == ""  # the reaper's reservation for the re-enqueued task …
    reserved_at = lapsing.lease_expires_at - timedelta(seconds=REQUEUE_RESERVATION_SECONDS)
    assert reserved_at >= lapsing_at  # … made after the lease had lapsed
    live.refresh_from_db()
    assert (live.coordinator, live.lease_expires_at) == ("other-node:2:y", now + timedelta(seconds=600))
    assert not start_lease_watch(0), "DRPLAN_ENGINE_LEASE_WATCH_SECONDS=0 turns the watch off"


def test_reap_schedule_is_created_once_and_a_starting_worker_reaps(settings):
    settings.CLOCK_CHECK_SECONDS = 0  # no clock-watch thread in the test process (core/dbtime.py)
    settings.ENGINE_LEASE_WATCH_SECONDS = 0  # nor a lease-watch thread (failover/engine/reaper.py)
    stale = make_execution(
        [], status="running", coordinator="gone:1:x", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    frozen = gc.get_freeze_count()
    try:
        on_worker_start(proc_name="Process-1")
        on_worker_start(proc_name="Process-2")
        # what it loaded is out of the collector's reach (full collections would otherwise pause its coordinators)
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()  # (this test process is not a worker)
    schedules = list(Schedule.objects.filter(name=REAP_SCHEDULE_NAME).values_list("func", "schedule_type", "cron"))
    assert schedules == [("failover.tasks.reap", Schedule.CRON, "* * * * * */30")]
    assert _queued_executions() == [stale.pk]
    out = StringIO()
    call_command("engine", "schedule", stdout=out)
    assert out.getvalue() == "reaper schedule already present\n"
