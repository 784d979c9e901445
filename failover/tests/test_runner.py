"""The coordinator runs an execution's DAG in process: order, parallelism, priority, timeouts,
retries, manual steps and gates, cancel, dry run, secrets, measurements.

Real actions (shell processes), a real database; nothing of the engine is mocked."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.utils import timezone

from core.secrets import set_secret
from failover.engine.actions import ActionResult, StepContext, executor
from failover.engine.runner import run_execution, take_lease
from failover.engine.states import transition_step
from failover.models import ExecutionEvent, FailoverExecution, StepRun
from failover.tests.engine_support import in_thread, make_execution, messages, shell, steps_of, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def _max_concurrency(steps: list[StepRun]) -> int:
    edges = sorted([(s.started_at, 1) for s in steps] + [(s.finished_at, -1) for s in steps], key=lambda e: e[:2])
    current = peak = 0
    for _, delta in edges:  # at equal times an end (-1) sorts before a start (+1)
        current += delta
        peak = max(peak, current)
    return peak


def test_dag_order_and_parallelism_limit():
    fan = [shell("sleep", "0.2", key=f"p{i}", needs=["start"]) for i in range(6)]
    execution = make_execution(
        [shell("true", key="start"), *fan, shell("true", key="join", needs=[f"p{i}" for i in range(6)])],
        parallelism=2,
    )
    assert run_execution(execution.pk) == "completed"
    steps = steps_of(execution)
    assert {s.status for s in steps.values()} == {"succeeded"}
    parallel = [steps[f"p{i}"] for i in range(6)]
    assert _max_concurrency(list(steps.values())) == 2
    for step in parallel:
        assert step.started_at >= steps["start"].finished_at
        assert steps["join"].started_at >= step.finished_at
    assert all(s.attempts == 1 and s.worker and s.duration_seconds > 0 for s in steps.values())
    # six 0.2 s steps two at a time: about 0.6 s, not 1.2 s
    span = (steps["join"].started_at - steps["start"].finished_at).total_seconds()
    assert 0.6 <= span < 1.1


def test_higher_priority_goes_first_when_slots_are_scarce():
    execution = make_execution(
        [
            shell("sleep", "0.05", key="low", priority=1),
            shell("sleep", "0.05", key="tier3", priority=5, tier=3),
            shell("sleep", "0.05", key="high", priority=9),
            shell("sleep", "0.05", key="tier1", priority=5, tier=1),
            shell("sleep", "0.05", key="tier1-later-id", priority=5, tier=1),
        ],
        parallelism=1,
    )
    assert run_execution(execution.pk) == "completed"
    order = sorted(steps_of(execution).values(), key=lambda s: s.started_at)
    assert [s.step_key for s in order] == ["high", "tier1", "tier1-later-id", "tier3", "low"]


def test_timeout_kills_the_step_process_tree(tmp_path: Path):
    pid_file = tmp_path / "grandchild.pid"
    script = f"sh -c 'trap \"\" TERM; echo $$ > {pid_file}; sleep 60' & sleep 60"
    execution = make_execution(
        [
            {
                "key": "hang",
                "action": "shell",
                "with": {"argv": ["sh", "-c", script], "kill_grace_seconds": 0.3},
                "timeout_seconds": 1,
            },
            {"key": "after", "action": "noop", "needs": ["hang"]},
        ],
        on_failure="stop",
    )
    started = time.monotonic()
    assert run_execution(execution.pk) == "failed"
    assert time.monotonic() - started < 5
    steps = steps_of(execution)
    assert steps["hang"].status == "failed"
    assert steps["hang"].error == "timed out after 1s; process group killed"
    assert steps["after"].status == "pending"
    grandchild = int(pid_file.read_text())
    wait_for(lambda: not _alive(grandchild), timeout=3)
    execution.refresh_from_db()
    assert execution.error == "step 'hang' failed: timed out after 1s; process group killed"


def test_retries_with_exponential_backoff(tmp_path: Path):
    tries = tmp_path / "tries"
    # Fails twice, succeeds on the third attempt; each attempt records when it ran.
    script = f'date +%s.%N >> {tries}; [ "$(wc -l < {tries})" -ge 3 ]'
    execution = make_execution([shell("sh", "-c", script, key="flaky", retries=3)])
    assert run_execution(execution.pk) == "completed"
    step = steps_of(execution)["flaky"]
    assert step.status == "succeeded"
    assert step.attempts == 3
    times = [float(line) for line in tries.read_text().split()]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.5  # 0.5 s before the 2nd attempt
    assert times[2] - times[1] >= 1.0  # 1 s before the 3rd
    log = messages(execution)
    assert "flaky: attempt 1 failed: exit code 1 (expected [0]); retrying in 0.5s" in log
    assert "flaky: attempt 2 failed: exit code 1 (expected [0]); retrying in 1s" in log
    assert "flaky attempt 3 started" in log


def test_retries_exhausted_fail_the_step_after_retries_plus_one_attempts(tmp_path: Path):
    count = tmp_path / "count"
    execution = make_execution(
        [shell("sh", "-c", f"echo x >> {count}; exit 2", key="broken", retries=1)], on_failure="stop"
    )
    assert run_execution(execution.pk) == "failed"
    step = steps_of(execution)["broken"]
    assert (step.status, step.attempts) == ("failed", 2)
    assert count.read_text().count("x") == 2


def test_continue_on_failure_lets_dependents_run_and_a_real_failure_stops_dispatch():
    execution = make_execution(
        [
            shell("false", key="optional", continue_on_failure=True),
            shell("true", key="uses-optional", needs=["optional"]),
            shell("false", key="required", needs=["uses-optional"]),
            shell("true", key="never", needs=["required"]),
        ],
        on_failure="stop",
    )
    assert run_execution(execution.pk) == "failed"
    steps = steps_of(execution)
    assert steps["optional"].status == "failed"
    assert steps["uses-optional"].status == "succeeded"
    assert steps["required"].status == "failed"
    assert steps["never"].status == "pending"  # resumable later; never started
    execution.refresh_from_db()
    assert execution.error == "step 'required' failed: exit code 1 (expected [0])"


def test_continue_on_failure_alone_still_completes():
    execution = make_execution(
        [shell("false", key="best-effort", continue_on_failure=True), shell("true", key="next", needs=["best-effort"])]
    )
    assert run_execution(execution.pk) == "completed"


def test_manual_step_waits_for_confirmation_then_dependents_run():
    execution = make_execution(
        [
            shell("true", key="prepare"),
            {
                "key": "check-dashboard",
                "action": "manual",
                "needs": ["prepare"],
                "with": {"instructions": "Look at {{ params.dashboard }}"},
            },
            shell("true", key="after", needs=["check-dashboard"]),
        ],
        parameters={"dashboard": "grafana/dr"},
    )
    confirmed_at: list[float] = []

    def confirm() -> None:
        step = wait_for(lambda: StepRun.objects.filter(execution=execution, status="waiting").first())
        time.sleep(0.3)
        now = timezone.now()
        assert transition_step(step, "succeeded", only_from={"waiting"}, confirmed_at=now, finished_at=now)
        confirmed_at.append(time.monotonic())

    thread = in_thread(confirm)
    assert run_execution(execution.pk) == "completed"
    thread.join()
    steps = steps_of(execution)
    manual = steps["check-dashboard"]
    assert manual.waiting_for == "confirmation"
    assert manual.rendered == {"instructions": "Look at grafana/dr"}
    assert "check-dashboard waits for confirmation: Look at grafana/dr" in messages(execution)
    assert steps["after"].started_at >= manual.finished_at
    assert manual.duration_seconds >= 0.3


def test_step_approval_gate_runs_the_step_once_approved_and_fails_it_when_rejected(tmp_path: Path):
    marker = tmp_path / "ran"
    execution = make_execution([shell("touch", str(marker), key="switch-dns", approval={"role": "approver"})])

    def approve() -> None:
        wait_for(lambda: StepRun.objects.filter(execution=execution, status="waiting", waiting_for="approval").exists())
        assert not marker.exists()  # nothing runs before the gate passes
        StepRun.objects.filter(execution=execution, gate_approved_at__isnull=True).update(
            gate_approved_at=timezone.now()
        )

    thread = in_thread(approve)
    assert run_execution(execution.pk) == "completed"
    thread.join()
    assert marker.exists()
    assert "switch-dns waits for approval by approver" in messages(execution)

    rejected = make_execution(
        [shell("touch", str(tmp_path / "no"), key="gate", approval={"role": "approver"})], on_failure="stop"
    )

    def reject() -> None:
        step = wait_for(lambda: StepRun.objects.filter(execution=rejected, status="waiting").first())
        transition_step(step, "failed", only_from={"waiting"}, error="rejected by approver")

    thread = in_thread(reject)
    assert run_execution(rejected.pk) == "failed"
    thread.join()
    assert not (tmp_path / "no").exists()
    rejected.refresh_from_db()
    assert rejected.error == "step 'gate' failed: rejected by approver"


def test_cancel_kills_the_running_process_and_cancels_what_did_not_start(tmp_path: Path):
    pid_file = tmp_path / "pid"
    execution = make_execution(
        [
            {
                "key": "long",
                "action": "shell",
                "with": {"argv": ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"], "kill_grace_seconds": 0.3},
            },
            {"key": "confirm", "action": "manual", "with": {"instructions": "wait"}},
            shell("true", key="later", needs=["long"]),
        ]
    )

    def cancel() -> None:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())
        FailoverExecution.objects.filter(pk=execution.pk).update(cancel_requested=True)

    thread = in_thread(cancel)
    started = time.monotonic()
    assert run_execution(execution.pk) == "cancelled"
    thread.join()
    assert time.monotonic() - started < 5
    assert not _alive(int(pid_file.read_text()))
    steps = steps_of(execution)
    assert {key: s.status for key, s in steps.items()} == {
        "long": "cancelled",
        "confirm": "cancelled",
        "later": "cancelled",
    }
    execution.refresh_from_db()
    assert execution.error == "cancelled by an operator"
    assert execution.finished_at is not None


def test_dry_run_renders_everything_and_runs_nothing(tmp_path: Path):
    target = tmp_path / "created-by-step"
    execution = make_execution(
        [
            shell("touch", "{{ params.path }}", key="create"),
            shell("echo", "{{ steps.create.output.exit_code }}", key="report", needs=["create"]),
            {"key": "ask", "action": "manual", "with": {"instructions": "confirm {{ params.path }}"}},
        ],
        parameters={"path": str(target)},
        dry_run=True,
    )
    assert run_execution(execution.pk) == "completed"
    assert not target.exists()
    steps = steps_of(execution)
    assert {s.status for s in steps.values()} == {"skipped"}
    assert steps["create"].rendered == {"argv": ["touch", str(target)]}
    assert steps["report"].rendered == {"argv": ["echo", "<output of create>"]}
    assert steps["ask"].rendered == {"instructions": f"confirm {target}"}
    assert all(s.attempts == 0 and s.started_at is None for s in steps.values())
    assert "ask dry run: would wait for confirmation" in messages(execution)


def test_dry_run_reports_what_would_fail():
    execution = make_execution(
        [shell("echo", "{{ params.missing }}", key="bad"), {"key": "odd", "action": "no-such-action"}], dry_run=True
    )
    assert run_execution(execution.pk) == "failed"
    execution.refresh_from_db()
    assert execution.error.startswith(
        "dry run found 2 problem(s): bad: parameters: argv[1]: unknown parameter 'missing'"
    )
    assert "odd: no executor for action 'no-such-action'" in execution.error


def test_secrets_never_reach_events_step_rows_or_errors(tmp_path: Path):
    value = "pa55-w0rd-never-shown"
    set_secret("db_password", value)
    execution = make_execution(
        [
            shell(
                "sh",
                "-c",
                'echo "connecting with $0"; echo "$0" > ' + str(tmp_path / "got"),
                "{{ secrets.db_password }}",
                key="use",
            ),
            shell("{{ secrets.db_password }}", key="as-program", continue_on_failure=True),
        ]
    )
    assert run_execution(execution.pk) == "completed"
    assert (tmp_path / "got").read_text().strip() == value  # the step itself got the real value
    steps = steps_of(execution)
    assert steps["use"].rendered["argv"][-1] == "***"
    assert steps["use"].output["stdout"] == "connecting with ***"
    assert steps["as-program"].error.startswith("could not start '***'")
    assert "connecting with ***" in messages(execution, "log")
    stored = [
        *ExecutionEvent.objects.filter(execution=execution).values_list("message", "data"),
        *StepRun.objects.filter(execution=execution).values_list("rendered", "output", "error"),
        FailoverExecution.objects.filter(pk=execution.pk).values_list("error", flat=True).get(),
    ]
    assert value not in repr(stored)


@executor("test-probe")
def _probe(params: dict, ctx: StepContext) -> ActionResult:
    """A replication probe stand-in: reports what a real RPO probe would measure."""
    return ActionResult(
        True, output={"lag": params["rpo"]}, measurements={"rpo_seconds": params["rpo"], "data_loss_bytes": 2048}
    )


def test_measurements_from_steps_and_rto_are_stored():
    declared = timezone.now() - timezone.timedelta(seconds=30)
    execution = make_execution(
        [
            {"key": "probe-a", "action": "test-probe", "with": {"rpo": 4.5}},
            {"key": "probe-b", "action": "test-probe", "with": {"rpo": 12.0}},
            shell("true", key="last", needs=["probe-a", "probe-b"]),
        ],
        disaster_declared_at=declared,
    )
    assert run_execution(execution.pk) == "completed"
    execution.refresh_from_db()
    assert execution.actual_rpo_seconds == 12.0
    assert execution.data_loss_bytes == 2048
    last = steps_of(execution)["last"]
    assert execution.actual_rto_seconds == pytest.approx((last.finished_at - declared).total_seconds(), abs=0.01)
    summary = ExecutionEvent.objects.filter(execution=execution).order_by("seq").last()
    assert summary.kind == "summary"
    assert summary.data["status"] == "completed"
    assert summary.data["steps"] == {"succeeded": 3}
    assert summary.data["actual_rpo_seconds"] == 12.0


def test_chatty_step_logs_are_batched_and_capped():
    execution = make_execution([shell("seq", "1", "1500", key="chatty")])
    assert run_execution(execution.pk) == "completed"
    logs = messages(execution, "log")
    assert logs[:3] == ["1", "2", "3"]
    assert len(logs) == 1001
    assert logs[-1] == "[500 more output lines not stored as events]"
    seqs = list(ExecutionEvent.objects.filter(execution=execution).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))  # gapless


def test_a_coordinator_without_the_lease_writes_nothing(tmp_path: Path):
    marker = tmp_path / "ran"
    execution = make_execution([shell("touch", str(marker), key="once")])
    assert take_lease(execution.pk, "other-host:1:live")
    assert run_execution(execution.pk) == "pending"
    assert not marker.exists()
    assert ExecutionEvent.objects.filter(execution=execution).count() == 0
    execution.refresh_from_db()
    assert execution.coordinator == "other-host:1:live"


def test_unknown_need_fails_the_execution_with_a_clear_error():
    execution = make_execution([shell("true", key="a", needs=["ghost"])])
    assert run_execution(execution.pk) == "failed"
    execution.refresh_from_db()
    assert execution.error == "step 'a' needs unknown step 'ghost'"
    assert steps_of(execution)["a"].status == "pending"
