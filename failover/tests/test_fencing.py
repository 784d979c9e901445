"""Fencing (issue 15): the coordinator's deadline on its own monotonic clock, riding out database errors
within it, and lease expiry judged by the database server's clock, never a node's."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from failover.engine import lease
from failover.engine.lease import Fence, Fenced, LeaseLost, ride_out
from failover.engine.reaper import reap
from failover.models import ExecutionEvent, FailoverExecution
from failover.tests.engine_support import make_execution, messages, shell, steps_of


class FakeClock:
    """A monotonic clock the test moves; `sleep` moves it too."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# ------------------------------------------------------------------------------------------ the fence
def test_the_fence_deadline_is_lease_minus_margin_after_the_last_renewal_was_sent():
    clock = FakeClock()
    fence = Fence(clock=clock, lease=15, margin=3)
    assert fence.deadline() == 1012.0
    clock.now = 1004.9
    assert not fence.due()
    clock.now = 1005.0
    assert fence.due()  # renew every lease/3
    fence.renewed(1005.0)
    assert fence.deadline() == 1017.0 and fence.remaining() == 12.0
    fence.renewed(1001.0)  # an older send time (a slow answer that arrived late) never moves it back
    assert fence.deadline() == 1017.0
    clock.now = 1016.999
    assert not fence.passed()
    clock.now = 1017.0
    assert fence.passed()


def test_the_margin_defaults_to_a_fifth_of_the_lease_and_never_exceeds_half(settings):
    settings.ENGINE_LEASE_SECONDS = 15
    settings.ENGINE_LEASE_MARGIN_SECONDS = None
    assert lease.lease_margin_seconds() == 3.0
    settings.ENGINE_LEASE_MARGIN_SECONDS = 2
    assert lease.lease_margin_seconds() == 2.0
    settings.ENGINE_LEASE_MARGIN_SECONDS = 60
    assert lease.lease_margin_seconds() == 7.5


def test_ride_out_retries_database_errors_with_backoff_and_returns_when_the_database_is_back():
    clock = FakeClock()
    fence = Fence(clock=clock, lease=15, margin=3)
    failures = iter([True, True, True, False])

    def attempt() -> str:
        if next(failures):
            raise OperationalError("server closed the connection unexpectedly")
        return "renewed"

    assert ride_out(fence, attempt, sleep=clock.sleep) == "renewed"
    assert clock.sleeps == [0.1, 0.2, 0.4]


def test_ride_out_fences_at_the_deadline_and_never_attempts_after_it():
    clock = FakeClock()
    fence = Fence(clock=clock, lease=15, margin=3)
    clock.now = 1005.0  # a renewal is due and the database is gone
    attempts: list[float] = []

    def attempt() -> None:
        attempts.append(clock.now)
        raise OperationalError("connection refused")

    with pytest.raises(Fenced):
        ride_out(fence, attempt, sleep=clock.sleep)
    assert attempts and max(attempts) < fence.deadline() == 1012.0
    assert clock.now == 1012.0, "it waited until its deadline, not past it"
    assert max(clock.sleeps) == 1.0, "the backoff is capped"


def test_ride_out_lets_other_errors_through():
    fence = Fence(clock=FakeClock(), lease=15, margin=3)

    def attempt() -> None:
        raise LeaseLost

    with pytest.raises(LeaseLost):
        ride_out(fence, attempt, sleep=lambda _: None)


# ------------------------------------------------------------------- leases on the database's clock
@pytest.mark.django_db
def test_renewing_tells_the_fence_when_the_statement_was_sent():
    execution = make_execution([], status="running")
    reads = iter([500.0, 900.0])
    fence = Fence(clock=lambda: next(reads), lease=15, margin=3)  # constructed at 500
    assert lease.take_lease(execution.pk, "me:1:a", fence=fence)  # sent at 900
    assert fence.sent == 900.0
    ticks = iter([950.0])
    fence.clock = lambda: next(ticks)
    lease.renew_lease(execution.pk, "me:1:a", heartbeat_steps=False, fence=fence)
    assert fence.sent == 950.0
    fence.clock = lambda: 990.0
    with pytest.raises(LeaseLost):
        lease.renew_lease(execution.pk, "someone-else:2:b", heartbeat_steps=False, fence=fence)
    assert fence.sent == 950.0, "a renewal that failed does not move the deadline"


