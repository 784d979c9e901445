"""The engine's hand-written statements (failover/engine/rawsql.py) against its portable path on the same
database, in both test passes (SQLite, PostgreSQL): the same step rows, the same events, the same gap-free sequence,
what bulk_create sets on each event; conditional moves; errors come out as Django's and roll back.
PostgreSQL's own (prepared statements, round trips per turn, deferred moves): test_rawsql_postgres.py."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction

from failover.engine import rawsql
from failover.engine.events import batched, emit, store
from failover.engine.runner import run_execution
from failover.models import ExecutionEvent, FailoverExecution, StepRun
from failover.tests.engine_support import make_execution, shell, what_a_run_left

pytestmark = pytest.mark.django_db(transaction=True)


def _steps() -> list[dict[str, Any]]:
    return [
        shell("echo", "one", key="a"),
        shell("sh", "-c", "echo two; echo three", key="b", needs=["a"]),
        shell("false", key="c", needs=["a"], retries=1, continue_on_failure=True),
        shell("true", key="d", needs=["b", "c"]),
    ]


def _run_once() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    execution = make_execution(_steps(), parallelism=1)  # one at a time: the same order in both runs
    assert run_execution(execution.pk, worker_id="w1") == "completed"
    return what_a_run_left(execution)


def test_hand_written_path_records_what_the_portable_path_records(portable: None) -> None:
    expected = _run_once()  # portable statements
    rawsql.HAND_WRITTEN = True
    assert rawsql.events_by_hand()
    got = _run_once()
    assert got == expected
    steps, events, seq = got
    assert [e[0] for e in events] == list(range(1, seq + 1))  # gap-free, ending at the execution's counter
    assert dict((s[0], s[1]) for s in steps) == {"a": "succeeded", "b": "succeeded", "c": "failed", "d": "succeeded"}
    assert ("log", "b", "three", {"step": "b"}) in [e[1:] for e in events]


def test_insert_events_numbers_on_and_sets_what_bulk_create_sets() -> None:
    execution = make_execution([shell("true", key="a")])
    step = StepRun.objects.get(execution=execution)
    first = [
        ExecutionEvent(execution_id=execution.pk, kind="status", message="no step", data={}),
        ExecutionEvent(execution_id=execution.pk, step_run_id=step.pk, kind="log", message="x", data={"n": [1, "é"]}),
    ]
    store(first)
    second = [ExecutionEvent(execution_id=execution.pk, kind="status", message="steps all null", data={"k": None})]
    store(second)
    stored = list(ExecutionEvent.objects.filter(execution=execution).order_by("seq"))
    assert [(e.seq, e.step_run_id, e.kind, e.message, e.data) for e in stored] == [
        (1, None, "status", "no step", {}),
        (2, step.pk, "log", "x", {"n": [1, "é"]}),
        (3, None, "status", "steps all null", {"k": None}),
    ]
    for mine, row in zip(first + second, stored, strict=True):
        assert (mine.pk, mine.seq, mine.created_at) == (row.pk, row.seq, row.created_at)
        assert not mine._state.adding
    assert FailoverExecution.objects.values_list("event_seq", flat=True).get(pk=execution.pk) == 3


def test_batched_events_of_two_executions_each_get_their_own_sequence() -> None:
    one, two = make_execution([]), make_execution([])
    emit(one.pk, "status", "before")
    with transaction.atomic(), batched():
        emit(two.pk, "status", "two-1")
        emit(one.pk, "status", "one-2")
        emit(two.pk, "status", "two-2")
    got = list(ExecutionEvent.objects.order_by("execution_id", "seq").values_list("execution_id", "seq", "message"))
    assert got == [(one.pk, 1, "before"), (one.pk, 2, "one-2"), (two.pk, 1, "two-1"), (two.pk, 2, "two-2")]


def test_events_of_a_missing_execution_write_nothing() -> None:
    execution = make_execution([])
    missing = execution.pk + 1000
    with pytest.raises(FailoverExecution.DoesNotExist):
        emit(missing, "status", "lost")
    assert not ExecutionEvent.objects.exists()
    assert not rawsql.insert_events(missing, [ExecutionEvent(execution_id=missing, kind="status", message="x")])


def test_conditional_step_update_moves_only_from_the_given_statuses() -> None:
    execution = make_execution([shell("true", key="a")])
    step = StepRun.objects.get(execution=execution)
    assert rawsql.update_step_if_status(step.pk, {"running", "waiting"}, {"status": "succeeded"}) == 0
    assert rawsql.update_step_if_status(step.pk, {"pending"}, {"status": "running", "rendered": {"a": [1]}}) == 1
    step.refresh_from_db()
    assert (step.status, step.rendered) == ("running", {"a": [1]})


def test_a_failing_hand_written_statement_raises_djangos_error_and_rolls_back() -> None:
    execution = make_execution([])
    emit(execution.pk, "status", "first")
    FailoverExecution.objects.filter(pk=execution.pk).update(event_seq=0)  # the next number is taken
    with pytest.raises(IntegrityError):
        emit(execution.pk, "status", "again")
    assert list(ExecutionEvent.objects.values_list("seq", "message")) == [(1, "first")]
    assert FailoverExecution.objects.values_list("event_seq", flat=True).get(pk=execution.pk) == 0


def test_a_batch_larger_than_one_statement_is_numbered_on_without_a_gap() -> None:
    execution = make_execution([])
    emit(execution.pk, "status", "before")
    lines = [ExecutionEvent(execution_id=execution.pk, kind="log", message=f"line {i}") for i in range(1201)]
    store(lines)  # SQLite: three INSERTs of at most 500 rows
    stored = list(
        ExecutionEvent.objects.filter(execution=execution).order_by("seq").values_list("pk", "seq", "message")
    )
    assert [(seq, message) for _, seq, message in stored] == [(1, "before")] + [
        (i + 2, f"line {i}") for i in range(1201)
    ]
    assert [(e.pk, e.seq, e.message) for e in lines] == stored[1:]
    assert FailoverExecution.objects.values_list("event_seq", flat=True).get(pk=execution.pk) == 1202
