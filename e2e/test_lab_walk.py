"""The DR manager's walk on the DR lab, in a real browser, against real systems: the lab is up (a PostgreSQL
primary and streaming standby, a Redis pair, the orders application; `lab up`), daphne serves the UI on the
default UI port (3045, or a free port when it is taken), and a real django-q2 worker (`manage.py qcluster`)
runs whatever the pages start. Nothing in the test runs an execution itself.

From the plans page to the Lab plan, the DR manager starts a DR test and watches its console to the end;
starts a planned failover (typing the plan's id), which a second person approves from the approvals inbox,
and watches it complete with its measured RTO while the lab's primary moves to pg2; fails back from the
plan page (the second person approves it from the console) and pg1 is primary again; finds the three runs
in the executions list. The Lab plan gets a go/no-go level first, as a DR manager would configure it
(the demo plans have none).

Every wait is on a state (an execution's row, the console's status, a server's role), with room for a
loaded 2-core machine; screenshots go through the best-effort helper. The worker and daphne are stopped by
pid and the lab is torn down (checked by pid) whatever happens. Marked `lab` and `realsystem` (and
`browser`, like every e2e test): it runs once, in the SQLite pass.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from conftest import TEST_PASSWORD
from core.formatting import duration
from core.localservers import procs
from e2e.conftest import screenshot, sign_in, start_ui_server, stop_server
from failover.console import duration_text
from failover.models import ApprovalDecision, FailoverExecution, StepRun
from failover.projection import TERMINAL_EXECUTIONS
from failover.tests.engine_support import start, stop, subprocess_env, wait_for
from lab import cluster
from lab.state import read_json, read_route
from plans.models import DRPlan, PlanApprovalLevel

pytestmark = [
    pytest.mark.lab,
    pytest.mark.realsystem,
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="the lab runs once, in the SQLite pass"),
]

LAB_WAIT_S = 240  # an execution of the real lab, queued, picked up and run on a loaded 2-core machine
CONSOLE_WAIT_MS = 90_000  # the console showing a state the database already has (live events, backfill)


@pytest.fixture
def lab_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The lab's directory for this test (the worker and the DR test's teardown step find it by
    DRPLAN_LAB_DIR); on the way out the lab goes down, every process it recorded checked by pid."""
    root = Path(settings.VAR_DIR) / f"lab-walk-{os.getpid()}"
    monkeypatch.setenv("DRPLAN_LAB_DIR", str(root))
    yield root
    try:
        state = read_json(root / "state.json")
        everything = cluster.recorded_pids(state) if state else []
        cluster.down(root=root, log=lambda _: None)
        assert not [pid for pid in everything if procs.alive(pid)]
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def worker(lab_root: Path, transactional_db: None, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """A real django-q2 worker (one process) on this test's database; stopped by its process group."""
    proc = start(["manage.py", "qcluster"], subprocess_env(DRPLAN_WORKERS="1"), tmp_path / "qcluster.log")
    yield proc
    stop(proc, grace=10)
    assert proc.poll() is not None


@pytest.fixture
def ui_url(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    proc, url = start_ui_server(tmp_path / "daphne.log")
    try:
        yield url
    finally:
        stop_server(proc)


def roles(root: Path) -> dict[str, str | None]:
    info = cluster.status(root)
    return {name: node.get("role") if node.get("reachable") else None for name, node in info["postgres"].items()}


def finished(execution: FailoverExecution, worker: subprocess.Popen, tmp_path: Path) -> FailoverExecution:
    """Wait for the worker to finish the execution; it must complete (else say which steps failed and why).
    A worker that exits fails the wait at once, with its log."""

    def terminal() -> FailoverExecution | bool | None:
        row = FailoverExecution.objects.get(pk=execution.pk)
        return row if row.status in TERMINAL_EXECUTIONS else worker.poll() is not None

    try:
        row = wait_for(terminal, timeout=LAB_WAIT_S, interval=0.2)
    except AssertionError:
        row = None
    if not isinstance(row, FailoverExecution):
        log = (tmp_path / "qcluster.log").read_text(errors="replace")[-3000:]
        status = FailoverExecution.objects.get(pk=execution.pk).status
        why = f"the worker exited ({worker.returncode})" if worker.poll() is not None else f"after {LAB_WAIT_S} s"
        raise AssertionError(f"execution #{execution.pk} still {status}: {why}; worker log:\n{log}")
    failed = list(StepRun.objects.filter(execution=row, status="failed").values_list("step_key", "error"))
    assert row.status == "completed", (row.status, row.error, failed)
    return row


def console_shows_the_end(page, execution: FailoverExecution) -> None:
    """The console the person watches says completed and has received every event (the live feed's summary)."""
    page.wait_for_function(
        "document.getElementById('execution-status').dataset.status === 'completed'", timeout=CONSOLE_WAIT_MS
    )
    page.wait_for_function(
        "document.getElementById('connection-status').textContent.startsWith('complete')", timeout=CONSOLE_WAIT_MS
    )
    assert page.url.endswith(f"/console/executions/{execution.pk}/")


def start_from_plan_page(page, url: str, operation: str, *, confirm_id: str | None = None, reason: str = "") -> None:
    page.goto(f"{url}/plans/lab/")
    page.click(f'[data-operation="{operation}"]')
    page.wait_for_url(f"{url}/plans/lab/run/{operation}/")
    if confirm_id is not None:
        page.fill("#id_confirm_plan_id", confirm_id)
    if reason:
        page.fill("#id_reason", reason)


def decisions(execution: FailoverExecution) -> list[tuple[str, str, str]]:
    """The execution's go/no-go decisions: (who, decision, comment)."""
    rows = ApprovalDecision.objects.filter(execution=execution, step_run=None).order_by("pk")
    return list(rows.values_list("user__username", "decision", "comment"))


def lab(*args: str) -> str:
    out = io.StringIO()
    call_command("lab", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_dr_manager_tests_fails_over_and_back_the_lab_from_the_pages(
    browser, users, lab_root: Path, worker: subprocess.Popen, ui_url: str, tmp_path: Path
) -> None:
    began = time.monotonic()
    call_command("seed_demo", verbosity=0)
    plan = DRPlan.objects.get(plan_id="lab")
    PlanApprovalLevel.objects.create(plan=plan, level=1, role="approver")
    second = User.objects.create_user("approver2", is_staff=True)
    second.password = PBKDF2PasswordHasher().encode(TEST_PASSWORD, PBKDF2PasswordHasher().salt(), iterations=1000)
    second.save()
    second.groups.add(Group.objects.get(name="approver"))
    # The lab, connected the way `make lab` connects it (secrets; its runbooks approved by the demo approver).
    # No monitor: this walk is the DR manager's planned operations (detection is lab/tests/test_lab.py's).
    assert "approved by approver" in lab("up", "--no-monitor")
    assert roles(lab_root) == {"pg1": "primary", "pg2": "standby"}
    url = ui_url
    print(f"\n[lab-walk] seed_demo + lab up: {time.monotonic() - began:.1f} s")

    # From the plans page to the Lab plan.
    manager = sign_in(browser, url, "approver", TEST_PASSWORD)
    manager.goto(f"{url}/plans/")
    screenshot(manager, "lab-walk-plans")
    manager.click('#plans-table a[href="/plans/lab/"]')
    manager.wait_for_url(f"{url}/plans/lab/")
    assert manager.locator("h1").first.inner_text().startswith("Lab")
    screenshot(manager, "lab-walk-plan")

    # 1. A DR test (on a clone of the standby; production untouched), watched on the console to the end.
    start_from_plan_page(manager, url, "test", reason="Monthly DR test of the lab")
    assert "no approval needed" in manager.locator("#approvals-needed").inner_text()
    assert manager.locator('#composed-steps tr[data-step-key="lab-postgres.clone-standby"]').count() == 1
    screenshot(manager, "lab-walk-confirm-test")
    manager.click("#confirm-operation")
    manager.wait_for_url(re.compile(r"/console/executions/\d+/$"))
    test = FailoverExecution.objects.get(plan=plan, execution_type="test")
    assert (test.triggered_by.username, test.trigger_type, test.dry_run) == ("approver", "manual", False)
    clicked = time.monotonic()
    test = finished(test, worker, tmp_path)
    print(f"[lab-walk] DR test: started -> completed {time.monotonic() - clicked:.1f} s")
    console_shows_the_end(manager, test)
    screenshot(manager, "lab-walk-test-console-completed")
    assert StepRun.objects.get(execution=test, step_key="lab-postgres.promote-clone").output["promoted"] is True
    assert not (lab_root / cluster.CLONE_DIR).exists()
    assert roles(lab_root) == {"pg1": "primary", "pg2": "standby"}  # a test moves nothing

    # 2. A planned failover: the confirmation names the go/no-go; the plan's id typed; it waits for approval.
    start_from_plan_page(manager, url, "planned", confirm_id="lab", reason="Lab maintenance")
    assert "level 1: 1 × approver" in manager.locator("#approvals-needed").inner_text()
    screenshot(manager, "lab-walk-confirm-planned-failover")
    manager.click("#confirm-operation")
    manager.wait_for_url(re.compile(r"/console/executions/\d+/$"))
    failover = FailoverExecution.objects.get(plan=plan, execution_type="planned")
    assert (failover.status, failover.triggered_by.username, failover.trigger_reason) == (
        "awaiting_approval",
        "approver",
        "Lab maintenance",
    )
    manager.wait_for_function("document.getElementById('execution-status').dataset.status === 'awaiting_approval'")
    screenshot(manager, "lab-walk-failover-awaiting-approval")

    # The second person approves it from the inbox; the DR manager's console follows it to the end.
    approver = sign_in(browser, url, "approver2", TEST_PASSWORD)
    approver.goto(f"{url}/approvals/")
    row = approver.locator(f'#execution-approvals tr[data-execution="{failover.pk}"]')
    assert "Lab maintenance" in row.inner_text()
    screenshot(approver, "lab-walk-approver-inbox")
    row.locator("input[name=comment]").fill("Go: lab maintenance window")
    row.locator('button[value="approve"]').click()
    approver.wait_for_selector(".messages")
    clicked = time.monotonic()
    failover = finished(failover, worker, tmp_path)
    print(
        f"[lab-walk] planned failover: approved -> completed {time.monotonic() - clicked:.1f} s,"
        f" measured RTO {failover.actual_rto_seconds:.1f} s"
    )
    console_shows_the_end(manager, failover)
    assert decisions(failover) == [("approver2", "approve", "Go: lab maintenance window")]
    assert failover.actual_rto_seconds is not None and failover.actual_rto_seconds > 0
    measured = manager.locator("#rto-measured")
    measured.wait_for(state="visible")
    assert measured.inner_text() == duration_text(failover.actual_rto_seconds)
    screenshot(manager, "lab-walk-failover-console-completed")
    # The lab's primary really moved, and the application follows it.
    assert roles(lab_root)["pg2"] == "primary"
    assert read_route(lab_root)["postgres"]["node"] == "pg2" and read_route(lab_root)["redis"]["node"] == "redis2"
    switch = StepRun.objects.get(execution=failover, step_key="lab-postgres.validate-orders").output["json"]["switch"]
    assert switch["verified"] is True and switch["missing_count"] == 0

    # 3. The failback, from the plan page; the second person gives its go/no-go from its console.
    start_from_plan_page(manager, url, "failback", confirm_id="lab", reason="Back to fra1")
    manager.click("#confirm-operation")
    manager.wait_for_url(re.compile(r"/console/executions/\d+/$"))
    failback = FailoverExecution.objects.get(plan=plan, execution_type="failback")
    assert failback.status == "awaiting_approval"
    approver.goto(f"{url}/console/executions/{failback.pk}/")
    approver.click('#execution-actions button[data-action="approve"]')
    clicked = time.monotonic()
    failback = finished(failback, worker, tmp_path)
    print(f"[lab-walk] failback: approved -> completed {time.monotonic() - clicked:.1f} s")
    console_shows_the_end(manager, failback)
    assert decisions(failback) == [("approver2", "approve", "")]
    manager.locator("#rto-measured").wait_for(state="visible")
    screenshot(manager, "lab-walk-failback-console-completed")
    assert roles(lab_root) == {"pg1": "primary", "pg2": "standby"}
    assert read_route(lab_root)["postgres"]["node"] == "pg1"
    assert StepRun.objects.get(execution=failback, step_key="lab-postgres.rebuild-old-primary").output["method"] == (
        "pg_rewind"
    )

    # 4. The three runs in the executions list (newest first), with their measured RTO; each opens its console.
    manager.goto(f"{url}/executions/")
    manager.select_option("#f-plan", "lab")
    manager.click("#execution-filters button[type=submit]")
    manager.wait_for_url(re.compile(r"plan=lab"))
    rows = manager.locator("#executions-table tbody tr")
    listed = rows.evaluate_all("rows => rows.map(r => [r.dataset.execution, r.dataset.type, r.dataset.status])")
    assert listed == [
        [str(failback.pk), "failback", "completed"],
        [str(failover.pk), "planned", "completed"],
        [str(test.pk), "test", "completed"],
    ]
    failover_row = manager.locator(f'#executions-table tr[data-execution="{failover.pk}"]')
    assert f"{duration(failover.actual_rto_seconds)} / {duration(plan.rto_seconds)}" in failover_row.inner_text()
    screenshot(manager, "lab-walk-executions")
    manager.click(f'#executions-table a[href="/console/executions/{failover.pk}/"]')
    manager.wait_for_url(f"{url}/console/executions/{failover.pk}/")
    assert manager.locator("#execution-status").get_attribute("data-status") == "completed"
    assert FailoverExecution.objects.filter(plan=plan).count() == 3
    print(f"[lab-walk] the walk: {time.monotonic() - began:.1f} s")
