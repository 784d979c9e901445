"""The engine's prepared PostgreSQL statements (failover/engine/rawsql.py) against its portable path on the
same server: the same step rows, the same events, the same gap-free sequence; prepared once per connection
(and not at all when the database's OPTIONS turn prepared statements off); moves of one turn in one round trip.
What both databases share (the events' numbering, conditional moves, errors as Django's): test_rawsql.py.

A real PostgreSQL (`scripts/with_postgres.py`); skipped in the SQLite pass."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from failover.engine import rawsql
from failover.engine.events import batched, emit
from failover.engine.runner import run_execution
from failover.models import ExecutionEvent, FailoverExecution, StepRun
from failover.tests.engine_support import make_execution, shell, what_a_run_left

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL test run (DATABASE_URL=postgres://…)")


def _prepared_here() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


def test_statements_are_prepared_once_per_connection_unless_options_turn_that_off() -> None:
    execution = make_execution([shell("true", key="a")])
    step = StepRun.objects.get(execution=execution)
    connection.close()  # a fresh session: nothing prepared yet
    for _ in range(3):
        rawsql.update_step_if_status(step.pk, {"pending"}, {"error": "x"})
    prepared = [s for s in _prepared_here() if s.startswith('UPDATE "failover_steprun"')]
    assert len(prepared) == 1
    assert connection.connection.prepare_threshold is None  # Django's setting for its own queries is kept

    options = connection.settings_dict.setdefault("OPTIONS", {})
    options["prepare_threshold"] = None  # as for a pooler that cannot keep prepared statements
    try:
        connection.close()
        rawsql.update_step_if_status(step.pk, {"pending"}, {"error": "y"})
        emit(execution.pk, "status", "unprepared")
        assert _prepared_here() == set()
    finally:
        del options["prepare_threshold"]
        connection.close()
    assert ExecutionEvent.objects.get(execution=execution).message == "unprepared"


def _fan_out() -> list[dict[str, Any]]:
    return [
        shell("true", key="start"),
        *[shell("sh", "-c", f"echo p{i}", key=f"p{i}", needs=["start"]) for i in range(6)],
        shell("true", key="join", needs=[f"p{i}" for i in range(6)]),
    ]


def _run_fan_out() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    execution = make_execution(_fan_out(), parallelism=6)  # six start in one turn, and may finish in one
    assert run_execution(execution.pk, worker_id="w1") == "completed"
    return what_a_run_left(execution)


def test_steps_started_and_finished_together_record_what_the_portable_path_records(
    portable: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps, events, seq = _run_fan_out()
    rawsql.HAND_WRITTEN = True
    turns = _round_trips_per_turn(monkeypatch)
    got_steps, got_events, got_seq = _run_fan_out()
    assert got_steps == steps
    assert (got_seq, len(got_events)) == (seq, len(events))
    assert [e[0] for e in got_events] == list(range(1, got_seq + 1))
    assert sorted(e[1:] for e in got_events) == sorted(e[1:] for e in events)  # parallel steps: any order
    started = [e[2] for e in got_events if e[3].endswith(" started")]
    assert sorted(started) == sorted(["join", "start", *[f"p{i}" for i in range(6)]])
    # Every turn (its successes, its starts, their events, the fencing check) took one round trip, then the commit:
    # the one that started the six steps too.
    assert 6 in [started for started, _ in turns]
    assert [trips for _, trips in turns] == [2] * len(turns)


def _round_trips_per_turn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(steps the turn started, its round trips to the server) for each coordinator turn from now on. A round trip:
    a pipeline's sync (every pipeline block sends one when it ends), a statement sent outside a pipeline, the commit."""
    import psycopg

    from failover.engine.runner import Coordinator

    turns: list[tuple[int, int]] = []
    counting: list[int] = []
    entered, execute, commit, write_turn = (
        psycopg.Connection.pipeline,
        psycopg.Cursor.execute,
        psycopg.Connection.commit,
        Coordinator._write_turn,
    )

    def pipeline(self: psycopg.Connection) -> Any:
        if counting:
            counting[-1] += 1
        return entered(self)

    def execute_outside(self: psycopg.Cursor, *args: Any, **kwargs: Any) -> Any:
        if counting and self.connection._pipeline is None:
            counting[-1] += 1
        return execute(self, *args, **kwargs)

    def commit_counted(self: psycopg.Connection) -> None:
        if counting:
            counting[-1] += 1
        commit(self)

    def turn(self: Coordinator, messages: list[tuple[Any, ...]]) -> Any:
        counting.append(0)
        try:
            submit = write_turn(self, messages)
        finally:
            trips = counting.pop()
        turns.append((len(submit), trips))
        return submit

    monkeypatch.setattr(psycopg.Connection, "pipeline", pipeline)
    monkeypatch.setattr(psycopg.Cursor, "execute", execute_outside)
    monkeypatch.setattr(psycopg.Connection, "commit", commit_counted)
    monkeypatch.setattr(Coordinator, "_write_turn", turn)
    return turns


