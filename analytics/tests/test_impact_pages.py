"""The what-if page and the charts on the dashboard and the plan page (server-rendered SVG)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import include, path, re_path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.impact import estimates
from analytics.tests.factories import make_result
from analytics.web import history
from core.api.permissions import MethodPermissions
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
    # No monitoring history endpoint on this build: the slot says where the chart will come from
    assert 'id="rpo-chart-empty"' in page


def test_the_rpo_slot_draws_the_history_points(users) -> None:
    """series_chart is what the history endpoint's points feed (analytics.web.history.normalise)."""
    from django.template import Context, Template

    points = history.normalise(
        {
            "series": [
                {
                    "metric": "rpo",
                    "points": [{"t": "2026-12-01T10:00:00Z", "value": 30}, {"t": "2026-12-01T11:00:00Z", "value": 90}],
                },
                {"metric": "availability", "points": [{"t": "2026-12-01T10:00:00Z", "value": 99.9}]},
            ]
        }
    )
    assert [p.get("rpo_seconds") for p in points] == [30, 90, None]
    svg = Template(
        '{% load charts %}{% series_chart points metric="rpo_seconds" title="RPO" unit="s" target=60 %}'
    ).render(Context({"points": points}))
    assert svg.startswith("<svg") and svg.count('class="series"') == 1 and "<title>RPO</title>" in svg
    empty = Template('{% load charts %}{% series_chart points metric="rpo_seconds" empty="none yet" %}').render(
        Context({"points": []})
    )
    assert "none yet" in empty


class _History(APIView):
    """Stands where the monitoring endpoint will be: a DRF view at /api/v1/dr/rto-rpo/history that reads
    the signed-in user and the plan filter, as the real one does."""

    permission_classes = [MethodPermissions]
    method_permissions = {"GET": ["plans.view_drplan"]}

    def get(self, request):
        plan = request.query_params["plan"]
        return Response(
            {
                "series": [
                    {
                        "metric": "rpo",
                        "plan": plan,
                        "points": [
                            {"t": "2026-12-01T10:00:00Z", "value": 20},
                            {"t": "2026-12-01T11:00:00Z", "value": 45},
                            {"t": "2026-12-01T12:00:00Z", "value": 30},
                        ],
                    },
                    {"metric": "availability", "points": [{"t": "2026-12-01T10:00:00Z", "value": 99.95}]},
                ]
            }
        )


urlpatterns = [
    re_path(r"^api/v1/dr/rto-rpo/history/?$", _History.as_view()),
    path("", include("drplan.urls")),
]


def test_the_plan_page_reads_the_history_endpoint_when_the_project_has_one(users, settings) -> None:
    settings.ROOT_URLCONF = __name__
    make_plan("orders-dr", rpo_seconds=60)
    page = client_for(users["viewer"]).get("/plans/orders-dr/").content.decode()
    slot = re.search(r'id="rpo-chart"(.*?)</figure>', page, re.S).group(1)
    assert 'id="rpo-chart-empty"' not in page
    assert "<title>RPO over time</title>" in slot and "<title>Availability over time</title>" in slot
    assert slot.count('class="series"') == 2
