"""`manage.py failover run` and `manage.py runbook run`: --wait runs the coordinator in process and
prints progress; --json's last line is one JSON object; exit 0 only if the execution completed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command

from failover.models import FailoverExecution
from failover.tests.engine_factories import make_runbook, runbook_doc, three_app_plan
from failover.tests.engine_support import ROOT, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> tuple[int, list[str]]:
    out = StringIO()
    code = 0
    try:
        call_command(*args, stdout=out)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue().splitlines()


def test_failover_run_wait_json(users):
    plan, _ = three_app_plan()
    code, lines = run("failover", "run", str(plan.pk), "--wait", "--json", "--user", "operator", "--reason", "drill")
    assert code == 0, lines
    result = json.loads(lines[-1])
    execution = FailoverExecution.objects.get()
    assert set(result) == {"execution", "status", "actual_rto_seconds", "steps"}
    assert (result["execution"], result["status"]) == (execution.pk, "completed")
    assert result["actual_rto_seconds"] == execution.actual_rto_seconds is not None
    assert [s["id"] for s in result["steps"]][:3] == ["shop-db.stop", "shop-db.promote", "shop-db.check"]
    for step in result["steps"]:
        assert (step["status"], step["attempts"]) == ("succeeded", 1)
        assert datetime.fromisoformat(step["started_at"]) <= datetime.fromisoformat(step["finished_at"])
    assert any("shop-web.check" in line for line in lines[:-1])  # live progress lines came first
    assert (execution.triggered_by, execution.trigger_reason) == (users["operator"], "drill")


def test_failover_run_test_dry_run(users):
    plan, _ = three_app_plan(categories=("test",))
    code, lines = run("failover", "run", plan.plan_id, "--type", "test", "--dry-run", "--wait", "--json")
    assert code == 0
    result = json.loads(lines[-1])
    assert result["status"] == "completed"
    assert {s["status"] for s in result["steps"]} == {"skipped"}
    assert FailoverExecution.objects.get().execution_type == "test"


def test_failover_run_refusals(users):
    three_app_plan(status="draft")
    with pytest.raises(CommandError, match="no plan 'nope'"):
        run("failover", "run", "nope")
    with pytest.raises(CommandError, match="plan 'shop-dr' is draft"):
        run("failover", "run", "shop-dr")
    with pytest.raises(CommandError, match="no active user 'ghost'"):
        run("failover", "run", "shop-dr", "--user", "ghost")
    with pytest.raises(CommandError, match=r"failover.run_failover"):
        run("failover", "run", "shop-dr", "--user", "viewer")
    with pytest.raises(CommandError, match="is not NAME=VALUE"):
        run("failover", "run", "shop-dr", "--param", "novalue")
    assert FailoverExecution.objects.count() == 0


def test_runbook_run_file(tmp_path, users):
    doc = runbook_doc(
        "cli-book",
        category="maintenance",
        parameters={"count": {"type": "integer", "default": 1}},
        steps=[
            {"id": "hello", "action": "shell", "with": {"argv": ["echo", "hello {{ params.count }}"]}},
            {"id": "bye", "action": "noop", "needs": ["hello"]},
        ],
    )
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(doc))
    # a new draft may only be dry-run
    with pytest.raises(CommandError, match=r"cli-book@1.0.0 is draft: only approved versions run"):
        run("runbook", "run", str(path))
    code, lines = run("runbook", "run", str(path), "--dry-run", "--wait", "--json", "--param", "count=3")
    assert code == 0 and json.loads(lines[-1])["status"] == "completed"
    # once approved, the same file runs for real (make_runbook approves the imported version)
    make_runbook("cli-book", category="maintenance", steps=doc["steps"], parameters=doc["parameters"])
    code, lines = run("runbook", "run", str(path), "--wait", "--json", "--param", "count=3")
    assert code == 0, lines
    result = json.loads(lines[-1])
    assert [(s["id"], s["status"]) for s in result["steps"]] == [("hello", "succeeded"), ("bye", "succeeded")]
    execution = FailoverExecution.objects.get(pk=result["execution"])
    assert execution.parameters == {"count": 3}
    assert execution.step_runs.get(step_key="hello").output is not None


def test_failed_run_exits_1_in_a_real_process(tmp_path, users):
    doc = runbook_doc(
        "failing", category="maintenance", steps=[{"id": "boom", "action": "shell", "with": {"argv": ["false"]}}]
    )
    make_runbook("failing", category="maintenance", steps=doc["steps"])
    path = tmp_path / "failing.json"
    path.write_text(json.dumps(doc))
    proc = subprocess.run(
        [sys.executable, "manage.py", "runbook", "run", str(path), "--wait", "--json"],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["status"] in {"failed", "rolled_back"}
    assert result["steps"][0]["status"] == "failed"
    assert len(lines) > 1  # progress lines before the JSON


def test_completed_run_in_a_real_process_leaves_nothing_unwritten(tmp_path, users):
    """From a shell the command ends with os._exit (failover.cli.exit_now): its piped, block-buffered
    output must still arrive whole, the exit status be 0, and everything it stored be committed."""
    steps = [{"id": f"s{i}", "action": "shell", "with": {"argv": ["echo", f"step {i}"]}} for i in range(3)]
    for i in range(1, 3):
        steps[i]["needs"] = [f"s{i - 1}"]
    doc = runbook_doc("exits-clean", category="maintenance", steps=steps)
    make_runbook("exits-clean", category="maintenance", steps=doc["steps"])
    path = tmp_path / "exits-clean.json"
    path.write_text(json.dumps(doc))
    env = {k: v for k, v in subprocess_env().items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run(
        [sys.executable, "manage.py", "runbook", "run", str(path), "--wait", "--json", "--user", "operator"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    lines = proc.stdout.splitlines()
    result = json.loads(lines[-1])
    assert [(s["id"], s["status"]) for s in result["steps"]] == [(f"s{i}", "succeeded") for i in range(3)]
    assert proc.stdout.endswith("\n")
    assert any("[summary] execution completed" in line for line in lines[:-1])
    execution = FailoverExecution.objects.get(pk=result["execution"])
    assert (execution.status, execution.triggered_by) == ("completed", users["operator"])
    assert all(run.output is not None for run in execution.step_runs.all())
    assert execution.events.order_by("-seq").first().kind == "summary"
