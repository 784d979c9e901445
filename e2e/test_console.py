"""The execution console in a real browser: a runbook runs while an operator watches; each
step is marked done and its output lines appear live without a reload; the operator confirms
the manual step from the page. A viewer sees no action buttons and a forged request gets 403."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from conftest import TEST_PASSWORD
from e2e.conftest import E2E_WAIT_S, screenshot, sign_in
from failover import services
from failover.engine.runner import run_execution
from failover.models import FailoverExecution, StepRun
from failover.tests.engine_support import in_thread
from runbooks.choices import VersionStatus
from runbooks.models import RunbookVersion
from runbooks.services import import_runbook_document

FOUR_STEPS = {
    "name": "Console demo",
    "slug": "console-demo",
    "version": "1.0.0",
    "category": "maintenance",
    "steps": [
        {
            "id": "prepare",
            "title": "Prepare the standby",
            "action": "shell",
            "with": {"argv": ["sh", "-c", "for i in 1 2 3; do echo prepare line $i; sleep 0.3; done"]},
        },
        {
            "id": "confirm-dns",
            "title": "Confirm DNS",
            "action": "manual",
            "with": {"instructions": "Check that orders.example.com points at the DR site."},
            "needs": ["prepare"],
        },
        {
            "id": "promote",
            "title": "Promote",
            "action": "shell",
            "with": {"argv": ["sh", "-c", "echo promoted"]},
            "needs": ["confirm-dns"],
        },
        {
            "id": "warm-cache",
            "title": "Warm the cache",
            "action": "shell",
            "with": {"argv": ["sh", "-c", "echo cache warm"]},
            "needs": ["prepare"],
        },
    ],
}


def _approved_execution(operator: User) -> FailoverExecution:
    version = import_runbook_document(FOUR_STEPS)
    RunbookVersion.objects.filter(pk=version.pk).update(status=VersionStatus.APPROVED, approved_at=timezone.now())
    version.refresh_from_db()
    return services.execute_runbook(version, actor=operator, reason="console test")


@pytest.mark.django_db(transaction=True)
def test_operator_watches_a_run_live_and_confirms_the_manual_step(browser, live_url, users) -> None:
    execution = _approved_execution(users["operator"])
    page = sign_in(browser, live_url, "operator", TEST_PASSWORD)
    page.goto(f"{live_url}/console/executions/{execution.pk}/")
    page.evaluate("window.__notReloaded = true")
    page.wait_for_selector("#connection-status", state="attached")

    coordinator = in_thread(run_execution, execution.pk)

    # Output lines arrive live, in order.
    prepare_log = '.step-pane[data-step-key="prepare"] .log'
    page.wait_for_function(f"document.querySelectorAll('{prepare_log} .line').length >= 3")
    lines = page.locator(f"{prepare_log} .line").all_text_contents()
    assert [line.strip() for line in lines] == ["prepare line 1", "prepare line 2", "prepare line 3"]
    screenshot(page, "console-running")

    # The manual step waits; its Confirm button appears for the operator.
    confirm = page.locator('button[data-step="confirm-dns"][data-action="confirm"]')
    confirm.wait_for()
    screenshot(page, "console-manual-step")
    page.fill("#action-comment", "DNS checked by the operator")
    confirm.click()
    page.wait_for_function("document.getElementById('action-result').textContent.includes('done')")

    coordinator.join(E2E_WAIT_S)
    assert not coordinator.is_alive()
    execution.refresh_from_db()
    assert execution.status == "completed"
    assert StepRun.objects.get(execution=execution, step_key="confirm-dns").confirmed_by == users["operator"]

    # Every step is shown done, in words too, without a reload.
    for key in ("prepare", "confirm-dns", "promote", "warm-cache"):
        page.wait_for_function(
            f"""document.querySelector('.step-pane[data-step-key="{key}"] .step-status .label')
                .textContent.toLowerCase().includes('succeeded')""",
        )
    page.wait_for_function("document.querySelectorAll('.step-pane[data-step-key=\"promote\"] .log .line').length >= 1")
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "console-completed")


@pytest.mark.django_db(transaction=True)
def test_a_viewer_sees_no_actions_and_a_forged_request_is_refused(browser, live_url, users) -> None:
    execution = _approved_execution(users["operator"])
    page = sign_in(browser, live_url, "viewer", TEST_PASSWORD)
    page.goto(f"{live_url}/console/executions/{execution.pk}/")
    page.wait_for_selector("#execution-status")
    assert page.locator("button[data-action]").count() == 0
    screenshot(page, "console-viewer")
    status = page.evaluate(
        """async (id) => {
            const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1];
            const response = await fetch(`/api/v1/dr/executions/${id}/cancel`, {
                method: 'POST', credentials: 'same-origin',
                headers: {'Content-Type': 'application/json', 'X-CSRFToken': token},
                body: JSON.stringify({comment: 'forged'}),
            });
            return response.status;
        }""",
        execution.pk,
    )
    assert status == 403
    execution.refresh_from_db()
    assert (execution.status, execution.cancel_requested) == ("pending", False)
