"""A real cluster (scripts/cluster.py): PostgreSQL 16 and Redis, two web nodes behind HAProxy, two django-q2
worker clusters on the Redis broker. Losing a node loses nothing (issue 15, point 3).

The test process talks to the cluster as a client does (HTTP through the proxy or to one node) and reads
the shared database as one more node would (`manage.py shell` with the cluster's settings)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drplan.tests.cluster_support import (
    HAPROXY_MISSING,
    ROOT,
    alive,
    cluster_command,
    group_of,
    http,
    in_cluster,
    run_batch,
    running_cluster,
    sign_in_token,
    wait,
)

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(HAPROXY_MISSING, reason="haproxy is not installed (scripts/ensure_haproxy.sh)"),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, Any]]:
    yield from running_cluster()


# ------------------------------------------------------------------------------------------------ tests
def test_every_node_serves_the_same_data_and_the_proxy_balances_them(cluster: dict[str, Any]) -> None:
    ports = cluster["ports"]
    token = sign_in_token(cluster, "viewer")  # a token made through one node works on the other
    plans = [http(ports[node], "/api/v1/dr/plans", token=token) for node in ("web1", "web2", "proxy")]
    assert [status for status, _ in plans] == [200, 200, 200]
    assert plans[0][1]["count"] == plans[1][1]["count"] == plans[2][1]["count"] == 4


def test_twenty_concurrent_triggers_of_one_plan_over_both_nodes_make_exactly_one_execution(
    cluster: dict[str, Any],
) -> None:
    ports = cluster["ports"]
    # A plan whose failover waits for a go/no-go approval: the execution stays active while the triggers race.
    in_cluster(
        cluster,
        "from failover.tests.engine_factories import three_app_plan, add_approval_levels; "
        "plan, _ = three_app_plan('cluster-race'); add_approval_levels(plan, ('approver', 1)); print('1')",
    )
    token = sign_in_token(cluster, "operator")
    answers: list[tuple[int, dict]] = []
    barrier = threading.Barrier(20)

    def trigger(index: int) -> None:
        barrier.wait()
        port = ports["web1"] if index % 2 else ports["web2"]
        body = {"plan": "cluster-race", "type": "planned", "reason": f"cluster race {index}"}
        answers.append(http(port, "/api/v1/dr/failover", body, token=token))

    threads = [threading.Thread(target=trigger, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [409] * 19, answers
    created = next(body for status, body in answers if status == 201)
    count = in_cluster(
        cluster,
        "import json; from failover.models import FailoverExecution as E; "
        "print(json.dumps(E.objects.filter(plan__plan_id='cluster-race').count()))",
    )
    assert count == 1
    status, _ = http(
        ports["proxy"], "/api/v1/dr/failover/cancel", {"execution": created["id"], "comment": "test over"}, token=token
    )
    assert status in (200, 202), _


CREATE_EXECUTION = """
import json
from failover.tasks import enqueue_execution
from failover.tests.engine_support import make_execution, shell
script = "echo $$ >> {marker}.pids; echo ran >> {marker}; exec sleep 10"  # outlasts a loaded read
execution = make_execution([
    shell("sh", "-c", script, key="work", idempotent={idempotent}),
    shell("true", key="after", needs=["work"]),
])
enqueue_execution(execution.pk)
print(json.dumps(execution.pk))
"""

EXECUTION_STATE = """
import json
from failover.models import ExecutionEvent, FailoverExecution, StepRun
e = FailoverExecution.objects.get(pk={pk})
steps = {{s.step_key: [s.status, s.attempts, s.worker] for s in StepRun.objects.filter(execution=e)}}
seqs = list(ExecutionEvent.objects.filter(execution=e).order_by("seq").values_list("seq", flat=True))
messages = list(ExecutionEvent.objects.filter(execution=e).order_by("seq").values_list("message", flat=True))
print(json.dumps({{"status": e.status, "coordinator": e.coordinator, "steps": steps, "seqs": seqs,
                  "messages": messages}}))
