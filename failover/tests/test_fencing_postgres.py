"""A real PostgreSQL 16 (core/localservers) stopped under a running coordinator (issue 15, fencing):

- stopped for less than the fence deadline: the coordinator rides it out; the step that finished while the
  database was away is recorded when it returns; the run completes, nothing runs twice, nothing fails;
- stopped for longer: the coordinator fences itself (stops its step, writes nothing more) before its lease
  expires by the database's clock, and another coordinator takes over after expiry and finishes the run.

The coordinators are `manage.py shell` processes on that server, as a worker node would be; the server is
this test's own (not the test database), so stopping it stops nothing else."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from drplan.tests.cluster_support import alive
from drplan.tests.cluster_support import wait as cluster_wait
from failover.tests.engine_support import ROOT

pytestmark = pytest.mark.realsystem

DB = "drplan_fencing"


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    pytest.importorskip("pgserver")
    from core.localservers import postgres, procs

    # Under the var dir, like the PostgreSQL pair's: the server's user can reach it (not pytest's 0700 tmp).
    root = Path(settings.VAR_DIR) / f"fencing-pg-{os.getpid()}"
    user = procs.server_user()
    procs.prepare(root, user)
    data, port = root / "data", procs.free_port()
    postgres.initdb(data, user)
    postgres.start(data, port, "fencing", user)
    try:
        postgres.query(port, f"CREATE DATABASE {DB}")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL", "PYTEST", "DJANGO_SETTINGS"))
        }
        env.update(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/{DB}",
            DRPLAN_VAR_DIR=str(root / "var"),
            DRPLAN_LOG_LEVEL="WARNING",
            DRPLAN_CLOCK_CHECK_SECONDS="0",
        )
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        yield {"root": root, "data": data, "port": port, "user": user, "env": env}
    finally:
        postgres.stop(data, user, mode="immediate")
        shutil.rmtree(root, ignore_errors=True)


def stop_server(server: dict[str, Any]) -> None:
    from core.localservers import postgres

    postgres.stop(server["data"], server["user"], mode="immediate")


def start_server(server: dict[str, Any]) -> None:
    from core.localservers import postgres

    postgres.start(server["data"], server["port"], "fencing", server["user"])


def shell(server: dict[str, Any], code: str, **env: str) -> Any:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={**server["env"], **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def coordinator(server: dict[str, Any], pk: int, log: Path, **env: str) -> subprocess.Popen:
    """A coordinator process: run_execution(pk); prints its status and the wall-clock time it returned."""
    code = (
        "import json, time; from failover.engine.runner import run_execution; "
        f"status = run_execution({pk}); print(json.dumps({{'status': status, 'returned_at': time.time()}}))"
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={**server["env"], **env},
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        start_new_session=True,
    )


CREATE = """
import json
from failover.tests.engine_support import make_execution, shell
steps = []
for i in range(4):
    line = "echo s%d $(date +%%s.%%N) >> {marker}" % i
    # s1: its first run writes its pid and sleeps {long} s; a run after it (a takeover) is short
    first_run = "touch {marker}.again; echo $$ > {marker}.pid; exec sleep {long}"
    long = "; if [ -e {marker}.again ]; then sleep 0.3; else " + first_run + "; fi"
    script = line + (long if i == 1 else "; sleep 0.3")
    steps.append(shell("sh", "-c", script, key=f"s{{i}}", needs=[f"s{{i - 1}}"] if i else [], idempotent={idempotent}))
print(json.dumps(make_execution(steps).pk))
"""

STATE = """
import json
from failover.models import ExecutionEvent, FailoverExecution, StepRun
e = FailoverExecution.objects.get(pk={pk})
steps = {{s.step_key: [s.status, s.attempts] for s in StepRun.objects.filter(execution=e)}}
seqs = list(ExecutionEvent.objects.filter(execution=e).order_by("seq").values_list("seq", flat=True))
print(json.dumps({{"status": e.status, "coordinator": e.coordinator, "steps": steps, "seqs": seqs,
                  "lease": e.lease_expires_at.timestamp() if e.lease_expires_at else None}}))