@pytest.mark.django_db
def test_a_node_whose_clock_runs_an_hour_ahead_takes_over_no_live_lease(monkeypatch, enqueued):
    live = make_execution([], status="running", coordinator="other-host:1:a")
    FailoverExecution.objects.filter(pk=live.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=10))
    skewed = timezone.now() + timedelta(hours=1)
    monkeypatch.setattr(timezone, "now", lambda: skewed)  # this node's wall clock, an hour fast
    assert lease.take_lease(live.pk, "fast-host:2:b") is False
    assert reap() == []
    live.refresh_from_db()
    assert live.coordinator == "other-host:1:a"
    monkeypatch.undo()
    FailoverExecution.objects.filter(pk=live.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert lease.take_lease(live.pk, "fast-host:2:b") is True  # expired by the database's clock: free


@pytest.mark.django_db
def test_the_lease_is_set_from_the_database_clock_not_the_nodes(monkeypatch):
    execution = make_execution([], status="running", coordinator="")
    skewed = timezone.now() - timedelta(hours=1)
    monkeypatch.setattr(timezone, "now", lambda: skewed)  # this node's clock, an hour slow
    assert lease.take_lease(execution.pk, "slow-host:1:a")
    monkeypatch.undo()
    execution.refresh_from_db()
    left = (execution.lease_expires_at - timezone.now()).total_seconds()
    assert lease.lease_seconds() - 2 < left <= lease.lease_seconds()


# ------------------------------------------------------------------------ a turn the database fails
@pytest.mark.django_db(transaction=True)
def test_a_database_error_in_the_middle_of_a_turn_is_undone_in_memory_too_and_the_turn_runs_again(monkeypatch):
    """The transaction that records `a` and starts `b` fails after both writes (a connection lost mid-way):
    the database rolled both back, so the coordinator's memory goes back too and the same turn runs again."""
    from failover.engine import runner

    execution = make_execution([shell("true", key="a"), shell("true", key="b", needs=["a"])])
    real_dispatch = runner.dispatch
    failures: list[str] = []

    def dispatch_then_lose_the_connection(c, submit):
        real_dispatch(c, submit)
        if any(step.step_key == "b" for step, _ in submit) and not failures:
            failures.append("b")
            raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(runner, "dispatch", dispatch_then_lose_the_connection)
    assert runner.run_execution(execution.pk) == "completed"
    assert failures == ["b"]
    steps = {key: (step.status, step.attempts) for key, step in steps_of(execution).items()}
    assert steps == {"a": ("succeeded", 1), "b": ("succeeded", 1)}
    events = messages(execution)
    assert events.count("a succeeded") == 1 and events.count("b started") == 1
    seqs = list(ExecutionEvent.objects.filter(execution=execution).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


@pytest.mark.django_db(transaction=True)
def test_a_commit_the_database_never_confirmed_fences_the_coordinator_at_once(monkeypatch, tmp_path, caplog):
    """Whether a failed commit was applied is unknown: running the turn again could record things twice, so the
    coordinator stops (its step stopped, nothing more written) and leaves the execution to the next one."""
    from django.db import connection

    from failover.engine import runner

    pid_file = tmp_path / "pid"
    execution = make_execution(
        [shell("true", key="a"), shell("sh", "-c", f"echo $$ > {pid_file}; exec sleep 30", key="b", needs=["a"])]
    )
    real_write_turn = runner.Coordinator._write_turn
    real_commit = connection.commit
    lost: list[bool] = []

    def commit_lost() -> None:
        lost.append(True)
        raise OperationalError("server closed the connection unexpectedly")

    def write_turn(self, batch):
        if any(m[0] == "done" for m in batch) and not lost:  # a's result: its commit is lost
            monkeypatch.setattr(connection, "commit", commit_lost)
            try:
                return real_write_turn(self, batch)
            finally:
                monkeypatch.setattr(connection, "commit", real_commit)
        return real_write_turn(self, batch)

    monkeypatch.setattr(runner.Coordinator, "_write_turn", write_turn)
    with caplog.at_level(logging.ERROR, logger="failover.engine.runner"):
        assert runner.run_execution(execution.pk) == "running"
    assert lost == [True]
    assert "fenced itself" in caplog.text and "outcome unknown" in caplog.text
    assert not pid_file.exists(), "b was never started: its dispatch was in the lost commit"
    assert steps_of(execution)["a"].status == "running"  # the next coordinator resolves it (reaper.py)


@pytest.mark.django_db(transaction=True)
def test_a_database_call_that_hangs_past_the_fence_still_stops_the_steps_and_the_coordinator(
    settings, monkeypatch, tmp_path
):
    """A network partition: the renewal neither fails nor answers. The watchdog stops the step at the fence
    deadline while the call still hangs; when the call returns, the coordinator stops too."""
    import os

    from failover.engine import runner

    settings.ENGINE_LEASE_SECONDS = 3
    settings.ENGINE_LEASE_MARGIN_SECONDS = 1
    pid_file = tmp_path / "pid"
    execution = make_execution([shell("sh", "-c", f"echo $$ > {pid_file}; exec sleep 30", key="long")])
    real_renew = runner.renew_lease
    seen: dict[str, bool] = {}

    def hanging_renew(*args, **kwargs):
        if pid_file.exists() and "hung" not in seen:
            seen["hung"] = True
            pid = int(pid_file.read_text())
            # hang until the step's process is gone (stopped by the watchdog), at most 20 s
            seen["step stopped while hanging"] = wait_gone(pid, 20)
        return real_renew(*args, **kwargs)

    def wait_gone(pid: int, timeout: float) -> bool:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.05)
        return False

    monkeypatch.setattr(runner, "renew_lease", hanging_renew)
    assert runner.run_execution(execution.pk) == "running"
    assert seen == {"hung": True, "step stopped while hanging": True}
    step = steps_of(execution)["long"]
    assert step.status == "running", "nothing recorded for it: the next coordinator resolves it"


# ----------------------------------------------------------------------------- late writes (fencing token)
@pytest.mark.django_db(transaction=True)
def test_every_write_of_the_coordinators_thread_is_conditional_on_its_lease():
    """Inside `fenced_writes` a transaction that writes the execution's state goes through only while the lease is
    the coordinator's and unexpired by the database's clock; otherwise LeaseLost and the transaction rolls back.
    The outcome hook's writes, after the coordinator gave the execution up, are not its turns (`unfenced`)."""
    from django.db import transaction

    from failover.models import StepRun

    execution = make_execution([shell("true", key="a")], status="running")
    step = StepRun.objects.get(execution=execution)
    assert lease.take_lease(execution.pk, "me:1:a")
    with lease.fenced_writes(execution.pk, "me:1:a") as token:
        with transaction.atomic():
            StepRun.objects.filter(pk=step.pk).update(error="first")
            StepRun.objects.filter(pk=step.pk).update(output={"n": 1})
        StepRun.objects.filter(pk=step.pk).update(title="on its own")
        lease.renew_lease(execution.pk, "me:1:a", heartbeat_steps=True)
        assert token.refused == 0
        FailoverExecution.objects.filter(pk=execution.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        with pytest.raises(LeaseLost, match="write refused"), transaction.atomic():
            StepRun.objects.filter(pk=step.pk).update(title="after expiry")
        lease.renew_lease(execution.pk, "me:1:a", heartbeat_steps=False)  # still ours: the lease's own statement
    FailoverExecution.objects.filter(pk=execution.pk).update(coordinator="other:2:b")  # another node took over
    with lease.fenced_writes(execution.pk, "me:1:a") as token:
        with pytest.raises(LeaseLost), transaction.atomic():
            ExecutionEvent.objects.create(execution=execution, seq=99, kind="log", message="late")
            StepRun.objects.filter(pk=step.pk).update(error="late")
        assert token.refused == 1
        with lease.unfenced(), transaction.atomic():
            StepRun.objects.filter(pk=step.pk).update(output={"n": 2})  # e.g. the outcome hook, after the end
    step.refresh_from_db()
    assert (step.error, step.output, step.title) == ("first", {"n": 2}, "on its own")
    assert not ExecutionEvent.objects.filter(execution=execution, message="late").exists()


def _wait_gone(pid: int, timeout: float) -> bool:
    """Whether the process ended (a zombie not reaped yet runs nothing) within `timeout` s, polled every 0.02 s."""
    import time

    from drplan.tests.cluster_support import alive

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


@pytest.mark.django_db(transaction=True)
def test_a_coordinator_that_fences_during_a_rollback_stops_that_rollback_and_runs_no_other(
    settings, monkeypatch, tmp_path
):
    """The renewal hangs (a partition) while b's rollback runs: at the fence deadline the rollback's process is
    stopped, and the coordinator neither records it nor starts a's rollback: it stops, ROLLING_BACK is left for
    the next coordinator."""
    from failover.engine import runner

    settings.ENGINE_LEASE_SECONDS = 3
    settings.ENGINE_LEASE_MARGIN_SECONDS = 1
    undone, pid_file = tmp_path / "undone", tmp_path / "pid"

    def undo(script: str) -> dict:
        return {"action": "shell", "with": {"argv": ["sh", "-c", script]}}

    execution = make_execution(
        [
            shell("true", key="a", rollback=undo(f"echo a >> {undone}")),
            shell(
                "true", key="b", needs=["a"], rollback=undo(f"echo b >> {undone}; echo $$ > {pid_file}; exec sleep 30")
            ),
            shell("false", key="boom", needs=["b"]),
        ],
        parallelism=1,
    )
    real_renew = runner.renew_lease
    seen: dict[str, bool] = {}

    def hanging_renew(*args, **kwargs):
        if pid_file.exists() and "hung" not in seen:
            seen["hung"] = True
            seen["rollback stopped while hanging"] = _wait_gone(int(pid_file.read_text()), 20)
        return real_renew(*args, **kwargs)

    monkeypatch.setattr(runner, "renew_lease", hanging_renew)
    assert runner.run_execution(execution.pk) == "rolling_back"
    assert seen == {"hung": True, "rollback stopped while hanging": True}
    assert undone.read_text().split() == ["b"], "a's rollback never started"
    steps = steps_of(execution)
    assert (steps["b"].rollback_status, steps["a"].rollback_status) == ("running", "")
    assert not [m for m in messages(execution) if "rolled back" in m or "rollback failed" in m]


@pytest.mark.django_db(transaction=True)
def test_a_step_that_ignores_sigterm_is_killed_before_the_lease_can_expire(settings, monkeypatch, tmp_path):
    """The renewal hangs (a partition); the step's shell traps TERM and its grace is the default 5 s, longer than
    what is left of the lease after the fence deadline: its whole process group gets SIGKILL in time, so when it
    is gone the lease is still live by the database's clock (no other coordinator could have started yet)."""
    from django.db.models.functions import Now

    from failover.engine import runner

    settings.ENGINE_LEASE_SECONDS = 6  # renewals every 2 s, the fence deadline 4 s after the last one
    settings.ENGINE_LEASE_MARGIN_SECONDS = 2
    pid_file, child_file = tmp_path / "pid", tmp_path / "child"
    child = f"trap '' TERM; echo $$ > {child_file}; while :; do sleep 0.1; done"
    script = f"trap '' TERM; sh -c '{child}' & echo $$ > {pid_file}; wait"
    execution = make_execution([shell("sh", "-c", script, key="stubborn")])
    real_renew = runner.renew_lease
    seen: dict[str, bool] = {}

    def hanging_renew(*args, **kwargs):
        if child_file.exists() and pid_file.exists() and "hung" not in seen:
            seen["hung"] = True
            pids = [int(pid_file.read_text()), int(child_file.read_text())]
            seen["gone"] = all(_wait_gone(pid, 20) for pid in pids)
            seen["lease still live"] = FailoverExecution.objects.filter(
                pk=execution.pk, lease_expires_at__gt=Now()
            ).exists()
        return real_renew(*args, **kwargs)

    monkeypatch.setattr(runner, "renew_lease", hanging_renew)
    assert runner.run_execution(execution.pk) == "running"
    assert seen == {"hung": True, "gone": True, "lease still live": True}
