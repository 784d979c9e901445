"""The DR manager's web application in a real browser, on the demo organisation (seed_demo; its runbooks
approved for the test): a viewer sees every page and no action; an operator sees run buttons but no
approve buttons; a DR manager starts a DR test from the plan page (a double click starts one) and a
dry run watched on the console to the end and a planned failover, which a second person approves from
the inbox; the runs are in the executions list.

The same walk on the DR lab's plan, with real failovers and a failback run by a real worker and watched to
the end, is e2e/test_lab_walk.py."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.utils import timezone

from conftest import TEST_PASSWORD
from e2e.conftest import E2E_WAIT_S, screenshot, sign_in
from failover.engine.runner import run_execution
from failover.models import FailoverExecution
from failover.tests.engine_support import in_thread, wait_for
from plans.models import DRPlan, PlanApprovalLevel
from runbooks.choices import VersionStatus
from runbooks.models import RunbookVersion

PLANS = ("back-office", "core-commerce", "lab", "payments-pci")
PAGES = ("/dashboard/", "/plans/", "/executions/", "/approvals/", "/schedules/")


def _demo(users: dict[str, User]) -> User:
    """The demo organisation with its runbooks approved, a go/no-go level on core-commerce, and a second
    DR manager (the first may not approve what they triggered)."""
    call_command("seed_demo", verbosity=0)
    RunbookVersion.objects.filter(status=VersionStatus.DRAFT).update(
        status=VersionStatus.APPROVED, approved_at=timezone.now()
    )
    PlanApprovalLevel.objects.create(plan=DRPlan.objects.get(plan_id="core-commerce"), level=1, role="approver")
    second = User.objects.create_user("approver2", is_staff=True)
    second.password = PBKDF2PasswordHasher().encode(TEST_PASSWORD, PBKDF2PasswordHasher().salt(), iterations=1000)
    second.save()
    second.groups.add(Group.objects.get(name="approver"))
    return second


@pytest.mark.django_db(transaction=True)
def test_a_viewer_sees_every_page_and_no_action(browser, live_url, users) -> None:
    _demo(users)
    page = sign_in(browser, live_url, "viewer", TEST_PASSWORD)
    for path in PAGES:
        response = page.goto(f"{live_url}{path}")
        assert response.status == 200, path
        assert page.locator("form button[name=decision], #schedule-form, [data-operation]").count() == 0, path
        screenshot(page, "viewer" + path.rstrip("/").replace("/", "-"))
    page.goto(f"{live_url}/plans/")
    assert page.locator("#plans-table tbody tr").count() == len(PLANS)
    for plan_id in PLANS:
        response = page.goto(f"{live_url}/plans/{plan_id}/")
        assert response.status == 200
        assert page.locator("#no-operations").is_visible()
        assert page.locator("[data-operation]").count() == 0
    page.goto(f"{live_url}/plans/core-commerce/")
    assert page.locator("#dependency-graph .dag-node").count() == 7
    screenshot(page, "viewer-plan-core-commerce")
    # A typed URL shows the confirmation without its form, and the server refuses a forged start.
    page.goto(f"{live_url}/plans/core-commerce/run/planned/")
    assert page.locator("#operation-form").count() == 0 and page.locator("#not-allowed").is_visible()
    assert not FailoverExecution.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_operator_sees_run_buttons_but_no_approve_buttons(browser, live_url, users) -> None:
    _demo(users)
    page = sign_in(browser, live_url, "operator", TEST_PASSWORD)
    page.goto(f"{live_url}/plans/core-commerce/")
    operations = page.locator("[data-operation]").evaluate_all("els => els.map(e => e.dataset.operation)")
    assert operations == ["validate", "dry-run", "test", "planned", "unplanned", "failback"]
    screenshot(page, "operator-plan-core-commerce")
    # The operator starts a planned failover; it waits for a go/no-go the operator cannot give.
    page.click('[data-operation="planned"]')
    page.fill("#id_confirm_plan_id", "core-commerce")
    page.click("#confirm-operation")
    page.wait_for_url(re.compile(r"/console/executions/\d+/$"))
    execution = FailoverExecution.objects.get()
    assert execution.status == "awaiting_approval"
    page.wait_for_selector("#execution-status")
    assert page.locator('button[data-action="approve"]').count() == 0
    page.goto(f"{live_url}/approvals/")
    assert page.locator("button[name=decision]").count() == 0
    assert page.locator("#no-approvals-role").is_visible()
    screenshot(page, "operator-approvals")


@pytest.mark.django_db(transaction=True)
def test_a_dr_manager_starts_a_test_and_a_failover_and_a_second_person_approves(browser, live_url, users) -> None:
    _demo(users)
    manager = sign_in(browser, live_url, "approver", TEST_PASSWORD)

    # From the plans page to a plan, then a DR test: the confirmation says what runs; a double click starts one.
    manager.goto(f"{live_url}/plans/")
    screenshot(manager, "manager-plans")
    manager.click('#plans-table a[href="/plans/back-office/"]')
    manager.wait_for_url(f"{live_url}/plans/back-office/")
    manager.click('[data-operation="test"]')
    assert manager.locator("#composed-steps tbody tr").count() > 0
    assert "no approval needed" in manager.locator("#approvals-needed").inner_text()
    screenshot(manager, "manager-confirm-test")
    manager.dblclick("#confirm-operation")
    manager.wait_for_url(re.compile(r"/console/executions/\d+/$"))
    test = FailoverExecution.objects.get(execution_type="test")
    assert manager.url.endswith(f"/console/executions/{test.pk}/")
    assert (test.plan.plan_id, test.triggered_by.username, test.trigger_type) == ("back-office", "approver", "manual")
    screenshot(manager, "manager-test-console")

    # A dry run of core-commerce from its page, watched live on the console to the end (a worker's
    # coordinator runs it here; every step is rendered and skipped).
    manager.goto(f"{live_url}/plans/core-commerce/")
    manager.click('[data-operation="dry-run"]')
    manager.click("#confirm-operation")
    manager.wait_for_url(re.compile(r"/console/executions/\d+/$"))
    dry = FailoverExecution.objects.get(dry_run=True)
    manager.wait_for_function("document.getElementById('connection-status').textContent === 'live'")
    coordinator = in_thread(run_execution, dry.pk)
    manager.wait_for_function("document.getElementById('execution-status').dataset.status === 'completed'")
    coordinator.join(E2E_WAIT_S)
    assert FailoverExecution.objects.get(pk=dry.pk).status == "completed"
    screenshot(manager, "manager-dry-run-completed")

    # A planned failover of core-commerce: a wrong id does nothing, the right one starts it, awaiting go/no-go.
    manager.goto(f"{live_url}/plans/core-commerce/run/planned/")
    assert "level 1: 1 × approver" in manager.locator("#approvals-needed").inner_text()
    screenshot(manager, "manager-confirm-planned-failover")
    manager.fill("#id_confirm_plan_id", "core-commerc")
    manager.click("#confirm-operation")
    manager.wait_for_selector("#operation-error")
    assert "type the plan's id exactly: core-commerce" in manager.locator("#operation-error").inner_text()
    assert not FailoverExecution.objects.filter(execution_type="planned", dry_run=False).exists()
    manager.fill("#id_confirm_plan_id", "core-commerce")
    manager.fill("#id_reason", "Datacenter maintenance")
    manager.click("#confirm-operation")
    manager.wait_for_url(re.compile(r"/console/executions/\d+/$"))
    failover = FailoverExecution.objects.get(execution_type="planned", dry_run=False)
    assert failover.status == "awaiting_approval"
    # A failback now would be refused, and its confirmation says why before anything is sent.
    manager.goto(f"{live_url}/plans/core-commerce/run/failback/")
    assert f"active: execution #{failover.pk}" in manager.locator("#blockers").inner_text()
    screenshot(manager, "manager-confirm-failback-refused")
    manager.fill("#id_confirm_plan_id", "core-commerce")
    manager.click("#confirm-operation")
    manager.wait_for_selector("#operation-error")
    assert "already has an active failover" in manager.locator("#operation-error").inner_text()
    assert not FailoverExecution.objects.filter(execution_type="failback").exists()
    # The DR manager triggered it, so the inbox does not offer it to them.
    manager.goto(f"{live_url}/approvals/")
    assert manager.locator(f'#execution-approvals tr[data-execution="{failover.pk}"]').count() == 0

    # A second person approves the go/no-go from the inbox.
    second = sign_in(browser, live_url, "approver2", TEST_PASSWORD)
    second.goto(f"{live_url}/approvals/")
    row = second.locator(f'#execution-approvals tr[data-execution="{failover.pk}"]')
    assert "Datacenter maintenance" in row.inner_text()
    screenshot(second, "approver2-inbox")
    row.locator("input[name=comment]").fill("Go: maintenance window confirmed")
    row.locator('button[value="approve"]').click()
    second.wait_for_selector(".messages")
    wait_for(lambda: FailoverExecution.objects.get(pk=failover.pk).status == "pending")
    second.goto(f"{live_url}/console/executions/{failover.pk}/")
    assert second.locator("#execution-status").get_attribute("data-status") == "pending"

    # Both runs are in the executions list, filtered by plan and by type.
    manager.goto(f"{live_url}/executions/")
    listed = manager.locator("#executions-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.execution)")
    assert listed == [str(failover.pk), str(dry.pk), str(test.pk)]
    manager.select_option("#f-type", "test")
    manager.click("#execution-filters button[type=submit]")
    manager.wait_for_url(re.compile(r"type=test"))
    assert manager.locator("#executions-table tbody tr").count() == 1
    manager.click(f'#executions-table a[href="/console/executions/{test.pk}/"]')
    manager.wait_for_url(f"{live_url}/console/executions/{test.pk}/")
    screenshot(manager, "manager-executions-to-console")
    assert FailoverExecution.objects.count() == 3