"""


def starts(marker: Path) -> list[tuple[str, float]]:
    """(step, start time) for every run of a step, in order."""
    if not marker.exists():
        return []
    return [(key, float(at)) for key, at in (line.split() for line in marker.read_text().splitlines())]


def wait(condition, timeout: float, what: str) -> Any:
    """Polled every 0.1 s; a file not written yet (or half written) counts as not yet."""
    return cluster_wait(condition, timeout, what, tolerate=(ValueError, OSError), interval=0.1)


def test_a_database_outage_shorter_than_the_fence_is_ridden_out_and_the_run_completes(server, tmp_path: Path):
    # Lease 24 s, margin 3: renewals every 8 s, the fence 21 s after the last one: a ~3 s outage always fits.
    env = {"DRPLAN_ENGINE_LEASE_SECONDS": "24", "DRPLAN_ENGINE_LEASE_MARGIN_SECONDS": "3"}
    marker = tmp_path / "marker"
    pk = shell(server, CREATE.format(marker=marker, long=3, idempotent=False))
    proc = coordinator(server, pk, tmp_path / "coordinator.log", **env)
    try:
        wait(lambda: [k for k, _ in starts(marker)] == ["s0", "s1"], 60, "the second step starts")
        stop_server(server)  # while s1 runs: it finishes while the database is away
        wait(lambda: not alive(int(Path(f"{marker}.pid").read_text())), 30, "s1 finishes during the outage")
        start_server(server)
        out, _ = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
    result = json.loads(out.strip().splitlines()[-1])
    state = shell(server, STATE.format(pk=pk))
    log = (tmp_path / "coordinator.log").read_text()
    assert result["status"] == state["status"] == "completed", (result, state, log)
    assert "retrying until the fence deadline" in log and "database back after" in log, log
    assert [key for key, _ in starts(marker)] == ["s0", "s1", "s2", "s3"], "every step once"
    assert state["steps"] == {f"s{i}": ["succeeded", 1] for i in range(4)}, "s1 recorded after the outage"
    assert state["seqs"] == list(range(1, len(state["seqs"]) + 1)), "events: no gap, no duplicate"


def test_a_longer_outage_fences_the_coordinator_before_its_lease_expires_and_another_takes_over(server, tmp_path: Path):
    # Lease 9 s, margin 2: renewals every 3 s, the fence 7 s after the last one.
    env = {"DRPLAN_ENGINE_LEASE_SECONDS": "9", "DRPLAN_ENGINE_LEASE_MARGIN_SECONDS": "2"}
    marker = tmp_path / "marker"
    pk = shell(server, CREATE.format(marker=marker, long=60, idempotent=True))
    first = coordinator(server, pk, tmp_path / "first.log", **env)
    try:
        wait(lambda: [k for k, _ in starts(marker)] == ["s0", "s1"], 60, "the second step starts")
        step_pid = int(wait(lambda: Path(f"{marker}.pid").read_text().strip(), 10, "s1 wrote its pid"))
        stop_server(server)
        out, _ = first.communicate(timeout=60)  # it must give up on its own, the database still down
        assert not alive(step_pid), "the fenced coordinator stopped its step"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, 9)
    fenced = json.loads(out.strip().splitlines()[-1])
    assert "fenced itself" in (tmp_path / "first.log").read_text()
    start_server(server)
    before = shell(server, STATE.format(pk=pk))
    # Its last write happened before it returned; the lease it last renewed expires, by the database's clock
    # (this machine's: one host), at least the margin later: no other coordinator could act meanwhile.
    assert before["status"] == "running" and before["lease"] is not None
    assert fenced["returned_at"] < before["lease"] - 1, (fenced, before)
    second = coordinator(server, pk, tmp_path / "second.log", **env)
    out, _ = second.communicate(timeout=180)
    # The second coordinator waits for nothing: a live lease makes it return at once; retry until it holds it.
    result = json.loads(out.strip().splitlines()[-1])
    while result["status"] == "running":
        time.sleep(0.5)
        again = coordinator(server, pk, tmp_path / "second.log", **env)
        out, _ = again.communicate(timeout=180)
        result = json.loads(out.strip().splitlines()[-1])
    state = shell(server, STATE.format(pk=pk))
    assert result["status"] == state["status"] == "completed", (result, state)
    runs = starts(marker)
    assert [key for key, _ in runs] == ["s0", "s1", "s1", "s2", "s3"], "only the step in flight ran again, once"
    assert runs[2][1] > before["lease"] - 0.5, "the new coordinator started it after the old lease expired"
    assert state["steps"]["s1"] == ["succeeded", 2]
    assert state["seqs"] == list(range(1, len(state["seqs"]) + 1))


LATE_WRITE = """
import json, os, threading, time
import psycopg
from django.db import connection
from failover.engine.lease import take_lease
from failover.engine.runner import run_execution
from failover.models import ExecutionEvent, FailoverExecution, StepRun
from failover.tests.engine_support import make_execution, shell

marker = {marker!r}
e = make_execution([
    shell("sh", "-c", "echo s0 >> " + marker + "; sleep 1", key="s0", idempotent=True),
    shell("sh", "-c", "echo s1 >> " + marker, key="s1", needs=["s0"]),
])
table = FailoverExecution._meta.db_table
out = {{}}

def coordinate():
    out["first"] = run_execution(e.pk, worker_id="first-host:1:a")
    connection.close()

def state():
    steps = {{s.step_key: s.status for s in StepRun.objects.filter(execution=e)}}
    seqs = list(ExecutionEvent.objects.filter(execution=e).order_by("seq").values_list("seq", flat=True))
    return steps, seqs

def until(condition, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)

first = threading.Thread(target=coordinate)
first.start()
until(lambda: state()[0]["s0"] == "running", "s0 starts")
# Another session (a node about to take over) holds the execution row: the first coordinator's next write turn,
# recording s0's result once it exits, is sent and waits in the server, as a write delayed on the network would.
other = psycopg.connect(os.environ["DATABASE_URL"])
other.execute(f"SELECT id FROM {{table}} WHERE id = %s FOR UPDATE", [e.pk])
def waiting():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> %s",
                       [other.info.backend_pid])
        return cursor.fetchone()[0] > 0
