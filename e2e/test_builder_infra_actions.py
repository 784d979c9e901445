"""The builder handles the dotted action names of the infrastructure actions: a step added from the palette
gets a slug id and its parameters form comes from the action's schema."""

from __future__ import annotations

import pytest

from conftest import TEST_PASSWORD
from e2e.conftest import sign_in
from runbooks.models import Runbook, RunbookStep


@pytest.mark.django_db(transaction=True)
def test_a_redis_step_from_the_palette_is_saved(browser, live_url, users) -> None:
    page = sign_in(browser, live_url, "approver", TEST_PASSWORD)
    page.goto(f"{live_url}/builder/runbooks/new/")
    page.fill("#meta-name", "Cache check")
    page.select_option("#meta-category", "validation")
    page.click('.palette-item[data-action="redis.replication_status"]')
    assert page.input_value("#step-id") == "redis-replication_status-1"
    page.fill("#with-url_secret", "cache-dr-url")
    page.select_option("#with-expect_role", "replica")
    page.click("#save")
    page.wait_for_url("**/builder/runbooks/cache-check/?version=*")
    step = RunbookStep.objects.get(version__runbook__slug="cache-check")
    assert (step.step_id, step.action) == ("redis-replication_status-1", "redis.replication_status")
    assert step.params == {"url_secret": "cache-dr-url", "expect_role": "replica"}
    assert Runbook.objects.filter(slug="cache-check").exists()
