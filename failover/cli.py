"""What the `failover run` and `runbook run` commands share: parsing --param, following an execution
(--wait) and the final JSON summary (--json).

--wait drives the execution in this process: whenever the execution needs a coordinator (PENDING,
or running with no live lease) the command runs failover.engine.runner.run_execution in a thread,
while the main thread prints the execution's events by sequence number. A worker that picked the
enqueued task up holds the lease instead and the command only follows; the lease guarantees one
coordinator either way. --no-inline only follows (a worker must run it). Waiting ends when the
execution is terminal, FAILED or PAUSED (both need an operator). While its coordinator thread runs, the
command waits on that thread (woken at once when it ends) rather than sleeping a poll interval.

Started from a shell (RunCommand.run_from_argv), the commands skip Django's system checks (they import
the whole URLconf: `manage.py check` and the servers run them) and leave the process with `os._exit` once
everything is written (exit_now): the interpreter's own clean-up of every object costs about a second.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connection, connections
from django.db.models import Q
from django.utils import timezone

from failover.choices import ExecutionStatus as ES
from failover.engine.runner import run_execution
from failover.engine.states import TERMINAL_EXECUTION
from failover.models import ExecutionEvent, FailoverExecution

STOP_WAITING = {*TERMINAL_EXECUTION, ES.FAILED, ES.PAUSED}
NEEDS_COORDINATOR = (ES.RUNNING, ES.VALIDATING, ES.ROLLING_BACK)


def parse_params(pairs: list[str] | None) -> dict[str, str]:
    """["k=v", ...] → {"k": "v"} (values stay strings; the service coerces them to the declared types)."""
    params: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"--param {pair!r} is not NAME=VALUE")
        params[name.strip()] = value
    return params


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def summary(execution_id: int) -> dict[str, Any]:
    """The one-object result the commands print last with --json."""
    execution = FailoverExecution.objects.get(pk=execution_id)
    steps = execution.step_runs.order_by("id").values("step_key", "status", "started_at", "finished_at", "attempts")
    return {
        "execution": execution.pk,
        "status": execution.status,
        "actual_rto_seconds": execution.actual_rto_seconds,
        "steps": [
            {
                "id": s["step_key"],
                "status": s["status"],
                "started_at": _iso(s["started_at"]),
                "finished_at": _iso(s["finished_at"]),
                "attempts": s["attempts"],
            }
            for s in steps
        ],
    }


def format_event(event: ExecutionEvent) -> str:
    return f"{event.created_at:%H:%M:%S} #{event.seq} [{event.kind}] {event.message}"


def _needs_coordinator(execution_id: int) -> bool:
    now = timezone.now()
    free = Q(coordinator="") | Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    return FailoverExecution.objects.filter(
        Q(pk=execution_id) & (Q(status=ES.PENDING) | (Q(status__in=NEEDS_COORDINATOR) & free))
    ).exists()


def _coordinate(execution_id: int, errors: list[BaseException]) -> None:
    try:
        run_execution(execution_id)
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)
    finally:
        connection.close()


def follow(
    execution_id: int,
    write: Callable[[str], None],
    *,
    inline: bool = True,
    poll_seconds: float = 0.2,
    timeout_seconds: float | None = None,
) -> str:
    """Print the execution's events until it stops (see the module docstring); returns its status."""
    last_seq = 0
    worker: threading.Thread | None = None
    errors: list[BaseException] = []
    started = time.monotonic()
    while True:
        close_old_connections()
        for event in ExecutionEvent.objects.filter(execution_id=execution_id, seq__gt=last_seq).order_by("seq"):
            write(format_event(event))
            last_seq = event.seq
        status = FailoverExecution.objects.filter(pk=execution_id).values_list("status", flat=True).get()
        idle = worker is None or not worker.is_alive()
        if errors:
            raise CommandError(f"the coordinator failed: {errors[0]}")
        if status in STOP_WAITING and idle:
            for event in ExecutionEvent.objects.filter(execution_id=execution_id, seq__gt=last_seq).order_by("seq"):
                write(format_event(event))
            return status
        if inline and idle and _needs_coordinator(execution_id):
            worker = threading.Thread(target=_coordinate, args=(execution_id, errors), daemon=True)
            worker.start()
        if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
            raise CommandError(f"gave up waiting for execution #{execution_id} after {timeout_seconds:g} s ({status})")
        if worker is not None and worker.is_alive():
            worker.join(poll_seconds)  # returns as soon as the coordinator is done
        else:
            time.sleep(poll_seconds)


def finish(command: Any, execution_id: int, options: dict[str, Any]) -> None:
    """Shared tail of the run commands: follow if --wait, print the summary, exit 1 unless completed."""
    status = FailoverExecution.objects.filter(pk=execution_id).values_list("status", flat=True).get()
    if options.get("wait"):
        status = follow(
            execution_id,
            command.stdout.write,
            inline=not options.get("no_inline"),
            timeout_seconds=options.get("timeout"),
        )
    result = summary(execution_id)
    if options.get("json"):
        command.stdout.write(json.dumps(result))
    else:
        rto = result["actual_rto_seconds"]
        command.stdout.write(
            f"execution #{execution_id}: {result['status']}" + (f" (RTO {rto:.1f} s)" if rto is not None else "")
        )
    if options.get("wait") and status != ES.COMPLETED:
        raise SystemExit(1)


def exit_now(code: int | str | None) -> NoReturn:
    """End the process as the interpreter would, without its clean-up of every object (~140k here: about a
    second). First what Python's own shutdown does before that clean-up, in its order: wait for the
    non-daemon threads, run the atexit handlers (logging's flush among them); then close the database
    connections and flush stdout and stderr. `code` is SystemExit's: None, a status, or a message."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    logging.shutdown()
    connections.close_all()
    if code is None or isinstance(code, int):
        status = code or 0
    else:
        print(code, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): nothing left to write to
            status = status or 120  # what Python exits with when it cannot flush stdout
    os._exit(status)


class RunCommand(BaseCommand):
    """Base of the commands that start and follow executions (`runbook`, `failover`): fast to start and to end.

    No system checks: they import the whole URLconf and every view (~0.3 s) for nothing a run needs.
    From a shell (manage.py calls run_from_argv; call_command does not), the process ends by exit_now.
    """

    requires_system_checks: list[str] = []

    def run_from_argv(self, argv: list[str]) -> NoReturn:
        code: int | str | None = 0
        try:
            super().run_from_argv(argv)
        except SystemExit as exc:  # CommandError → 1 (Django prints it), or finish()'s exit 1
            code = exc.code
        exit_now(code)


def add_run_options(parser: Any) -> None:
    parser.add_argument("--param", action="append", metavar="NAME=VALUE", help="A runbook parameter (repeatable).")
    parser.add_argument("--reason", default="", help="Why (recorded on the execution and in the audit log).")
    parser.add_argument("--dry-run", action="store_true", help="Validate and render every step; run nothing.")
    parser.add_argument("--wait", action="store_true", help="Follow until it ends; exit 0 only if it completed.")
    parser.add_argument(
        "--no-inline", action="store_true", help="With --wait: only follow; a worker (qcluster) must run it."
    )
    parser.add_argument("--timeout", type=float, default=None, help="With --wait: give up after this many seconds.")
    parser.add_argument("--json", action="store_true", help="Print the result as one JSON object (last line).")
    parser.add_argument("--user", help="Run as this user (their permissions apply; recorded in the audit log).")