def test_several_steps_move_in_one_round_trip_only_from_the_given_statuses() -> None:
    execution = make_execution([shell("true", key=k) for k in "abc"])
    a, b, c = StepRun.objects.filter(execution=execution).order_by("step_key")
    StepRun.objects.filter(pk=b.pk).update(status="cancelled")
    now = timezone.now()
    rows = [(s.pk, {"rendered": {"k": s.step_key}, "attempts": 1, "started_at": now}) for s in (a, b, c)]
    with transaction.atomic():
        moved = rawsql.update_steps_if_status([(pk, {"status": "running", **f}) for pk, f in rows], {"pending"})
    assert moved == {a.pk, c.pk}
    got = {
        s.step_key: (s.status, s.rendered, s.attempts, s.started_at)
        for s in StepRun.objects.filter(execution=execution)
    }
    assert got == {
        "a": ("running", {"k": "a"}, 1, now),
        "b": ("cancelled", None, 0, None),
        "c": ("running", {"k": "c"}, 1, now),
    }
    with transaction.atomic():  # rows may set different fields
        moved = rawsql.update_steps_if_status([(a.pk, {"status": "succeeded"}), (c.pk, {"error": "y"})], {"running"})
    assert moved == {a.pk, c.pk}
    assert dict(StepRun.objects.filter(execution=execution).values_list("step_key", "status")) == {
        "a": "succeeded",
        "b": "cancelled",
        "c": "running",
    }


def test_deferred_step_moves_go_with_the_events_and_a_row_found_changed_rolls_the_whole_turn_back() -> None:
    execution = make_execution([shell("true", key=k) for k in "abc"])
    a, b, c = StepRun.objects.filter(execution=execution).order_by("step_key")
    rows = [(s.pk, {"status": "running", "worker": "w1"}) for s in (a, b, c)]
    with transaction.atomic(), rawsql.deferred_step_moves() as deferring, batched():
        assert deferring
        assert rawsql.update_steps_if_status(rows, {"pending"}) == {a.pk, b.pk, c.pk}  # assumed: nothing sent yet
        assert set(StepRun.objects.filter(execution=execution).values_list("status", flat=True)) == {"pending"}
        emit(execution.pk, "status", "the turn's event")
    assert set(StepRun.objects.filter(execution=execution).values_list("status", flat=True)) == {"running"}
    assert list(ExecutionEvent.objects.filter(execution=execution).values_list("seq", "message")) == [
        (1, "the turn's event")
    ]

    StepRun.objects.filter(pk=b.pk).update(status="cancelled")  # someone else's write since the rows were read
    rows = [(s.pk, {"status": "succeeded"}) for s in (a, b, c)]
    conflict = pytest.raises(rawsql.StepMovesConflicted, match=rf"steps \[{b.pk}\] were not where")
    with conflict, transaction.atomic(), rawsql.deferred_step_moves(), batched():
        rawsql.update_steps_if_status(rows, {"running"})
        emit(execution.pk, "status", "rolled back with the moves")
    got = dict(StepRun.objects.filter(execution=execution).values_list("step_key", "status"))
    assert got == {"a": "running", "b": "cancelled", "c": "running"}
    assert ExecutionEvent.objects.filter(execution=execution).count() == 1
    assert FailoverExecution.objects.values_list("event_seq", flat=True).get(pk=execution.pk) == 1


