"""Clock skew (issue 15): each node's offset from the database server's clock, measured through the ORM, the
warning when it exceeds the lease margin, and the report at GET /api/v1/dr/health/clocks."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core import dbtime
from core.models import NodeClock

pytestmark = pytest.mark.django_db


def test_a_node_in_step_with_the_database_measures_a_small_offset_and_is_not_reported(settings, caplog):
    settings.ENGINE_LEASE_SECONDS = 15
    settings.ENGINE_LEASE_MARGIN_SECONDS = None
    with caplog.at_level(logging.WARNING, logger="core.dbtime"):
        first = dbtime.measure("node-a")
        second = dbtime.measure("node-a")
    assert abs(first.offset_seconds) < 1 and abs(second.offset_seconds) < 1
    assert second.uncertainty_seconds >= 0
    assert list(NodeClock.objects.values_list("node", flat=True)) == ["node-a"]  # one row per node, updated
    assert not caplog.records
    report = dbtime.report()
    assert (report["status"], report["skewed"], report["lease_margin_seconds"]) == ("ok", [], 3.0)
    assert [node["node"] for node in report["nodes"]] == ["node-a"]


def test_a_node_whose_clock_is_ahead_by_more_than_the_margin_is_warned_about_and_reported(
    settings, caplog, monkeypatch
):
    settings.ENGINE_LEASE_SECONDS = 15
    settings.ENGINE_LEASE_MARGIN_SECONDS = 2
    dbtime.measure("in-step")
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=30))
    with caplog.at_level(logging.WARNING, logger="core.dbtime"):
        clock = dbtime.measure("fast-node")
    monkeypatch.undo()
    assert 29 < clock.offset_seconds < 31
    # the offset as measured (+29.999 s when the database's clock was read late in the round trip)
    warned = re.search(r"clock skew: node fast-node is \+(\d+\.\d+) s \(± [\d.]+\) from the database", caplog.text)
    assert warned and 29 < float(warned.group(1)) < 31, caplog.text
    answer = APIClient().get("/api/v1/dr/health/clocks")  # open, like the liveness probe
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["skewed"], body["lease_margin_seconds"]) == ("skewed", ["fast-node"], 2.0)
    by_node = {node["node"]: node for node in body["nodes"]}
    assert by_node["fast-node"]["skewed"] is True and by_node["in-step"]["skewed"] is False
    assert 29 < by_node["fast-node"]["offset_seconds"] < 31


def test_a_node_behind_is_reported_too_and_no_watch_runs_when_disabled(settings, monkeypatch):
    settings.ENGINE_LEASE_MARGIN_SECONDS = 2
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() - timedelta(seconds=5))
    clock = dbtime.measure("slow-node")
    monkeypatch.undo()
    assert -6 < clock.offset_seconds < -4
    assert dbtime.report()["skewed"] == ["slow-node"]
    assert dbtime.start_watch(0) is False


@pytest.mark.django_db(transaction=True)
def test_a_web_node_measures_its_clock_on_its_first_request_and_then_at_most_every_interval(settings, monkeypatch):
    """The ASGI application (drplan/asgi.py) measures this node's clock against the database's on the first request
    that reaches it, and not again before CLOCK_CHECK_SECONDS; the node then shows in the clocks report."""
    from asgiref.sync import async_to_sync
    from channels.testing import HttpCommunicator

    from drplan.asgi import application
    from failover.tests.engine_support import wait_for

    settings.NODE_NAME = "web-a"
    settings.CLOCK_CHECK_SECONDS = 3600
    monkeypatch.setattr(dbtime, "_next_check", 0.0)
    started: list[str] = []
    real_measure_once = dbtime._measure_once
    monkeypatch.setattr(dbtime, "_measure_once", lambda: (started.append("measure"), real_measure_once()))
    assert not NodeClock.objects.exists()

    def get(path: str) -> dict:
        communicator = HttpCommunicator(application, "GET", path, headers=[(b"host", b"127.0.0.1")])
        return async_to_sync(communicator.get_response)(timeout=30)

    assert get("/api/v1/dr/health")["status"] == 200
    measured = wait_for(lambda: NodeClock.objects.filter(node="web-a").first(), 30)
    assert abs(measured.offset_seconds) < 1
    for _ in range(3):
        assert get("/api/v1/dr/health")["status"] == 200
    assert started == ["measure"], "one measurement per interval, whatever the requests"
    report = json.loads(get("/api/v1/dr/health/clocks")["body"])
    assert [node["node"] for node in report["nodes"]] == ["web-a"] and report["status"] == "ok"
    monkeypatch.setattr(dbtime, "_next_check", 0.0)  # the interval has passed
    assert get("/api/v1/dr/health")["status"] == 200
    wait_for(lambda: len(started) == 2, 30)
