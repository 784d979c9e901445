"""SLA violations: an RPO above target for longer than its window (from probe samples), an execution's RTO
above the SLA threshold (analytics.outcomes.record_outcome), a missed test cadence; each with its penalty and
the breaches of the quarter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics import outcomes
from analytics.models import RTOTarget
from analytics.monitoring import services, violations
from analytics.monitoring.models import Probe, SLAViolation
from analytics.monitoring.probes import Measurement
from analytics.tests.factories import make_result, make_target
from failover import services as failover_services
from failover.models import FailoverExecution
from failover.tests.engine_factories import three_app_plan
from plans.models import Application
from plans.tests.factories import make_plan

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def watched() -> tuple[Probe, RTOTarget]:
    application = Application.objects.create(slug="orders-db", name="Orders database")
    target = make_target(
        application, rpo_target_seconds=60, rpo_breach_window_seconds=300, penalty_per_breach=Decimal("2500")
    )
    services.ensure_monitors(
        [
            {
                "slug": "orders-db-replication",
                "application": "orders-db",
                "probes": [
                    {
                        "key": "standby",
                        "action": "postgres.replication_status",
                        "params": {"dsn_secret": "orders-standby"},
                        "interval_seconds": 60,
                    }
                ],
            }
        ]
    )
    return Probe.objects.select_related("monitor").get(), target


def _at(probe: Probe, minute: int, rpo: float | None, *, ok: bool = True):
    return services.record(probe, Measurement(T0 + timedelta(minutes=minute), ok, True if ok else None, rpo))


def test_an_rpo_above_target_longer_than_its_window_is_a_breach_with_its_penalty(watched):
    probe, target = watched
    _at(probe, 0, 30.0)
    for minute, rpo in ((1, 70.0), (2, 90.0), (4, 120.0), (5, 80.0)):  # 4 minutes above: within the window
        _at(probe, minute, rpo)
    assert not SLAViolation.objects.exists()
    _at(probe, 6, None, ok=False)  # unknown: neither extends nor ends anything
    assert not SLAViolation.objects.exists()
    _at(probe, 7, 95.0)  # 6 minutes above 60 s since the first sample above it
    violation = SLAViolation.objects.get()
    assert (violation.kind, violation.application.slug, violation.ended_at) == ("rpo", "orders-db", None)
    assert (violation.started_at, violation.worst_value, violation.threshold) == (
        T0 + timedelta(minutes=1),
        120.0,
        60.0,
    )
    assert violation.penalty == Decimal("2500.00")
    target.refresh_from_db()
    assert (target.breach_count, target.current_rpo_seconds) == (1, 95.0)
    _at(probe, 8, 150.0)
    _at(probe, 9, None, ok=False)
    violation.refresh_from_db()
    assert (violation.worst_value, violation.ended_at) == (150.0, None)
    back = _at(probe, 10, 12.0)
    violation.refresh_from_db()
    assert violation.ended_at == back.at
    # a second breach later: a new violation, two this quarter, priced
    for minute in range(11, 18):
        _at(probe, minute, 61.0)
    assert SLAViolation.objects.filter(ended_at__isnull=True).count() == 1
    totals = violations.quarter_totals({target.application_id}, now=T0 + timedelta(minutes=20))
    assert totals[target.application_id] == {"breaches": 2, "penalty_total": Decimal("5000.00")}
    assert RTOTarget.objects.get(pk=target.pk).breach_count == 2


def test_an_execution_recovering_slower_than_the_sla_threshold_is_a_breach(users, enqueued):
    plan, apps = three_app_plan(categories=("test",), rto_seconds=300, rpo_seconds=60)
    for i, app in enumerate(apps.values()):
        make_target(
            app, rto_target_seconds=300, sla_breach_threshold_seconds=200 + 100 * i, penalty_per_breach=Decimal("700")
        )
    execution = failover_services.start_test(plan, actor=users["operator"])
    now = timezone.now()
    FailoverExecution.objects.filter(pk=execution.pk).update(
        status="completed", started_at=now, finished_at=now, actual_rto_seconds=250.0
    )
    outcomes.record_outcome(execution.pk)
    outcomes.record_outcome(execution.pk)  # idempotent
    breached = SLAViolation.objects.get()  # only the application whose threshold (200 s) is below 250 s
    assert (breached.kind, breached.execution_id, breached.worst_value, breached.threshold) == (
        "rto",
        execution.pk,
        250.0,
        200.0,
    )
    assert breached.penalty == Decimal("700.00") and breached.ended_at == now
    assert breached.plan == plan


def test_a_test_result_recorded_by_hand_is_a_breach_too():
    plan = make_plan(plan_id="crm-dr", rto_seconds=600)
    application = Application.objects.create(slug="crm", name="CRM")
    plan.applications.add(application)
    make_target(application, sla_breach_threshold_seconds=900, penalty_per_breach=Decimal("100"))
    result = make_result(plan, outcome="partial", actual_rto_seconds=1200.0)
    make_result(plan, actual_rto_seconds=400.0)
    assert violations.sweep_test_results() == 1
    assert violations.sweep_test_results() == 0
    violation = SLAViolation.objects.get()
    assert (violation.test_result, violation.worst_value, violation.penalty) == (result, 1200.0, Decimal("100.00"))


def test_a_missed_test_cadence_is_recorded_until_a_test_happens():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    plan = make_plan(plan_id="crm-dr", status="active", test_frequency="monthly")
    plan.created_at = now - timedelta(days=100)
    plan.save(update_fields=["created_at"])
    make_result(plan, test_date=now - timedelta(days=90))  # on time (10 days after creation)
    make_result(plan, test_date=now - timedelta(days=45))  # 15 days late: due 30 days after the last
    assert violations.sweep_cadence(now) == 2  # that one, and the one overdue since 15 days ago
    late, overdue = SLAViolation.objects.filter(kind="test_cadence").order_by("started_at")
    assert (late.started_at, late.ended_at, late.worst_value, late.unit) == (
        now - timedelta(days=60),
        now - timedelta(days=45),
        15.0,
        "days",
    )
    assert (overdue.started_at, overdue.ended_at, overdue.worst_value) == (now - timedelta(days=15), None, 15.0)
    assert overdue.penalty == Decimal("0")
    # a test happens: the open one closes, with how late it was
    make_result(plan, test_date=now + timedelta(days=1))
    assert violations.sweep_cadence(now + timedelta(days=2)) == 0
    overdue.refresh_from_db()
    assert (overdue.ended_at, overdue.worst_value) == (now + timedelta(days=1), 16.0)


def test_the_dashboard_shows_open_violations(users):
    from django.test import Client

    application = Application.objects.create(slug="orders-db", name="Orders database")
    open_one = SLAViolation.objects.create(
        kind="rpo", application=application, started_at=T0, worst_value=95.0, threshold=60.0, penalty=Decimal("900")
    )
    SLAViolation.objects.create(
        kind="rpo",
        application=application,
        started_at=T0 - timedelta(days=1),
        ended_at=T0,
        worst_value=70,
        threshold=60,
    )
    client = Client()
    client.force_login(users["viewer"])
    page = client.get("/dashboard/").content.decode()
    section = page[page.index('id="sla-violations"') :]
    assert f'data-violation="{open_one.pk}"' in section and section.count("data-violation=") == 1
    assert "Orders database" in section and "RPO above target" in section


def test_a_probe_evaluates_its_applications_alert_rules_at_once(watched, receiver, django_capture_on_commit_callbacks):
    """Monitoring and alerts meet here: a recorded sample past an alert rule's threshold for longer than its window
    reaches the rule's real webhook receiver without waiting for the minute's sweep."""
    from analytics.notifications import services as notifications
    from analytics.notifications.models import AlertRule, AlertState, NotificationChannel
    from analytics.tests.notification_support import SECRET, run_queued_deliveries

    probe, _ = watched
    webhook = NotificationChannel.objects.create(name="ops-webhook", kind="webhook", url=receiver.url)
    notifications.save_channel_secret(webhook, SECRET)
    rule = AlertRule.objects.create(
        name="orders RPO",
        metric="rpo_seconds",
        scope="application",
        application=probe.monitor.application,
        threshold=120,
        window_seconds=60,
        repeat_interval_seconds=600,
        severity="critical",
    )
    rule.channels.set([webhook])
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        services.record(probe, Measurement(now, True, True, 600))
    assert AlertState.objects.get(rule=rule).status == "pending"
    AlertState.objects.filter(rule=rule).update(pending_since=now - timedelta(seconds=61))
    with django_capture_on_commit_callbacks(execute=True):
        services.record(probe, Measurement(timezone.now(), True, True, 650))
    run_queued_deliveries()
    assert receiver.kinds() == ["alert_firing"]
    assert receiver.received[0].verified
    assert receiver.received[0].json["data"]["application"] == "orders-db"