"""


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _kill_the_coordinating_worker_cluster(cluster: dict[str, Any], tmp_path: Path, *, idempotent: bool) -> dict:
    marker = tmp_path / "marker"
    pk = in_cluster(cluster, CREATE_EXECUTION.format(marker=marker, idempotent=idempotent))
    wait(lambda: _lines(marker), 60, "a worker starts the step")
    state = in_cluster(cluster, EXECUTION_STATE.format(pk=pk))
    coordinator_pid = int(state["coordinator"].split(":")[1])
    processes = cluster["processes"]
    owner = next(n for n in ("workers1", "workers2") if coordinator_pid in group_of(processes[n]["pid"]))
    survivor = "workers2" if owner == "workers1" else "workers1"
    group = group_of(processes[owner]["pid"])
    os.killpg(processes[owner]["pid"], signal.SIGKILL)  # the whole worker cluster, as a lost machine would
    wait(lambda: not any(alive(pid) for pid in group), 15, "the killed cluster's processes are gone")
    for pid in _lines(Path(f"{marker}.pids")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)  # its step's process too (a lost machine runs nothing)
    final = wait(
        lambda: (s := in_cluster(cluster, EXECUTION_STATE.format(pk=pk)))["status"] in ("completed", "paused") and s,
        120,
        "the surviving worker cluster finishes or pauses the execution",
    )
    final["survivor_group"] = group_of(processes[survivor]["pid"])
    final["dead"] = state["coordinator"]
    final["marker"] = _lines(marker)
    return final


def test_losing_the_worker_cluster_that_coordinates_a_run_loses_nothing(cluster: dict[str, Any], tmp_path: Path):
    final = _kill_the_coordinating_worker_cluster(cluster, tmp_path, idempotent=True)
    assert final["status"] == "completed"
    assert final["marker"] == ["ran", "ran"], "the idempotent step ran again exactly once"
    status, attempts, worker = final["steps"]["work"]
    assert (status, attempts) == ("succeeded", 2)
    assert int(worker.split(":")[1]) in final["survivor_group"], "the other worker cluster took it over"
    assert final["steps"]["after"][0] == "succeeded"
    assert final["seqs"] == list(range(1, len(final["seqs"]) + 1)), "events: no gap, no duplicate"
    assert f"work: retrying after worker loss ({final['dead']})" in final["messages"]


def test_losing_the_worker_cluster_never_reruns_a_non_idempotent_step(cluster: dict[str, Any], tmp_path: Path):
    # The first test killed one worker cluster; this one needs two again: start it the way cluster.py does.
    _restart_missing_worker_clusters(cluster)
    final = _kill_the_coordinating_worker_cluster(cluster, tmp_path, idempotent=False)
    assert final["status"] == "paused"
    assert final["marker"] == ["ran"]
    assert final["steps"]["work"][:2] == ["lost", 1]
    assert final["steps"]["after"][0] == "pending"
    assert final["seqs"] == list(range(1, len(final["seqs"]) + 1))


def _restart_missing_worker_clusters(cluster: dict[str, Any]) -> None:
    down = [name for name in ("workers1", "workers2") if not alive(cluster["processes"][name]["pid"])]
    if down:
        cluster_command(cluster, "restart", *down)


CHAIN = """
import json
from failover.tasks import enqueue_execution
from failover.tests.engine_support import make_execution, shell
steps = [shell("sh", "-c", "echo {{key}} >> {marker}; sleep 1".replace("{{key}}", f"s{{i}}"), key=f"s{{i}}",
               needs=[f"s{{i - 1}}"] if i else []) for i in range(8)]
