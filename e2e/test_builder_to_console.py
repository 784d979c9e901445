"""From drawing to running, in a real browser: a DR manager builds a four-step runbook with
dependencies in the visual builder and saves it; a second approver approves it; an operator
runs it and watches the console mark every step done, confirming the manual step on the page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from conftest import TEST_PASSWORD
from e2e.conftest import E2E_WAIT_S, screenshot, sign_in
from failover import services
from failover.engine.runner import run_execution
from failover.tests.engine_support import in_thread, wait_for
from runbooks.models import Runbook, RunbookStep


def _status(slug: str) -> str | None:
    version = Runbook.objects.get(slug=slug).versions.first()
    return version.status if version else None


@pytest.mark.django_db(transaction=True)
def test_build_save_approve_run_and_watch(browser, live_url, users) -> None:
    second = User.objects.create_user("approver2", password=TEST_PASSWORD, is_staff=True)
    second.groups.add(Group.objects.get(name="approver"))
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    second.password = PBKDF2PasswordHasher().encode(TEST_PASSWORD, PBKDF2PasswordHasher().salt(), iterations=1000)
    second.save(update_fields=["password"])

    # 1. The DR manager draws the runbook: each step added from the palette needs the selected one.
    author = sign_in(browser, live_url, "approver", TEST_PASSWORD)
    author.goto(f"{live_url}/builder/runbooks/new/")
    author.fill("#meta-name", "Builder demo")
    # a maintenance runbook runs on its own; failover runbooks only run through their plan's failover
    author.select_option("#meta-category", "maintenance")
    author.click('.palette-item[data-action="noop"]')
    author.click('.palette-item[data-action="wait"]')
    author.fill("#with-seconds", "1")
    author.click('.palette-item[data-action="manual"]')
    author.fill("#with-instructions", "Confirm the DR site answers before the last step.")
    author.click('.palette-item[data-action="noop"]')
    screenshot(author, "builder-drawn")
    author.click("#save")
    author.wait_for_url("**/builder/runbooks/builder-demo/?version=*")
    assert Runbook.objects.get(slug="builder-demo").versions.get().category == "maintenance"
    steps = RunbookStep.objects.filter(version__runbook__slug="builder-demo").order_by("number")
    assert [(s.step_id, [n.step_id for n in s.needs.all()]) for s in steps] == [
        ("noop-1", []),
        ("wait-1", ["noop-1"]),
        ("manual-1", ["wait-1"]),
        ("noop-2", ["manual-1"]),
    ]
    author.click("#submit")
    wait_for(lambda: _status("builder-demo") == "pending_approval", timeout=E2E_WAIT_S)
    screenshot(author, "builder-submitted")

    # 2. A second person with the approver role approves it (the author may not).
    approver = sign_in(browser, live_url, "approver2", TEST_PASSWORD)
    approver.goto(f"{live_url}/builder/runbooks/builder-demo/")
    approver.click('[data-decide="approve"]')
    wait_for(lambda: _status("builder-demo") == "approved", timeout=E2E_WAIT_S)
    version = Runbook.objects.get(slug="builder-demo").versions.get()
    screenshot(approver, "builder-approved")

    # 3. An operator runs it and watches; the manual step is confirmed from the console.
    execution = services.execute_runbook(version, actor=users["operator"], reason="browser test")
    console = sign_in(browser, live_url, "operator", TEST_PASSWORD)
    console.goto(f"{live_url}/console/executions/{execution.pk}/")
    console.evaluate("window.__notReloaded = true")
    coordinator = in_thread(run_execution, execution.pk)
    confirm = console.locator('button[data-step="manual-1"][data-action="confirm"]')
    confirm.wait_for()
    console.fill("#action-comment", "DR site answers")
    confirm.click()
    coordinator.join(E2E_WAIT_S)
    execution.refresh_from_db()
    assert execution.status == "completed"
    for key in ("noop-1", "wait-1", "manual-1", "noop-2"):
        console.wait_for_function(
            f"""document.querySelector('.step-pane[data-step-key="{key}"] .step-status .label')
                .textContent.toLowerCase().includes('succeeded')""",
        )
    assert console.evaluate("window.__notReloaded") is True
    screenshot(console, "builder-run-completed")
