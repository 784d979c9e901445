"""The monitoring API: monitors (permission matrix, bad input naming the field, nothing changed), the RTO/RPO
picture, its history and the SLA violations (filters, every bad parameter a 400 naming it)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.monitoring import services
from analytics.monitoring.models import Monitor, Probe, ProbeSample, SLAViolation
from analytics.monitoring.probes import Measurement
from analytics.tests.factories import make_target
from core.models import AuditEntry
from plans.tests.factories import make_app, make_plan
from plans.tests.matrix import (
    METHODS,
    READ_EXPECTATIONS,
    ROLE_EXPECTATIONS,
    Resource,
    check_body_rejections,
    check_read,
    check_write,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/dr/monitors"
PG = {"key": "standby", "action": "postgres.replication_status", "params": {"dsn_secret": "orders-standby"}}


def _probe(**extra) -> dict:
    return {**PG, "interval_seconds": 60, **extra}


def _make_monitor() -> Monitor:
    app = make_app("orders-db")
    make_plan("orders-dr", applications=[app])
    services.ensure_monitors([{"slug": "orders-db-replication", "application": "orders-db", "probes": [_probe()]}])
    return Monitor.objects.get()


def _payload(_: Monitor | None = None, **extra) -> dict:
    return {"slug": "orders-db-lag", "application": "orders-db", "plan": "orders-dr", "probes": [_probe()], **extra}


MONITORS = Resource(
    url=URL,
    make=_make_monitor,
    create=_payload,
    put=lambda obj: _payload(slug=obj.slug, probes=[_probe(interval_seconds=120)]),
    patch={"description": "checked hourly by ops"},
    counted=[Monitor, Probe],
)


@pytest.mark.parametrize(("role", "expected"), ROLE_EXPECTATIONS)
@pytest.mark.parametrize("method", METHODS)
def test_monitor_write_matrix(api_for, method, role, expected):
    check_write(api_for(role), MONITORS, method, expected)


@pytest.mark.parametrize(("role", "expected"), READ_EXPECTATIONS)
def test_monitor_read_matrix(api_for, role, expected):
    check_read(api_for(role), MONITORS, expected)


def test_malformed_and_oversized_bodies_change_nothing(api_for):
    check_body_rejections(api_for("admin"), MONITORS)


def test_create_read_update_and_delete_a_monitor(api_for):
    _make_monitor()
    api = api_for("approver")
    created = api.post(
        URL,
        _payload(probes=[_probe(), _probe(key="health", action="tcp", params={"host": "db", "port": 5432})]),
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["application"], body["plan"], body["created_by"]) == ("orders-db", "orders-dr", "approver")
    assert [(p["key"], p["action"], p["interval_seconds"], p["timeout_seconds"]) for p in body["probes"]] == [
        ("health", "tcp", 60, 10),
        ("standby", "postgres.replication_status", 60, 10),
    ]
    standby = Probe.objects.get(monitor__slug="orders-db-lag", key="standby")
    ProbeSample.objects.create(probe=standby, application=standby.monitor.application, at=timezone.now(), status="ok")
    replaced = api.put(f"{URL}/orders-db-lag", _payload(probes=[_probe(interval_seconds=300)]), format="json")
    assert replaced.status_code == 200, replaced.content
    assert [(p["key"], p["interval_seconds"]) for p in replaced.json()["probes"]] == [("standby", 300)]
    assert Probe.objects.get(monitor__slug="orders-db-lag").pk == standby.pk  # kept key: history kept
    assert ProbeSample.objects.filter(probe=standby).count() == 1
    listed = api.get(URL, {"application": "orders-db", "action": "postgres.replication_status"}).json()
    assert [m["slug"] for m in listed["results"]] == ["orders-db-lag", "orders-db-replication"]
    assert api.get(URL, {"enabled": "false"}).json()["results"] == []
    assert api.delete(f"{URL}/orders-db-lag").status_code == 204
    assert not ProbeSample.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"probes": [_probe(action="postgres.nope")]}, "probes[0].action"),
        ({"probes": [_probe(action="shell", params={"argv": ["true"]})]}, "probes[0].action"),  # not read-only
        ({"probes": [_probe(action="postgres.promote")]}, "probes[0].action"),
        ({"probes": [_probe(params={"dsn_secret": ""})]}, "probes[0].params.dsn_secret"),
        ({"probes": [_probe(params={"dsn": "x"})]}, "probes[0].params"),
        ({"probes": [_probe(params={"dsn_secret": "{{ params.x }}"})]}, "probes[0].params.dsn_secret"),
        ({"probes": [_probe(params="dsn")]}, "probes[0].params"),
        (
            {"probes": [_probe(action="http", params={"url": "http://x/", "method": "POST"})]},
            "probes[0].params.method",
        ),
        ({"probes": [_probe(interval_seconds=0)]}, "probes[0].interval_seconds"),
        ({"probes": [_probe(interval_seconds=-5)]}, "probes[0].interval_seconds"),
        ({"probes": [_probe(interval_seconds="60")]}, "probes[0].interval_seconds"),
        ({"probes": [_probe(timeout_seconds=0)]}, "probes[0].timeout_seconds"),
        ({"probes": [_probe(), _probe()]}, "probes[1].key"),
        ({"probes": []}, "probes.non_field_errors"),  # the list itself: at least one probe
        ({"application": "nope"}, "application"),
        ({"plan": "nope"}, "plan"),
        ({"slug": "123"}, "slug"),
    ],
)
def test_bad_monitor_input_is_400_naming_the_field_and_changes_nothing(api_for, change, field):
    _make_monitor()
    make_plan("other-dr")
    before = (Monitor.objects.count(), Probe.objects.count(), AuditEntry.objects.count())
    response = api_for("admin").post(URL, {**_payload(), **change}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert (Monitor.objects.count(), Probe.objects.count(), AuditEntry.objects.count()) == before


def test_a_plan_must_hold_the_monitored_application(api_for):
    _make_monitor()
    make_plan("other-dr")
    response = api_for("admin").post(URL, _payload(plan="other-dr"), format="json")
    assert response.status_code == 400
    assert "plan" in response.json()["error"]["fields"]


# --- /rto-rpo, /rto-rpo/history, /rto-rpo/violations --------------------------------------------------


@pytest.fixture
def measured():
    """orders-db in plan orders-dr, with an hour of 1-minute samples (RPO 10..69 s) and an open RPO breach."""
    monitor = _make_monitor()
    make_target(
        monitor.application, rpo_target_seconds=60, rpo_breach_window_seconds=60, penalty_per_breach=Decimal("900")
    )
    probe = monitor.probes.get()
    start = timezone.now() - timedelta(minutes=59, seconds=30)
    for i in range(60):
        services.record(probe, Measurement(start + timedelta(minutes=i), True, True, float(10 + i), 1000 * i, 5.0))
    return probe


def test_rto_rpo_shows_targets_current_rpo_and_status(api_for, measured):
    body = api_for("viewer").get("/api/v1/dr/rto-rpo").json()
    (plan,) = body["plans"]
    (app,) = plan["applications"]
    assert (plan["plan"], plan["target_rto_seconds"], plan["target_rpo_seconds"]) == ("orders-dr", 3600, 300)
    assert plan["prediction"]["available"] is False and plan["prediction"]["message"] == "prediction unavailable"
    assert plan["rto_estimate"]["seconds"] is None and "failover runbook" in plan["rto_estimate"]["reason"]
    assert (app["application"], app["target_rpo_seconds"], app["current_rpo_seconds"]) == ("orders-db", 60, 69.0)
    assert (app["availability_percent"], app["open_violations"], app["status"]) == (100.0, 1, "breached")
    assert app["reasons"] == ["RPO above target", "open SLA violation"]
    assert plan["status"] == "breached"
    assert api_for("viewer").get("/api/v1/dr/rto-rpo", {"plan": "orders-dr", "period": "24h"}).status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [({"plan": "nope"}, "plan"), ({"application": "nope"}, "application"), ({"period": "2w"}, "period")],
)
def test_rto_rpo_refuses_unknown_parameters(api_for, measured, params, field):
    response = api_for("viewer").get("/api/v1/dr/rto-rpo", params)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_history_answers_each_resolution_with_its_filters(api_for, measured):
    api = api_for("viewer")
    raw = api.get("/api/v1/dr/rto-rpo/history", {"application": "orders-db", "resolution": "raw", "period": "24h"})
    assert raw.status_code == 200, raw.content
    body = raw.json()
    assert (body["metric"], body["resolution"], body["columns"]) == ("rpo_seconds", "raw", ["t", "value"])
    (series,) = body["series"]
    assert (series["monitor"], series["probe"], series["application"]) == (
        "orders-db-replication",
        "standby",
        "orders-db",
    )
    assert [p[1] for p in series["points"]] == [float(10 + i) for i in range(60)]
    day = api.get(
        "/api/v1/dr/rto-rpo/history", {"plan": "orders-dr", "metric": "lag_bytes", "resolution": "day"}
    ).json()
    assert day["columns"] == ["t", "min", "avg", "max", "count"]
    points = [p for s in day["series"] for p in s["points"]]
    assert sum(p[4] for p in points) == 60 and min(p[1] for p in points) == 0 and max(p[3] for p in points) == 59000
    availability = api.get("/api/v1/dr/rto-rpo/history", {"metric": "availability", "period": "7d"}).json()
    assert availability["resolution"] == "hour"
    assert sum(p[3] for s in availability["series"] for p in s["points"]) == 60


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"plan": "nope"}, "plan"),
        ({"plan": "999999"}, "plan"),
        ({"application": "nope"}, "application"),
        ({"metric": "rto"}, "metric"),
        ({"resolution": "week"}, "resolution"),
        ({"period": "forever"}, "period"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"period": "24h", "from": "2026-01-01T00:00:00Z"}, "period"),
        ({"period": "1y", "resolution": "minute"}, "resolution"),
    ],
)
def test_history_refuses_bad_parameters_naming_them(api_for, measured, params, field):
    response = api_for("viewer").get("/api/v1/dr/rto-rpo/history", params)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


def test_violations_list_with_penalties_and_filters(api_for, measured):
    api = api_for("viewer")
    make_plan("other-dr", status="active")
    SLAViolation.objects.create(
        kind="test_cadence", plan=make_plan("cadence-dr"), started_at=timezone.now(), worst_value=3, threshold=30
    )
    body = api.get("/api/v1/dr/rto-rpo/violations", {"kind": "rpo"}).json()
    (row,) = body["results"]
    assert (row["kind"], row["application"], row["open"], row["threshold"], row["penalty"]) == (
        "rpo",
        "orders-db",
        True,
        60.0,
        "900.00",
    )
    assert (row["breaches_this_quarter"], row["penalty_total_this_quarter"]) == (1, "900.00")
    assert [r["kind"] for r in api.get("/api/v1/dr/rto-rpo/violations", {"plan": "orders-dr"}).json()["results"]] == [
        "rpo"
    ]
    assert api.get("/api/v1/dr/rto-rpo/violations", {"state": "closed"}).json()["results"] == []
    assert len(api.get("/api/v1/dr/rto-rpo/violations", {"state": "open"}).json()["results"]) == 2
    cadence = api.get("/api/v1/dr/rto-rpo/violations", {"application": "orders-db", "kind": "test_cadence"})
    assert cadence.json()["results"] == []
    for params, field in (
        ({"plan": "nope"}, "plan"),
        ({"application": "nope"}, "application"),
        ({"kind": "x"}, "kind"),
        ({"state": "x"}, "state"),
    ):
        response = api.get("/api/v1/dr/rto-rpo/violations", params)
        assert response.status_code == 400, (params, response.content)
        assert field in response.json()["error"]["fields"]


def test_reads_need_a_signed_in_user(api_for, measured):
    for url in ("/api/v1/dr/rto-rpo", "/api/v1/dr/rto-rpo/history", "/api/v1/dr/rto-rpo/violations"):
        assert api_for(None).get(url).status_code == 401
        assert api_for("auditor").get(url).status_code == 200
