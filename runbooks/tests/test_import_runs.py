"""Imported runbooks run: every real document passes a dry run through `manage.py runbook run FILE --dry-run`,
and an imported Chaos Toolkit experiment, once approved, really runs and undoes its method with its rollback when
the method fails (against an HTTP server on 127.0.0.1 started by the test)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from core.secrets import set_secret
from failover.models import FailoverExecution
from runbooks import services
from runbooks.importers.service import convert
from runbooks.models import RunbookVersion
from runbooks.tests.import_support import read, real_files, run_values

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "imported-runbook-secret"


def run(*args: str) -> tuple[int, list[str]]:
    out = StringIO()
    code = 0
    try:
        call_command(*args, stdout=out)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue().splitlines()


@pytest.mark.parametrize("name", real_files())
def test_every_real_file_passes_a_dry_run(name: str, tmp_path: Path) -> None:
    text, filename = read(name)
    path = tmp_path / filename
    path.write_text(text, encoding="utf-8")
    set_secret(SECRET, "placeholder")
    _, conversion = convert(text)
    params = [f"--param={k}={v}" for k, v in run_values(conversion.document.get("parameters", {}), SECRET).items()]
    code, lines = run("runbook", "run", str(path), "--dry-run", "--wait", "--json", *params)
    result = json.loads(lines[-1])
    assert (code, result["status"]) == (0, "completed"), lines
    assert {s["status"] for s in result["steps"]} == {"skipped"}
    assert len(result["steps"]) == len(conversion.document["steps"])
    execution = FailoverExecution.objects.get(pk=result["execution"])
    assert execution.dry_run and execution.runbook_version.status == "draft"
    assert execution.runbook_version.import_record.source_format == conversion.report.format


class Recorder(BaseHTTPRequestHandler):
    """Answers 200, except 500 for /fail; records every request's method and path."""

    seen: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.seen.append(f"{self.command} {self.path}")
        status = 500 if self.path == "/fail" else 200
        body = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def experiment(url: str, marker: Path) -> dict:
    return {
        "version": "1.0.0",
        "title": "The shop survives losing its cache",
        "configuration": {"base_url": {"type": "env", "key": "SHOP_URL", "default": url}},
        "steady-state-hypothesis": {
            "title": "shop answers",
            "probes": [
                {
                    "type": "probe",
                    "name": "shop-up",
                    "tolerance": 200,
                    "provider": {"type": "http", "url": "${base_url}/health"},
                }
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "break-cache",
                "provider": {"type": "http", "url": "${base_url}/break", "method": "POST"},
            },
            {
                "type": "action",
                "name": "touch-marker",
                "provider": {"type": "process", "path": "touch", "arguments": [str(marker)]},
            },
            {"type": "probe", "name": "shop-still-serves", "provider": {"type": "http", "url": "${base_url}/fail"}},
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "repair-cache",
                "provider": {"type": "http", "url": "${base_url}/repair", "method": "POST"},
            },
            {
                "type": "action",
                "name": "remove-marker",
                "provider": {"type": "process", "path": "rm", "arguments": ["-f", str(marker)]},
            },
        ],
    }


def test_imported_chaos_experiment_runs_its_rollbacks_when_the_method_fails(receiver, users, tmp_path: Path) -> None:
    url, seen = receiver
    marker = tmp_path / "cache-broken"
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment(url, marker)))
    # imported as a draft: it may only be dry-run
    with pytest.raises(CommandError, match="is draft: only approved versions run"):
        run("runbook", "run", str(path), "--user", "operator")
    version = RunbookVersion.objects.get()
    services.submit_for_approval(version, users["admin"])
    services.decide(version, users["approver"], "approve", "reviewed the import report")
    # the same file now finds its approved version and runs for real
    code, lines = run("runbook", "run", str(path), "--wait", "--json", "--user", "operator")
    result = json.loads(lines[-1])
    assert code == 1
    assert result["status"] == "rolled_back", lines
    status = {s["id"]: s["status"] for s in result["steps"]}
    assert status["shop-still-serves"] == "failed"
    assert status["break-cache"] == status["touch-marker"] == "succeeded"
    assert status["after-shop-up"] == "pending"  # the steady state is not checked again after a failed method
    # the rollbacks ran, in the experiment's order, after the method
    assert seen[:3] == ["GET /health", "POST /break", "GET /fail"]
    assert seen[3:] == ["POST /repair"]
    assert not marker.exists()
    execution = FailoverExecution.objects.get(pk=result["execution"])
    rolled = {s.step_key: s.rollback_status for s in execution.step_runs.all() if s.rollback_status}
    assert rolled == {"rollback-marker-repair-cache": "rolled_back", "rollback-marker-remove-marker": "rolled_back"}


def test_imported_playbook_runs_each_play_as_a_step(users, tmp_path: Path) -> None:
    """Ansible's own {{ … }} survives the import (DRPlan does not template it) and ansible-playbook runs it."""
    marker = tmp_path / "switched-over"
    playbook = (
        f"- name: Fence the old primary\n  hosts: all\n  gather_facts: false\n  vars: {{marker: '{marker}'}}\n"
        "  tasks:\n    - name: write the marker\n"
        '      ansible.builtin.copy: {content: "fenced by {{ inventory_hostname }}\\n", dest: "{{ marker }}"}\n'
        "- name: Check\n  hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: test -s "
        f"{marker}\n"
    )
    path = tmp_path / "switchover.yml"
    path.write_text(playbook)
    inventory = (
        f"--param=ansible_inventory=localhost ansible_connection=local ansible_python_interpreter={sys.executable}"
    )
    code, lines = run("runbook", "run", str(path), "--dry-run", "--wait", "--json", inventory)
    assert (code, json.loads(lines[-1])["status"]) == (0, "completed")
    version = RunbookVersion.objects.get()
    services.submit_for_approval(version, users["admin"])
    services.decide(version, users["approver"], "approve", "ok")
    code, lines = run("runbook", "run", str(path), "--wait", "--json", "--user", "operator", inventory)
    result = json.loads(lines[-1])
    assert (code, result["status"]) == (0, "completed"), lines
    assert [(s["id"], s["status"]) for s in result["steps"]] == [
        ("fence-the-old-primary", "succeeded"),
        ("check", "succeeded"),
    ]
    assert marker.read_text() == "fenced by localhost\n"
    assert any("localhost: write the marker: ok (changed)" in line for line in lines)
