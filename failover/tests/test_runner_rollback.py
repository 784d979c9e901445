"""Rollback after a failure or a cancel, and validation checks deciding whether to roll back."""

from __future__ import annotations

import http.server
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.secrets import set_secret
from failover.engine.rollback import rollback_order
from failover.engine.runner import run_execution
from failover.models import FailoverExecution, StepRun, ValidationResult
from failover.tests.engine_support import in_thread, make_execution, messages, shell, steps_of, wait_for
from plans.models import RecoveryStrategy
from plans.tests.factories import make_plan

pytestmark = pytest.mark.django_db(transaction=True)


def _undo(log: Path, name: str, *, ok: bool = True) -> dict:
    script = f"echo {name} >> {log}" + ("" if ok else "; exit 4")
    return {"action": "shell", "with": {"argv": ["sh", "-c", script]}}


def _chain_with_rollbacks(log: Path, *, failing_undo: str = "") -> list[dict]:
    """a → b → c (each undoable), e independent (undoable), then `boom` fails after c and e."""
    return [
        shell("true", key="a", rollback=_undo(log, "a", ok=failing_undo != "a")),
        shell("true", key="b", needs=["a"], rollback=_undo(log, "b", ok=failing_undo != "b")),
        shell("true", key="c", needs=["b"], rollback=_undo(log, "c", ok=failing_undo != "c")),
        shell("true", key="e", rollback=_undo(log, "e")),
        shell("true", key="no-undo", needs=["a"]),
        shell("false", key="boom", needs=["c", "e", "no-undo"]),
    ]


def test_failure_rolls_back_completed_steps_in_reverse_dependency_order(tmp_path: Path):
    log = tmp_path / "undo"
    execution = make_execution(_chain_with_rollbacks(log), parallelism=1)
    assert run_execution(execution.pk) == "rolled_back"
    # c before b before a (reverse of the needs); e, independent, in reverse order of completion
    assert log.read_text().split() == ["e", "c", "b", "a"]
    steps = steps_of(execution)
    assert {k: steps[k].rollback_status for k in ("a", "b", "c", "e")} == dict.fromkeys("abce", "rolled_back")
    assert steps["no-undo"].rollback_status == ""
    assert steps["boom"].status == "failed"
    execution.refresh_from_db()
    assert execution.error == "step 'boom' failed: exit code 1 (expected [0]); rolled back: e, c, b, a"
    assert "rolling back: step 'boom' failed: exit code 1 (expected [0])" in messages(execution, "status")


def test_a_failed_rollback_is_reported_and_what_it_needed_is_left_alone(tmp_path: Path):
    log = tmp_path / "undo"
    execution = make_execution(_chain_with_rollbacks(log, failing_undo="b"), parallelism=1)
    assert run_execution(execution.pk) == "rollback_failed"
    assert log.read_text().split() == ["e", "c", "b"]  # a is not undone under a b that is still there
    steps = steps_of(execution)
    assert steps["c"].rollback_status == "rolled_back"
    assert steps["b"].rollback_status == "rollback_failed"
    assert steps["b"].rollback_error == "exit code 4 (expected [0])"
    assert steps["a"].rollback_status == "skipped"
    assert steps["a"].rollback_error == "not rolled back: the rollback of 'b' did not succeed"
    assert steps["e"].rollback_status == "rolled_back"
    execution.refresh_from_db()
    assert execution.status == "rollback_failed"
    assert "NOT rolled back: b (exit code 4 (expected [0])); a (not rolled back" in execution.error


def test_a_manual_rollback_is_reported_as_needing_a_person_never_as_done(tmp_path: Path):
    undo_by_hand = {"action": "manual", "with": {"instructions": "Rebuild the old primary from the new one"}}
    execution = make_execution(
        [shell("true", key="promote", rollback=undo_by_hand), shell("false", key="boom", needs=["promote"])]
    )
    assert run_execution(execution.pk) == "rollback_failed"
    step = steps_of(execution)["promote"]
    assert step.rollback_status == "rollback_failed"
    assert step.rollback_error == "manual rollback required: Rebuild the old primary from the new one"


