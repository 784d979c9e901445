"""`lab up` gives the lab's applications their monitors through the seam drplan/wiring.py installs
(lab/hooks.py → analytics.monitoring.services.ensure_lab_monitors); the lab imports no analytics."""

from __future__ import annotations

import pytest
from django_q.models import Schedule

from analytics.monitoring import tasks
from analytics.monitoring.models import Monitor
from lab import hooks
from plans.tests.factories import make_app, make_plan

pytestmark = pytest.mark.django_db


def test_lab_up_creates_the_lab_monitors_once():
    apps = [make_app(slug) for slug in ("lab-postgres", "lab-redis", "lab-orders-app")]
    make_plan("lab", applications=apps)
    state = {"app_http_port": 18045}
    lines = hooks.after_up(state)
    assert len(lines) == 3 and all(line.startswith("monitor lab-") for line in lines)
    hooks.after_up(state)  # lab up again: the same monitors, nothing doubled
    monitors = {m.slug: m for m in Monitor.objects.prefetch_related("probes")}
    assert sorted(monitors) == ["lab-orders-app-health", "lab-postgres-replication", "lab-redis-replication"]
    assert {m.application.slug for m in monitors.values()} == {"lab-postgres", "lab-redis", "lab-orders-app"}
    assert all(m.plan.plan_id == "lab" and m.enabled for m in monitors.values())
    probes = [(p.action, p.params, p.interval_seconds) for m in monitors.values() for p in m.probes.all()]
    assert sorted(probes, key=lambda p: p[0]) == [
        ("http", {"url": "http://127.0.0.1:18045/status", "expected_status": 200}, 60),
        ("postgres.replication_status", {"dsn_secret": "pg_standby"}, 60),
        ("redis.replication_status", {"url_secret": "redis_replica"}, 60),
    ]
    assert set(Schedule.objects.values_list("name", flat=True)) >= {tasks.TICK_SCHEDULE, tasks.COMPACT_SCHEDULE}


def test_without_the_lab_plan_applications_nothing_is_created():
    lines = hooks.after_up({"app_http_port": 18045})
    assert [line.endswith("skipped") for line in lines] == [True, True, True]
    assert not Monitor.objects.exists()
