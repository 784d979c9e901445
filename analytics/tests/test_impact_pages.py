"""The what-if page and the charts on the dashboard and the plan page (server-rendered SVG)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from analytics.impact import estimates
from analytics.tests.factories import make_result
from analytics.web import history
from drplan import wiring
from drplan.management.commands.seed_demo import Seeder, load_demo_data
from plans.tests.factories import make_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(users):
    estimates.install(None)
    Seeder(load_demo_data(), timezone.localdate(), reports=False).run()
    yield
    wiring.connect()


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def attrs(html: str, element_id: str, attribute: str) -> list[str]:
    match = re.search(rf'id="{element_id}"(.*?)</(table|div)>', html, re.S)
    return re.findall(rf'data-{attribute}="([^"]+)"', match.group(1)) if match else []


def test_what_if_page_runs_a_scenario_on_the_demo(demo, users) -> None:
    client = client_for(users["viewer"])
    form = client.get("/what-if/")
    assert form.status_code == 200 and 'id="what-if-form"' in form.content.decode()
    response = client.get(
        "/what-if/", {"run": "1", "lose": "applications", "applications": ["cache-redis"], "at": "2026-12-01T14:00"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    down = ["auth-service", "cache-redis", "orders-api", "payments-api", "reporting-api", "web-frontend"]
    assert sorted(attrs(html, "timeline-table", "application")) == down
    assert sorted(attrs(html, "timeline-chart", "application")) == down  # one bar per application in the SVG
    assert attrs(html, "strategy-table", "strategy") == [
        "as_planned",
        "active_active",
        "active_passive",
        "pilot_light",
        "backup_restore",
    ]
    assert "Tuesday at 14:00" in html and 'class="chart cost"' in html


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"lose": "site", "site": "atlantis"}, "site"),
        ({"lose": "applications"}, "applications"),
        ({"lose": "site", "site": "fra1", "at": "teatime"}, "at"),
        ({"lose": "site", "site": "fra1", "plan": "ghost"}, "plan"),
    ],
)
def test_what_if_page_names_the_bad_field(demo, users, query, named) -> None:
    response = client_for(users["viewer"]).get("/what-if/", {"run": "1", **query})
    assert response.status_code == 400
    errors = re.search(r'id="what-if-errors">(.*?)</div>', response.content.decode(), re.S).group(1)
    assert f"<p>{named}:" in errors


def test_what_if_page_needs_sign_in(db) -> None:
    response = Client().get("/what-if/")
    assert response.status_code == 302 and "login" in response["Location"]


def test_dashboard_and_plan_page_chart_rto_against_target(users) -> None:
    plan = make_plan("orders-dr", rto_seconds=600)
    now = timezone.now()
    make_result(plan, test_date=now - timedelta(days=60), actual_rto_seconds=480)
    make_result(plan, test_date=now - timedelta(days=30), actual_rto_seconds=720)
    make_plan("untested")
    html = client_for(users["viewer"]).get("/dashboard/").content.decode()
    charts = re.search(r'id="rto-charts"(.*?)</section>', html, re.S).group(1)
    assert re.findall(r'data-plan="([^"]+)"', charts) == ["orders-dr"]
    points = re.findall(r'<circle class="rto-point"[^>]*fill="([^"]+)"><title>([^<]*)</title>', charts)
    assert [(fill, title.split(" — ")[1]) for fill, title in points] == [
        ("#1a7f37", "within target"),
        ("#c62828", "over target"),
    ]
    page = client_for(users["viewer"]).get("/plans/orders-dr/").content.decode()
    slot = re.search(r'id="rto-chart"(.*?)</figure>', page, re.S).group(1)
    assert slot.count('class="rto-point"') == 2
    assert "No RPO measured yet." in page  # no monitor on this plan


def test_the_plan_page_charts_the_plans_monitoring_history(users) -> None:
    """RPO (the worst probe per hour) and availability (the lowest) from the monitors' samples of the last 30 days."""
    from analytics.monitoring import services as monitoring
    from analytics.monitoring.models import Probe
    from analytics.monitoring.probes import Measurement
    from plans.models import Application

    database = Application.objects.create(slug="orders-db", name="Orders database")
    plan = make_plan("orders-dr", rpo_seconds=60, applications=[database])
    monitoring.ensure_monitors(
        [
            {
                "slug": "orders-db-replication",
                "application": "orders-db",
                "probes": [
                    {
                        "key": "standby",
                        "action": "postgres.replication_status",
                        "params": {"dsn_secret": "x"},
                        "interval_seconds": 60,
                    },
                ],
            }
        ]
    )
    probe = Probe.objects.select_related("monitor").get()
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    for minutes, rpo in ((5, 20), (35, 45), (65, 30)):
        monitoring.record(probe, Measurement(hour + timedelta(minutes=minutes), True, True, rpo))
    points = history.plan_history(plan)
    assert [(p["t"], p.get("rpo_seconds")) for p in points] == [(hour, 45), (hour + timedelta(hours=1), 30)]
    assert [p.get("availability_percent") for p in points] == [100.0, 100.0]

    page = client_for(users["viewer"]).get("/plans/orders-dr/").content.decode()
    slot = re.search(r'id="rpo-chart"(.*?)</figure>', page, re.S).group(1)
    assert "<title>RPO over time</title>" in slot and "<title>Availability over time</title>" in slot
    assert slot.count('class="series"') == 2