def test_a_dry_run_accepts_a_manual_rollback(tmp_path: Path):
    undo_by_hand = {"action": "manual", "with": {"instructions": "Undo by hand"}}
    execution = make_execution([shell("true", key="promote", rollback=undo_by_hand)], dry_run=True)
    assert run_execution(execution.pk) == "completed"


def test_on_failure_stop_leaves_completed_steps_in_place(tmp_path: Path):
    log = tmp_path / "undo"
    execution = make_execution(_chain_with_rollbacks(log), on_failure="stop")
    assert run_execution(execution.pk) == "failed"
    assert not log.exists()


def test_rollback_with_nothing_to_undo_is_a_plain_failure():
    execution = make_execution([shell("true", key="a"), shell("false", key="b", needs=["a"])])
    assert run_execution(execution.pk) == "failed"
    execution.refresh_from_db()
    assert execution.error == (
        "step 'b' failed: exit code 1 (expected [0]); nothing to roll back (no completed step defines a rollback)"
    )


def test_cancel_with_rollback_undoes_what_completed(tmp_path: Path):
    log = tmp_path / "undo"
    execution = make_execution(
        [
            shell("true", key="a", rollback=_undo(log, "a")),
            {"key": "wait", "action": "manual", "needs": ["a"], "with": {"instructions": "hold"}},
        ]
    )

    def cancel() -> None:
        wait_for(lambda: StepRun.objects.filter(execution=execution, status="waiting").exists())
        FailoverExecution.objects.filter(pk=execution.pk).update(cancel_requested=True, rollback_on_cancel=True)

    thread = in_thread(cancel)
    assert run_execution(execution.pk) == "rolled_back"
    thread.join()
    assert log.read_text().split() == ["a"]
    execution.refresh_from_db()
    assert execution.error == "cancelled by an operator; rolled back: a"
    assert steps_of(execution)["wait"].status == "cancelled"


def test_rollback_order_is_reverse_topological_over_succeeded_steps_with_a_rollback():
    steps = [
        StepRun(pk=1, step_key="db", needs=[], status="succeeded", rollback={"action": "noop"}),
        StepRun(pk=2, step_key="app", needs=["db"], status="succeeded", rollback={"action": "noop"}),
        StepRun(pk=3, step_key="dns", needs=["app"], status="succeeded", rollback={"action": "noop"}),
        StepRun(pk=4, step_key="cache", needs=[], status="succeeded", rollback=None),
        StepRun(pk=5, step_key="smoke", needs=["dns"], status="failed", rollback={"action": "noop"}),
    ]
    assert [s.step_key for s in rollback_order(steps)] == ["dns", "app", "db"]


# --------------------------------------------------------------------------- validation
@pytest.fixture
def http_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 503)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def orders_db(tmp_path: Path) -> str:
    path = tmp_path / "orders.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id integer)")
        conn.executemany("INSERT INTO orders VALUES (?)", [(i,) for i in range(5)])
    set_secret("orders_dsn", f"sqlite://{path}")
    return str(path)


def _plan_with_checks(checks: list[dict], trigger: str = "critical_checks_fail"):
    plan = make_plan("shop-dr")
    strategy = RecoveryStrategy.objects.create(plan=plan, name="Failover", kind="failover", rollback_trigger=trigger)
    RecoveryStrategy.objects.create(plan=plan, name="Failback", kind="failback").validation_checks.create(
        name="failback only", check_type="connectivity", target=f"127.0.0.1:{_closed_port()}", severity="critical"
    )
    for check in checks:
        strategy.validation_checks.create(**check)
    return plan