def _run_with_a_step_cancelled_behind_the_coordinators_back(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """a, then b and c (both need a); just before the turn that starts b and c, another connection (an operator's
    tool, say) cancels c's row. The run's status, what it recorded, and c's id."""
    import psycopg

    from failover.engine import runner

    execution = make_execution(
        [shell("true", key="a"), shell("true", key="b", needs=["a"]), shell("true", key="c", needs=["a"])]
    )
    c = StepRun.objects.get(execution=execution, step_key="c")
    original, done = runner.dispatch, []

    def dispatch(coordinator: Any, submit: list) -> None:
        if not done and any(entry[2] == c.pk for entry in coordinator.ready):
            with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
                other.execute("UPDATE failover_steprun SET status = 'cancelled' WHERE id = %s", [c.pk])
            done.append(c.pk)
        original(coordinator, submit)

    monkeypatch.setattr(runner, "dispatch", dispatch)
    status = run_execution(execution.pk, worker_id="w1")
    return status, what_a_run_left(execution), c.pk, execution.pk


def test_a_step_changed_behind_the_coordinators_back_is_not_started_and_the_run_records_what_the_portable_path_does(
    portable: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    expected = _run_with_a_step_cancelled_behind_the_coordinators_back(monkeypatch)  # each move checked as made
    rawsql.HAND_WRITTEN = True
    with caplog.at_level("WARNING", logger="failover.engine.outage"):
        status, recorded, c_id, execution_id = _run_with_a_step_cancelled_behind_the_coordinators_back(monkeypatch)
    assert (status, recorded) == expected[:2]
    steps, events, seq = recorded
    assert {key: state for key, state, *_ in steps} == {"a": "succeeded", "b": "succeeded", "c": "cancelled"}
    assert not any(key == "c" and message.endswith("started") for _, _, key, message, _ in events)
    assert [e[0] for e in events] == list(range(1, seq + 1))
    # the turn that assumed c would move was rolled back and ran again, each move checked: once
    assert [r.getMessage() for r in caplog.records if "each step move checked" in r.getMessage()] == [
        f"execution {execution_id}: steps [{c_id}] were not where the coordinator expected them; "
        "recording steps again, each step move checked"
    ]


def test_a_deferred_turn_whose_lease_is_gone_is_refused_after_its_round_trip_and_writes_nothing() -> None:
    from datetime import timedelta

    from failover.engine.lease import LeaseLost, fenced_writes

    execution = make_execution(
        [shell("true", key="a")],
        status="running",
        coordinator="other-node:1:x",  # taken over: the lease is someone else's
        lease_expires_at=timezone.now() + timedelta(seconds=60),
    )
    a = StepRun.objects.get(execution=execution)
    refused = pytest.raises(LeaseLost, match="write refused: the lease of w1 is gone")
    with refused, fenced_writes(execution.pk, "w1"), transaction.atomic(), rawsql.deferred_step_moves(), batched():
        assert rawsql.update_steps_if_status([(a.pk, {"status": "running", "worker": "w1"})], {"pending"}) == {a.pk}
        emit(execution.pk, "status", "written by a coordinator that lost its lease")
    assert StepRun.objects.values_list("status", "worker").get(pk=a.pk) == ("pending", "")
    assert not ExecutionEvent.objects.filter(execution=execution).exists()
    assert FailoverExecution.objects.values_list("event_seq", flat=True).get(pk=execution.pk) == 0
