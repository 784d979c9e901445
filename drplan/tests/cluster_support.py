"""A real cluster for tests (scripts/cluster.py up/down), and ways to act on it as a client or a node."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_MISSING = not shutil.which("haproxy")


def free_base_port() -> int:
    """A port p with p..p+5 free on 127.0.0.1 (the proxy, two web nodes, ML, Redis, PostgreSQL)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = sock.getsockname()[1]
        if base + 5 < 65535 and all(port_free(base + offset) for offset in range(6)):
            return base
    raise RuntimeError("no six consecutive free ports")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def running_cluster() -> Iterator[dict[str, Any]]:
    root = Path(tempfile.mkdtemp(prefix="drplan-cluster-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    base = free_base_port()
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


def in_cluster(cluster: dict[str, Any], code: str, timeout: float = 120) -> Any:
    """Run Python as one more node of the cluster (its settings, its database); returns the JSON it prints."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=cluster["client_env"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def http(port: int, path: str, data: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Token {token}"} if token else {})}
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def sign_in_token(cluster: dict[str, Any], username: str, *, settle_seconds: float = 60) -> str:
    """A token through the proxy. A 5xx is retried for up to `settle_seconds`: a test may follow one that
    restarted PostgreSQL or Redis, and a node's first requests after that may fail while it reconnects; what the
    nodes logged is in the failure message if it never settles. A 4xx fails at once."""
    deadline = time.monotonic() + settle_seconds
    while True:
        credentials = {"username": username, "password": f"{username}-demo-pw"}
        status, body = http(cluster["ports"]["proxy"], "/api/v1/dr/auth/token", credentials)
        if status < 500 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert status == 200, f"{body}\n{node_logs(cluster)}"
    return body["token"]


def node_logs(cluster: dict[str, Any], lines: int = 40) -> str:
    """The last lines each web node logged (for a failure message)."""
    out = []
    for name in ("web1", "web2"):
        path = Path(cluster.get("dir", "")) / f"{name}.log"
        with contextlib.suppress(OSError):
            out.append(f"--- {name}.log\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
    return "\n".join(out)


def wait(
    condition, timeout: float, what: str, *, tolerate: tuple[type[BaseException], ...] = (), interval: float = 0.3
) -> Any:
    """The first truthy value of condition(), polled; `tolerate`d exceptions count as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(*tolerate):
            value = condition()
            if value:
                return value
        time.sleep(interval)
    pytest.fail(f"within {timeout:.0f} s: {what}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    return False


def group_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(os.getpgid(pid))], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def cluster_command(cluster: dict[str, Any], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "scripts/cluster.py", *args, "--dir", cluster["dir"]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    state = json.loads((Path(cluster["dir"]) / "state.json").read_text())
    for name, info in state["processes"].items():
        cluster["processes"][name]["pid"] = info["pid"]
    return result.stdout


def haproxy_command(cluster: dict[str, Any], command: str) -> str:
    """A command on HAProxy's runtime API (e.g. "disable server web/web2")."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(Path(cluster["dir"]) / "haproxy.sock"))
        sock.sendall(command.encode() + b"\n")
        return sock.recv(65536).decode()


BATCH = """
import json, time
from django.db.models import Count, Max, Q
from django.utils import timezone
from failover.models import ExecutionEvent, FailoverExecution, StepRun
from failover.tasks import enqueue_execution

def batch(executions, steps, action, params, timeout):
    made = []
    for _ in range(executions):
        e = FailoverExecution.objects.create(execution_type="runbook", status="pending", triggered_at=timezone.now())
        StepRun.objects.bulk_create(
            StepRun(execution=e, step_key=f"s{i}", title=f"s{i}", action=action, params=params,
                    needs=[f"s{i - 1}"] if i else [])
            for i in range(steps)
        )
        made.append(e.pk)
    started = timezone.now()
    for pk in made:
        enqueue_execution(pk)
    deadline = time.monotonic() + timeout
    runs = FailoverExecution.objects.filter(pk__in=made)
    ended = ("completed", "failed", "paused", "cancelled")
    while time.monotonic() < deadline and runs.exclude(status__in=ended).exists():
        time.sleep(0.25)
    step_runs = StepRun.objects.filter(execution_id__in=made)
    starts = (
        ExecutionEvent.objects.filter(execution_id__in=made, kind="step_status", data__status="running")
        .values("step_run_id").annotate(n=Count("id"))
    )
    return {
        "executions": executions,
        "steps": steps,
        "statuses": dict(runs.values("status").annotate(n=Count("id")).values_list("status", "n")),
        "step_runs": step_runs.count(),
        "steps_succeeded": step_runs.filter(status="succeeded").count(),
        "max_attempts": step_runs.aggregate(m=Max("attempts"))["m"],
        "started_more_than_once": sum(1 for row in starts if row["n"] > 1),
        "steps_started": len(starts),
        "worker_pids": sorted({int(w.split(":")[1]) for w in step_runs.values_list("worker", flat=True) if w}),
        "span": (runs.aggregate(m=Max("finished_at"))["m"] - started).total_seconds(),
    }
"""


def run_batch(
    cluster: dict[str, Any],
    executions: int,
    steps: int,
    action: str = "noop",
    params: dict | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    """Create `executions` runs of a `steps`-step chain as one more node, enqueue them all at once, wait for every
    one to end; returns their statuses, how often each step started and the span (first enqueue to last end)."""
    call = f"batch({executions}, {steps}, {action!r}, {params or {}!r}, {timeout})"
    code = f"{BATCH}\nprint(json.dumps({call}))"
    return in_cluster(cluster, code, timeout=timeout + 120)