execution = make_execution(steps)
enqueue_execution(execution.pk)
print(json.dumps(execution.pk))
"""


def _run_through_an_outage(cluster: dict[str, Any], tmp_path: Path, server: str, pause: float = 3) -> dict:
    """An 8-step chain of non-idempotent steps; while its third step runs, `server` is lost, and started again
    `pause` seconds after it stopped."""
    _restart_missing_worker_clusters(cluster)
    marker = tmp_path / "marker"
    pk = in_cluster(cluster, CHAIN.format(marker=marker))
    wait(lambda: len(_lines(marker)) >= 3, 60, "the run reaches its third step")
    outage: dict[str, float] = {}
    if server == "redis":
        os.killpg(cluster["processes"]["redis"]["pid"], signal.SIGKILL)
        time.sleep(pause)
        cluster_command(cluster, "restart", server)
    else:
        # Stopped, paused and started again by one process, so the outage is the pause and the server's own start
        # (crash recovery), not also two interpreters starting up: on a loaded machine those took seconds.
        code = RESTART_POSTGRES.format(data=cluster["postgres_data"], dir=cluster["dir"], pause=pause)
        env = cluster["client_env"]
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        outage = json.loads(result.stdout.strip().splitlines()[-1])
        cluster_command(cluster, "status")  # the new server's pid, for the fixture's teardown
    return wait(
        lambda: (s := in_cluster(cluster, EXECUTION_STATE.format(pk=pk)))["status"] in ("completed", "failed", "paused")
        and s,
        180,
        f"the run ends after the {server} outage",
    ) | {"marker": _lines(marker), "outage_seconds": outage.get("seconds")}


RESTART_POSTGRES = """
import json, time
from pathlib import Path
from core.localservers import postgres, procs
from scripts.cluster import restart
started = time.monotonic()
postgres.stop(Path("{data}"), procs.server_user(), mode="immediate")
time.sleep({pause})
assert restart(Path("{dir}"), ["postgres"]) == 0
print(json.dumps({{"seconds": time.monotonic() - started}}))
"""


def test_redis_lost_and_back_during_a_run_the_run_completes_and_no_step_runs_twice(cluster, tmp_path: Path):
    final = _run_through_an_outage(cluster, tmp_path, "redis")
    assert final["status"] == "completed", final["messages"][-5:]
    assert final["marker"] == [f"s{i}" for i in range(8)]
    assert all(status == "succeeded" and attempts == 1 for status, attempts, _ in final["steps"].values())
    assert final["seqs"] == list(range(1, len(final["seqs"]) + 1))


# The cluster's lease is 15 s and its margin 3 s (a fifth): a coordinator renews every 5 s and fences itself 12 s
# after its last renewal, and retries a lost database at least every second (lease.ride_out). So an outage of up
# to 6 s is ridden out, whatever the moment it starts.
RIDDEN_OUT_SECONDS = 15 - 3 - 15 / 3 - 1


def test_postgres_restarted_during_a_run_the_coordinator_rides_it_out_and_the_run_completes(cluster, tmp_path: Path):
    """The coordinator retries with backoff within its fence; the step that was running while the database was
    away is recorded when it returns. Nothing failed, nothing lost, nothing twice. A restart: stopped, then
    started 1 s later. Starting it takes crash recovery, seconds more on a loaded machine: an outage longer than
    the window may fence the coordinator instead (the step in flight LOST, the run paused for an operator: the
    safe outcome, checked then; failover/tests/test_fencing_postgres.py makes that case on purpose)."""
    final = _run_through_an_outage(cluster, tmp_path, "postgres", pause=1)
    outage = final["outage_seconds"]
    assert final["seqs"] == list(range(1, len(final["seqs"]) + 1))
    assert len(final["marker"]) == len(set(final["marker"])), f"a step ran twice: {final['marker']}"
    if outage <= RIDDEN_OUT_SECONDS or final["status"] == "completed":
        assert final["status"] == "completed", (f"outage {outage:.1f} s", final["messages"][-5:])
        assert final["marker"] == [f"s{i}" for i in range(8)]
        assert all(status == "succeeded" and attempts == 1 for status, attempts, _ in final["steps"].values())
        assert len({worker for _, _, worker in final["steps"].values()}) == 1, "one coordinator throughout"
    else:  # longer than the window guarantees: fenced before its lease could expire, and nothing ran twice
        assert final["status"] == "paused", (f"outage {outage:.1f} s", final["messages"][-5:])
        statuses = [final["steps"][f"s{i}"][0] for i in range(8)]
        lost = statuses.index("lost")
        assert statuses == ["succeeded"] * lost + ["lost"] + ["pending"] * (7 - lost), statuses
        assert final["marker"] == [f"s{i}" for i in range(lost + 1)]


def test_status_reports_every_nodes_clock_against_the_databases(cluster: dict[str, Any]) -> None:
    _restart_missing_worker_clusters(cluster)

    def clocks() -> dict | None:
        report = json.loads(cluster_command(cluster, "status", "--json"))["clocks"]
        names = {node["node"] for node in (report or {}).get("nodes", [])}
        return report if {"workers1", "workers2", "web1", "web2"} <= names else None

    # Worker clusters measure at start; web nodes on their first request (the proxy's health checks).
    report = wait(clocks, 90, "both worker clusters and both web nodes measured their clocks")
    assert report["status"] == "ok" and report["skewed"] == []
    assert report["lease_margin_seconds"] == 3.0
    for node in report["nodes"]:
        assert abs(node["offset_seconds"]) < 1, node  # one machine: one clock
    text = cluster_command(cluster, "status")
    assert "clocks (lease margin 3 s): ok" in text


def test_losing_a_web_node_the_proxy_sends_every_request_to_the_other(cluster: dict[str, Any]) -> None:
    ports = cluster["ports"]
    token = sign_in_token(cluster, "viewer")
    web1 = cluster["processes"]["web1"]["pid"]
    os.killpg(web1, signal.SIGKILL)
    wait(lambda: not alive(web1), 15, "web1 is gone")
    statuses = [http(ports["proxy"], "/api/v1/dr/plans", token=token)[0] for _ in range(20)]
    assert statuses == [200] * 20, "HAProxy retries a refused connection on the other node"


def test_two_hundred_runs_of_a_twenty_step_runbook_at_once_all_complete_none_twice_span_linear(cluster) -> None:
    """200 executions of a 20-step chain of `true` steps, enqueued at once on the cluster's Redis: both worker
    clusters take them, every one completes, no step starts twice, and the span grows no worse than linearly
    with the work: at most 10x (x 1.5 for noise) the span of 20 executions, measured around it in this test."""
    _restart_missing_worker_clusters(cluster)
    true = {"argv": ["true"]}
    before = run_batch(cluster, 20, 20, "shell", true)
    big = run_batch(cluster, 200, 20, "shell", true)
    after = run_batch(cluster, 20, 20, "shell", true)
    for batch in (before, big, after):
        runs, steps = batch["executions"], batch["executions"] * 20
        assert batch["statuses"] == {"completed": runs}, batch["statuses"]
        assert batch["step_runs"] == batch["steps_succeeded"] == batch["steps_started"] == steps
        assert batch["max_attempts"] == 1, "a step ran twice"
        assert batch["started_more_than_once"] == 0, "a step started twice"
    pids = set(big["worker_pids"])
    for name in ("workers1", "workers2"):
        assert pids & set(group_of(cluster["processes"][name]["pid"])), f"{name} ran none of the 200 executions"
    baseline = (before["span"] + after["span"]) / 2
    print(f"spans: 20 runs {before['span']:.1f} s, 200 runs {big['span']:.1f} s, 20 runs {after['span']:.1f} s")
    assert big["span"] <= 10 * baseline * 1.5, (big["span"], before["span"], after["span"])