def test_passing_checks_complete_the_failover_and_are_stored(http_server: str, orders_db: str, tmp_path: Path):
    plan = _plan_with_checks(
        [
            {
                "name": "api up",
                "check_type": "connectivity",
                "target": f"{http_server}/healthz",
                "threshold": "2000",
                "unit": "ms",
                "severity": "critical",
            },
            {
                "name": "port open",
                "check_type": "connectivity",
                "target": http_server.removeprefix("http://"),
                "severity": "high",
            },
            {
                "name": "latency",
                "check_type": "performance",
                "target": f"{http_server}/healthz",
                "threshold": "5",
                "unit": "s",
            },
            {
                "name": "orders present",
                "check_type": "data_integrity",
                "target": "orders_dsn",
                "query": "SELECT count(*) FROM orders",
                "threshold": "5",
                "unit": "rows",
                "severity": "critical",
            },
        ]
    )
    execution = make_execution(
        [shell("true", key="promote")], plan=plan, execution_type="planned", rollback_trigger="any_check_fails"
    )
    assert run_execution(execution.pk) == "completed"
    results = {r.name: r for r in ValidationResult.objects.filter(execution=execution)}
    assert set(results) == {"api up", "port open", "latency", "orders present"}  # not the failback check
    assert {r.status for r in results.values()} == {"passed"}
    assert results["orders present"].measured == 5
    assert results["latency"].unit == "s"
    execution.refresh_from_db()
    assert execution.actual_rto_seconds is not None
    assert [m for m in messages(execution, "validation") if m.startswith("check 'orders present'")] == [
        "check 'orders present' passed: 5"
    ]


def test_a_failing_critical_check_rolls_back(http_server: str, orders_db: str, tmp_path: Path):
    log = tmp_path / "undo"
    plan = _plan_with_checks(
        [
            {
                "name": "api up",
                "check_type": "connectivity",
                "target": f"{http_server}/healthz",
                "severity": "critical",
            },
            {
                "name": "orders complete",
                "check_type": "data_integrity",
                "target": "orders_dsn",
                "query": "SELECT count(*) FROM orders",
                "threshold": "6",
                "severity": "critical",
            },
        ]
    )
    execution = make_execution(
        [shell("true", key="promote", rollback=_undo(log, "promote"))], plan=plan, execution_type="test"
    )
    assert run_execution(execution.pk) == "rolled_back"
    assert log.read_text().split() == ["promote"]
    failed = ValidationResult.objects.get(execution=execution, name="orders complete")
    assert (failed.status, failed.message) == ("failed", "5 is below the threshold 6.000")
    execution.refresh_from_db()
    assert execution.error == "validation failed: orders complete; rolled back: promote"
    assert execution.actual_rto_seconds is None


def test_a_failing_non_critical_check_does_not_trigger_critical_checks_fail(http_server: str):
    plan = _plan_with_checks(
        [
            {
                "name": "api up",
                "check_type": "connectivity",
                "target": f"{http_server}/healthz",
                "severity": "critical",
            },
            {
                "name": "checkout page",
                "check_type": "performance",
                "target": f"{http_server}/checkout",
                "threshold": "800",
                "severity": "medium",
            },
            {
                "name": "old port",
                "check_type": "connectivity",
                "target": f"127.0.0.1:{_closed_port()}",
                "severity": "low",
            },
        ]
    )
    execution = make_execution(
        [shell("true", key="promote")], plan=plan, execution_type="planned", rollback_trigger="critical_checks_fail"
    )
    assert run_execution(execution.pk) == "completed"
    statuses = dict(ValidationResult.objects.filter(execution=execution).values_list("name", "status"))
    assert statuses == {"api up": "passed", "checkout page": "failed", "old port": "failed"}
    assert ValidationResult.objects.get(execution=execution, name="checkout page").message == "HTTP 503"


def test_failback_runs_the_failback_checks():
    plan = _plan_with_checks([])
    execution = make_execution([shell("true", key="back")], plan=plan, execution_type="failback", on_failure="stop")
    assert run_execution(execution.pk) == "failed"
    execution.refresh_from_db()
    assert execution.error == "validation failed: failback only"
