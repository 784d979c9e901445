"""The README's promise, end to end against the real server: set up a fresh database,
start DRPlan the way `make run` does (the web UI's port and the API's), log in with a documented demo
login, get a token and create a plan through the API; then stop it and leave no process behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(url: str, data: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _descendants_of(pid: int) -> list[int]:
    found = []
    for child in _children_of(pid):
        found += [child, *_descendants_of(child)]
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.fixture(scope="module")
def seeded_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A var dir set up as `make run` sets it up (migrate, roles, demo data), once for the module."""
    if os.environ.get("DATABASE_URL"):
        pytest.skip("the live-server check runs on the embedded default database")
    var = tmp_path_factory.mktemp("live") / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    env["DRPLAN_VAR_DIR"] = str(var)
    for command in (["migrate", "--noinput"], ["setup_roles"], ["seed_demo", "--if-empty"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
    return var


@pytest.fixture
def live_env(seeded_var: Path, tmp_path: Path) -> dict[str, str]:
    """A copy of the seeded var dir for one test (no server has it open while it is copied)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    env["DRPLAN_VAR_DIR"] = str(tmp_path / "var")
    shutil.copytree(seeded_var, tmp_path / "var")
    return env


def test_make_run_flow_serves_demo_data_and_accepts_a_plan_from_a_token(live_env: dict[str, str]) -> None:
    port, ui_port = _free_port(), _free_port()
    base = f"http://127.0.0.1:{port}"  # the API's port
    ui = f"http://127.0.0.1:{ui_port}"  # the web UI's (3045 by default; free ports here, as tests run side by side)
    serve = subprocess.Popen(
        [sys.executable, "scripts/serve.py", "--ui-port", str(ui_port), "--port", str(port)],
        cwd=ROOT,
        env=live_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _request(f"{base}/api/v1/dr/health")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        else:
            pytest.fail("server did not answer within 30 s")
        assert len(_children_of(serve.pid)) == 2, "serve.py starts the web server and the workers"
        started = _descendants_of(serve.pid)

        # One application on both ports: the pages on the UI's port, the API on both.
        with urllib.request.urlopen(f"{ui}/admin/login/", timeout=10) as response:
            assert response.status == 200
        assert _request(f"{ui}/api/v1/dr/health")[0] == 200

        status, body = _request(
            f"{base}/api/v1/dr/auth/token", {"username": "approver", "password": "approver-demo-pw"}
        )
        assert status == 200, body
        token = body["token"]

        status, plans = _request(f"{base}/api/v1/dr/plans", token=token)
        assert status == 200
        assert plans["count"] == 4, "the demo organisation has four plans (with the DR lab's)"

        new_plan = {"plan_id": "crm-dr", "name": "CRM recovery", "rto_seconds": 3600, "rpo_seconds": 300}
        status, created = _request(f"{base}/api/v1/dr/plans", new_plan, token=token)
        assert status == 201, created
        assert created["plan_id"] == "crm-dr"
        assert _request(f"{base}/api/v1/dr/plans", token=token)[1]["count"] == 5
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=20)
    for pid in started:
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), f"process {pid} survived the stop"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _child_running(serve_pid: int, marker: str) -> int | None:
    return next((pid for pid in _children_of(serve_pid) if marker in _cmdline(pid) and _alive(pid)), None)


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"within {timeout:.0f} s: {what}")


def _answers(url: str) -> bool:
    try:
        return _request(url)[0] == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def test_make_run_restarts_a_crashed_worker_cluster_or_web_server_and_leaves_no_orphan(live_env: dict[str, str]):
    """Issue #15: a kill -9 of the qcluster parent used to stop the web server too and leave the django-q2
    sentinel and workers running as orphans. Now the group's leftovers die with it, the workers come back,
    and the web server keeps serving; a killed web server comes back too; stopping leaves nothing."""
    port, ui_port = _free_port(), _free_port()
    health = f"http://127.0.0.1:{port}/api/v1/dr/health"
    serve = subprocess.Popen(
        [sys.executable, "scripts/serve.py", "--ui-port", str(ui_port), "--port", str(port)],
        cwd=ROOT,
        env=live_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen: set[int] = set()
    try:
        _wait(lambda: _answers(health), 60, "the server answers")
        workers = _wait(lambda: _child_running(serve.pid, "qcluster"), 30, "the workers run")
        # django-q2's sentinel, monitor, pusher and worker processes, all in the qcluster's group
        group = _wait(
            lambda: [workers, *_descendants_of(workers)] if _descendants_of(workers) else None,
            30,
            "qcluster's children",
        )
        seen.update(group)
        os.kill(workers, signal.SIGKILL)
        assert _answers(health), "the web server keeps serving while the workers are down"
        _wait(lambda: not any(_alive(pid) for pid in group), 15, "the dead qcluster's processes are gone")
        restarted = _wait(
            lambda: (pid := _child_running(serve.pid, "qcluster")) and pid != workers and pid, 30, "the workers restart"
        )
        seen.update([restarted, *_descendants_of(restarted)])

        web = _child_running(serve.pid, "daphne")
        assert web is not None
        seen.add(web)
        os.kill(web, signal.SIGKILL)
        _wait(lambda: (pid := _child_running(serve.pid, "daphne")) and pid != web, 30, "the web server restarts")
        _wait(lambda: _answers(health), 60, "the restarted web server answers")
        seen.update(_descendants_of(serve.pid))
        assert serve.poll() is None
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
    _wait(lambda: not any(_alive(pid) for pid in seen), 15, f"no process survives the stop ({sorted(seen)})")
