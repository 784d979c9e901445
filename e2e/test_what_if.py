"""The what-if page in a real browser on the demo organisation: a DR manager loses the Redis cache on a
Tuesday afternoon and sees the recovery timeline (a bar per application down) and the strategies side by
side; the dashboard shows the RTO-vs-target charts."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from conftest import TEST_PASSWORD
from e2e.conftest import sign_in

DOWN = ["auth-service", "cache-redis", "orders-api", "payments-api", "reporting-api", "web-frontend"]


@pytest.mark.django_db(transaction=True)
def test_what_if_scenario_and_dashboard_charts(browser, live_url, users) -> None:
    call_command("seed_demo", "--skip-reports", verbosity=0)
    page = sign_in(browser, live_url, "approver", TEST_PASSWORD)

    charts = page.locator("#rto-charts figure svg")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 1
    expect(page.locator("#rto-charts circle.rto-point").first).to_be_attached()

    page.goto(f"{live_url}/what-if/")
    page.check("input[name=lose][value=applications]")
    page.check("input[name=applications][value=cache-redis]")
    page.fill("#at", "2026-12-01T14:00")
    page.click("#run-scenario")
    expect(page.locator("#what-if-result")).to_be_visible()
    expect(page.locator("#timeline-chart svg")).to_be_visible()
    bars = page.locator("#timeline-chart g.timeline-row")
    expect(bars).to_have_count(len(DOWN))
    assert sorted(bars.evaluate_all("rows => rows.map(r => r.dataset.application)")) == DOWN
    strategies = page.locator("#strategy-table tbody tr")
    expect(strategies).to_have_count(5)
    assert strategies.evaluate_all("rows => rows.map(r => r.dataset.strategy)") == [
        "as_planned",
        "active_active",
        "active_passive",
        "pilot_light",
        "backup_restore",
    ]
    expect(page.locator("#cost-chart svg")).to_be_visible()
