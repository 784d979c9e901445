"""Alert rules end to end: a rule on the RTO targets' current values fires once to a real webhook receiver
(HMAC checked) and a real SMTP server, repeats only after its interval, and sends a resolved message."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.models import RTOTarget
from analytics.notifications import services
from analytics.notifications.models import AlertRule, AlertState, Delivery, NotificationChannel
from analytics.tests.factories import make_target
from analytics.tests.notification_support import SECRET, queued_deliveries, run_queued_deliveries
from plans.tests.factories import make_app, make_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def channels(receiver) -> tuple[NotificationChannel, NotificationChannel]:
    webhook = NotificationChannel.objects.create(name="ops-webhook", kind="webhook", url=receiver.url)
    services.save_channel_secret(webhook, SECRET)
    email = NotificationChannel.objects.create(name="dr-team", kind="email", recipients=["dr-team@example.com"])
    return webhook, email


def rpo_rule(channels, **extra) -> AlertRule:
    values = {
        "name": "orders RPO",
        "metric": "rpo_seconds",
        "scope": "application",
        "threshold": 300,
        "window_seconds": 120,
        "repeat_interval_seconds": 600,
        "severity": "critical",
    }
    values.update(extra)
    rule = AlertRule.objects.create(**values)
    rule.channels.set(channels)
    return rule


def set_rpo(app, seconds: float | None) -> None:
    RTOTarget.objects.filter(application=app).update(current_rpo_seconds=seconds)


def evaluate(capture, at, **kwargs) -> dict[str, int]:
    with capture(execute=True):
        counts = services.evaluate_alert_rules(now=at, **kwargs)
    run_queued_deliveries()
    return counts


def test_an_alert_fires_once_repeats_only_after_its_interval_then_resolves(
    channels, receiver, smtp_server, django_capture_on_commit_callbacks
):
    app = make_app("orders-db")
    make_target(app, current_rpo_seconds=10)
    rule = rpo_rule(channels, application=app)
    t0 = timezone.now()

    assert evaluate(django_capture_on_commit_callbacks, t0) == {"fired": 0, "repeated": 0, "resolved": 0}
    set_rpo(app, 420)  # replication falls behind
    evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=10))
    assert AlertState.objects.get(rule=rule).status == "pending"
    evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=100))  # within the window: nothing
    assert receiver.received == [] and smtp_server.messages == []

    counts = evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=131))
    assert counts["fired"] == 1
    assert receiver.kinds() == ["alert_firing"] and len(smtp_server.messages) == 1
    first = receiver.received[0]
    assert first.verified, first.headers
    assert first.json["data"]["application"] == "orders-db" and first.json["data"]["value"] == 420
    assert first.json["data"]["rule"]["severity"] == "critical"
    assert smtp_server.subjects()[0].startswith("[CRITICAL] FIRING: RPO of orders-db is 420 s")
    assert smtp_server.envelopes[0][1] == ["dr-team@example.com"]

    for seconds in (200, 400, 700):  # still past the threshold, but within the repeat interval
        evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=seconds))
    assert len(receiver.received) == 1 and len(smtp_server.messages) == 1

    assert evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=732))["repeated"] == 1
    assert receiver.kinds() == ["alert_firing", "alert_repeat"]
    assert len(smtp_server.messages) == 2 and "STILL FIRING" in smtp_server.subjects()[1]

    set_rpo(app, 4)  # replication caught up
    assert evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=800))["resolved"] == 1
    evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=2000))
    assert receiver.kinds() == ["alert_firing", "alert_repeat", "alert_resolved"]
    assert smtp_server.subjects()[2].startswith("[CRITICAL] RESOLVED: RPO of orders-db is 4 s")
    assert all(r.verified for r in receiver.received)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}
    state = AlertState.objects.get(rule=rule)
    assert (state.status, state.repeats) == ("ok", 1)


def test_a_breach_shorter_than_the_window_sends_nothing(channels, receiver, django_capture_on_commit_callbacks):
    app = make_app("orders-db")
    make_target(app, current_rpo_seconds=900)
    rpo_rule(channels, application=app)
    t0 = timezone.now()
    evaluate(django_capture_on_commit_callbacks, t0)
    set_rpo(app, 30)
    evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=119))
    set_rpo(app, 900)
    evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=200))  # a new window starts here
    assert receiver.received == [] and Delivery.objects.count() == 0
    evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=320))
    assert receiver.kinds() == ["alert_firing"]


def test_availability_fires_below_its_threshold_per_application_of_a_plan(
    channels, receiver, django_capture_on_commit_callbacks
):
    web, api, other = make_app("shop-web"), make_app("shop-api"), make_app("other-app")
    for app in (web, api, other):
        make_target(app, current_availability_percent="99.99")
    plan = make_plan("shop-dr", applications=[web, api])
    rpo_rule(channels[:1], metric="availability_percent", scope="plan", plan=plan, threshold=99.9, window_seconds=60)
    t0 = timezone.now()
    RTOTarget.objects.filter(application__in=[api, other]).update(current_availability_percent="98.5")
    evaluate(django_capture_on_commit_callbacks, t0)
    evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=61))
    assert [r.json["data"]["application"] for r in receiver.received] == ["shop-api"]


def test_an_unknown_value_changes_nothing_and_the_probes_can_evaluate_their_applications_only(
    channels, receiver, django_capture_on_commit_callbacks
):
    a, b = make_app("app-a"), make_app("app-b")
    make_target(a, current_rpo_seconds=999)
    make_target(b, current_rpo_seconds=999)
    rule = rpo_rule(channels[:1], scope="all", window_seconds=1)
    t0 = timezone.now()
    evaluate(django_capture_on_commit_callbacks, t0, application_ids=[a.pk])
    evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=5), application_ids=[a.pk])
    assert [r.json["data"]["application"] for r in receiver.received] == ["app-a"]
    assert not AlertState.objects.filter(rule=rule, application=b).exists()
    set_rpo(a, None)  # the probe timed out: unknown, neither resolved nor fired again
    evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=5000))
    assert len(receiver.received) == 1
    assert AlertState.objects.get(rule=rule, application=a).status == "firing"
    assert queued_deliveries() == []


def test_a_rule_moved_to_another_application_forgets_the_old_one(
    channels, receiver, django_capture_on_commit_callbacks
):
    a, b = make_app("app-a"), make_app("app-b")
    make_target(a, current_rpo_seconds=999)
    make_target(b, current_rpo_seconds=1)
    rule = rpo_rule(channels[:1], application=a, window_seconds=1)
    t0 = timezone.now()
    evaluate(django_capture_on_commit_callbacks, t0)
    evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=2))
    assert AlertState.objects.get(rule=rule).status == "firing"
    AlertRule.objects.filter(pk=rule.pk).update(application=b)
    evaluate(django_capture_on_commit_callbacks, t0 + timedelta(seconds=3))
    assert list(AlertState.objects.filter(rule=rule).values_list("application__slug", "status")) == [("app-b", "ok")]
    assert receiver.kinds() == ["alert_firing"]
