"""A real cluster (scripts/cluster.py): PostgreSQL 16 and Redis, two web nodes behind HAProxy, two django-q2
worker clusters on the Redis broker. Losing a node loses nothing (issue 15, point 3).

The test process talks to the cluster as a client does (HTTP through the proxy or to one node) and reads
the shared database as one more node would (`manage.py shell` with the cluster's settings)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy is not installed (scripts/ensure_haproxy.sh)"),
]


def _free_base_port() -> int:
    """A port p with p..p+5 free on 127.0.0.1 (the proxy, two web nodes, ML, Redis, PostgreSQL)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = sock.getsockname()[1]
        if base + 5 < 65535 and all(_port_free(base + offset) for offset in range(6)):
            return base
    raise RuntimeError("no six consecutive free ports")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, Any]]:
    root = Path(tempfile.mkdtemp(prefix="drplan-cluster-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    base = _free_base_port()
    argv = [sys.executable, "scripts/cluster.py"]
    up = subprocess.run(
        [*argv, "up", "--dir", str(root), "--port", str(base), "--no-ml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        state = json.loads((root / "state.json").read_text())
        state["client_env"] = {**env, **state["env"], "DRPLAN_VAR_DIR": str(root / "nodes" / "test-client")}
        yield state
    finally:
        subprocess.run([*argv, "down", "--dir", str(root), "--purge"], cwd=ROOT, env=env, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def _in_cluster(cluster: dict[str, Any], code: str) -> Any:
    """Run Python as one more node of the cluster (its settings, its database); returns the JSON it prints."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=cluster["client_env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _http(port: int, path: str, data: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Token {token}"} if token else {})}
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _token(cluster: dict[str, Any], username: str) -> str:
    status, body = _http(
        cluster["ports"]["proxy"], "/api/v1/dr/auth/token", {"username": username, "password": f"{username}-demo-pw"}
    )
    assert status == 200, body
    return body["token"]


def _wait(condition, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"within {timeout:.0f} s: {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    return False


def _group_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(os.getpgid(pid))], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


# ------------------------------------------------------------------------------------------------ tests
def test_every_node_serves_the_same_data_and_the_proxy_balances_them(cluster: dict[str, Any]) -> None:
    ports = cluster["ports"]
    token = _token(cluster, "viewer")  # a token made through one node works on the other
    plans = [_http(ports[node], "/api/v1/dr/plans", token=token) for node in ("web1", "web2", "proxy")]
    assert [status for status, _ in plans] == [200, 200, 200]
    assert plans[0][1]["count"] == plans[1][1]["count"] == plans[2][1]["count"] == 4


def test_twenty_concurrent_triggers_of_one_plan_over_both_nodes_make_exactly_one_execution(
    cluster: dict[str, Any],
) -> None:
    ports = cluster["ports"]
    # A plan whose failover waits for a go/no-go approval: the execution stays active while the triggers race.
    _in_cluster(
        cluster,
        "from failover.tests.engine_factories import three_app_plan, add_approval_levels; "
        "plan, _ = three_app_plan('cluster-race'); add_approval_levels(plan, ('approver', 1)); print('1')",
    )
    token = _token(cluster, "operator")
    answers: list[tuple[int, dict]] = []
    barrier = threading.Barrier(20)

    def trigger(index: int) -> None:
        barrier.wait()
        port = ports["web1"] if index % 2 else ports["web2"]
        body = {"plan": "cluster-race", "type": "planned", "reason": f"cluster race {index}"}
        answers.append(_http(port, "/api/v1/dr/failover", body, token=token))

    threads = [threading.Thread(target=trigger, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [409] * 19, answers
    created = next(body for status, body in answers if status == 201)
    count = _in_cluster(
        cluster,
        "import json; from failover.models import FailoverExecution as E; "
        "print(json.dumps(E.objects.filter(plan__plan_id='cluster-race').count()))",
    )
    assert count == 1
    status, _ = _http(
        ports["proxy"], "/api/v1/dr/failover/cancel", {"execution": created["id"], "comment": "test over"}, token=token
    )
    assert status in (200, 202), _


CREATE_EXECUTION = """
import json
from failover.tasks import enqueue_execution
from failover.tests.engine_support import make_execution, shell
script = "echo $$ >> {marker}.pids; echo ran >> {marker}; exec sleep 4"
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
    pk = _in_cluster(cluster, CREATE_EXECUTION.format(marker=marker, idempotent=idempotent))
    _wait(lambda: _lines(marker), 60, "a worker starts the step")
    state = _in_cluster(cluster, EXECUTION_STATE.format(pk=pk))
    coordinator_pid = int(state["coordinator"].split(":")[1])
    processes = cluster["processes"]
    owner = next(n for n in ("workers1", "workers2") if coordinator_pid in _group_of(processes[n]["pid"]))
    survivor = "workers2" if owner == "workers1" else "workers1"
    group = _group_of(processes[owner]["pid"])
    os.killpg(processes[owner]["pid"], signal.SIGKILL)  # the whole worker cluster, as a lost machine would
    _wait(lambda: not any(_alive(pid) for pid in group), 15, "the killed cluster's processes are gone")
    for pid in _lines(Path(f"{marker}.pids")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)  # its step's process too (a lost machine runs nothing)
    final = _wait(
        lambda: (s := _in_cluster(cluster, EXECUTION_STATE.format(pk=pk)))["status"] in ("completed", "paused") and s,
        120,
        "the surviving worker cluster finishes or pauses the execution",
    )
    final["survivor_group"] = _group_of(processes[survivor]["pid"])
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
    for name in ("workers1", "workers2"):
        if not _alive(cluster["processes"][name]["pid"]):
            env = {**cluster["client_env"], "DRPLAN_VAR_DIR": str(Path(cluster["dir"]) / "nodes" / name)}
            log = open(Path(cluster["dir"]) / f"{name}.log", "ab")  # noqa: SIM115 (the process keeps it)
            proc = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            cluster["processes"][name]["pid"] = proc.pid
            state_file = Path(cluster["dir"]) / "state.json"
            state = json.loads(state_file.read_text())
            state["processes"][name]["pid"] = proc.pid
            state_file.write_text(json.dumps(state, indent=2))  # so `down` stops it


def test_losing_a_web_node_the_proxy_sends_every_request_to_the_other(cluster: dict[str, Any]) -> None:
    ports = cluster["ports"]
    token = _token(cluster, "viewer")
    web1 = cluster["processes"]["web1"]["pid"]
    os.killpg(web1, signal.SIGKILL)
    _wait(lambda: not _alive(web1), 15, "web1 is gone")
    statuses = [_http(ports["proxy"], "/api/v1/dr/plans", token=token)[0] for _ in range(20)]
    assert statuses == [200] * 20, "HAProxy retries a refused connection on the other node"