until(waiting, "the first coordinator's turn waits for the row")
out["before_takeover"] = state()
# Its lease is over (expired by the database's clock) and the other node takes the execution over.
other.execute(f"UPDATE {{table}} SET coordinator = %s, lease_expires_at = now() + interval '60 seconds' WHERE id = %s",
              ["second-host:2:b", e.pk])
other.commit()
other.close()
first.join(60)
out["first_alive"] = first.is_alive()
out["after_first"] = state()
out["coordinator"] = FailoverExecution.objects.get(pk=e.pk).coordinator
# The second coordinator (after its own reservation ran out) finishes the run from what the database holds.
FailoverExecution.objects.filter(pk=e.pk).update(coordinator="", lease_expires_at=None)
out["second"] = run_execution(e.pk, worker_id="second-host:2:b")
out["final"] = state()
with connection.cursor() as cursor:
    cursor.execute("SHOW statement_timeout")
    out["statement_timeout"] = cursor.fetchone()[0]
    cursor.execute("SHOW idle_in_transaction_session_timeout")
    out["idle_in_transaction_session_timeout"] = cursor.fetchone()[0]
print(json.dumps(out))
"""


def test_a_write_that_reaches_the_database_after_a_takeover_is_refused_and_the_coordinator_stops(
    server, tmp_path: Path
):
    """Issue 15, late writes: a coordinator's write turn that reaches PostgreSQL after another node took its
    execution over commits nothing (its lease is checked under the row lock in the turn's transaction) and
    the coordinator stops; the new coordinator finishes from what the database holds, events without a gap."""
    marker = tmp_path / "marker"
    env = {"DRPLAN_ENGINE_LEASE_SECONDS": "60", "DRPLAN_DB_STATEMENT_TIMEOUT": "45"}
    out = shell(server, LATE_WRITE.format(marker=str(marker)), **env)
    assert out["first_alive"] is False
    assert out["first"] == "running", "the first coordinator stopped without finishing the run"
    steps_before, seqs_before = out["before_takeover"]
    steps_after, seqs_after = out["after_first"]
    assert steps_after == steps_before == {"s0": "running", "s1": "pending"}, "its turn stored nothing"
    assert seqs_after == seqs_before, "no event of its turn was stored"
    assert out["coordinator"] == "second-host:2:b"
    assert out["second"] == "completed"
    steps, seqs = out["final"]
    assert steps == {"s0": "succeeded", "s1": "succeeded"}
    assert seqs == list(range(1, len(seqs) + 1))
    assert marker.read_text().split() == ["s0", "s0", "s1"], "s1 started only by the second coordinator"
    # The connection's bounds come from the environment (drplan/settings.py).
    assert out["statement_timeout"] == "45s" and out["idle_in_transaction_session_timeout"] == "30s"


POOLED_REQUESTS = """
import sys, threading
from django.core.signals import request_finished, request_started
from django.db import connection

def request(tag):  # what a web node's request does with the database: a pooled connection, given back at the end
    request_started.send(sender=None)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        answer = f"{tag} ok"
    except Exception as error:
        answer = f"{tag} error {type(error).__name__}"
    finally:
        request_finished.send(sender=None)
    print(answer + "\\n", end="", flush=True)  # one write: print(a, b) writes a, " ", b and the newline
    # apart, and the three threads' words interleaved ("again1 okagain2again0 ok")

def in_threads(tag, count):  # the ASGI server's threads, each with a connection from the pool
    threads = [threading.Thread(target=request, args=(f"{tag}{i}",)) for i in range(count)]
    [t.start() for t in threads]
    [t.join() for t in threads]

in_threads("before", 3)
print("ready", flush=True)
sys.stdin.readline()
in_threads("after", 3)
in_threads("again", 3)
"""


def test_pooled_connections_that_a_database_restart_killed_never_reach_a_request(server):
    """The transient 500 a web node answered after a cluster test restarted PostgreSQL: the pool (DRPLAN_DB_POOL_SIZE)
    handed out connections the restart had killed. They are checked as they leave the pool (CONN_HEALTH_CHECKS):
    every request after the restart gets a live connection."""
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", POOLED_REQUESTS],
        cwd=ROOT,
        env={**server["env"], "DRPLAN_DB_POOL_SIZE": "3"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        before: list[str] = []
        while not before or before[-1] not in ("ready\n", ""):  # up to "ready" (the shell may print a banner first)
            before.append(proc.stdout.readline())
        before = [line.strip() for line in before]
        assert sorted(line for line in before if line.startswith("before")) == [f"before{i} ok" for i in range(3)]
        stop_server(server)  # immediate: every session killed, as in a crash
        start_server(server)
        out, _ = proc.communicate("go\n", timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    answers = sorted(line for line in out.splitlines() if line.startswith(("after", "again")))
    assert answers == [f"{tag}{i} ok" for tag in ("after", "again") for i in range(3)], out
