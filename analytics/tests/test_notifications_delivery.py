"""The outbox: retries with exponential backoff and every attempt recorded (the API and the admin show
them), a hanging webhook that holds up nobody, a notification hook that fails without stopping a run,
and the channel's secret never in the API's output, the audit log or the logs."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.notifications import delivery, services
from analytics.notifications.models import Delivery, NotificationChannel, Subscription
from analytics.tests.notification_support import SECRET, queued_deliveries, run_queued_deliveries
from core.models import AuditEntry, Secret
from failover.engine import hooks
from failover.engine.runner import run_execution
from failover.tests.engine_support import make_execution

API = "/api/v1/dr"


def webhook(receiver, **extra) -> NotificationChannel:
    channel = NotificationChannel.objects.create(name="ops-webhook", kind="webhook", url=receiver.url, **extra)
    services.save_channel_secret(channel, SECRET)
    return channel


@pytest.mark.django_db
def test_a_500_then_a_200_is_retried_after_the_backoff_and_every_attempt_is_recorded(
    receiver, settings, api_for, django_capture_on_commit_callbacks
):
    settings.NOTIFY_BACKOFF_SECONDS = 30
    channel = webhook(receiver, max_attempts=4)
    receiver.statuses = [500, 503]
    with django_capture_on_commit_callbacks(execute=True):
        queued = services.send_test_message(channel, None)
    assert queued_deliveries() == [queued.pk]  # queued for a worker at once, on commit

    run_queued_deliveries()
    first = Delivery.objects.get(pk=queued.pk)
    assert (first.status, first.attempts, first.last_error) == ("pending", 1, "HTTP 500")
    attempt = first.attempts_made.get()
    assert (attempt.number, attempt.success, attempt.status_code) == (1, False, 500)
    assert first.next_attempt_at - attempt.started_at >= timedelta(seconds=30)
    assert first.next_attempt_at - attempt.started_at < timedelta(seconds=40)

    assert delivery.deliver(first.pk).endswith("not pending or not due")  # the backoff holds it back
    assert len(receiver.received) == 1

    delivery.deliver(first.pk, now=first.next_attempt_at)
    second = Delivery.objects.get(pk=queued.pk)
    attempt2 = second.attempts_made.get(number=2)
    assert (second.status, attempt2.status_code) == ("pending", 503)
    assert second.next_attempt_at - attempt2.started_at >= timedelta(seconds=60)  # doubled

    # The every-minute sweep queues what is due again.
    assert services.pending_due(second.next_attempt_at) == [second.pk]
    delivery.deliver(second.pk, now=second.next_attempt_at)
    done = Delivery.objects.get(pk=queued.pk)
    assert (done.status, done.attempts, done.last_error) == ("delivered", 3, "")
    assert [(a.number, a.success, a.status_code) for a in done.attempts_made.all()] == [
        (1, False, 500),
        (2, False, 503),
        (3, True, 200),
    ]
    assert [r.json["attempt"] for r in receiver.received] == [1, 2, 3]
    assert len({r.json["id"] for r in receiver.received}) == 1  # the same id on every retry
    assert all(r.verified for r in receiver.received)

    listed = api_for("viewer").get(f"{API}/notifications/deliveries", {"status": "delivered", "channel": "ops-webhook"})
    assert listed.status_code == 200, listed.content
    row = listed.json()["results"][0]
    assert [(a["number"], a["status_code"], a["success"]) for a in row["attempt_log"]] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert all(a["duration_ms"] >= 0 and a["started_at"] for a in row["attempt_log"])
    assert api_for("viewer").get(f"{API}/notifications/deliveries", {"status": "failed"}).json()["count"] == 0
    assert api_for("viewer").get(f"{API}/notifications/deliveries", {"status": "lost"}).status_code == 400


@pytest.mark.django_db
def test_after_max_attempts_a_delivery_fails_for_good(receiver):
    channel = webhook(receiver, max_attempts=2)
    receiver.statuses = [500, 500, 500]
    queued = services.send_test_message(channel, None)
    delivery.deliver(queued.pk)
    delivery.deliver(queued.pk, now=Delivery.objects.get(pk=queued.pk).next_attempt_at)
    failed = Delivery.objects.get(pk=queued.pk)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 2, None)
    assert services.pending_due(timezone.now() + timedelta(days=1)) == []


@pytest.mark.django_db
def test_a_refused_connection_and_an_smtp_refusal_are_recorded(receiver, smtp_server):
    closed = NotificationChannel.objects.create(name="nobody-home", kind="webhook", url="http://127.0.0.1:9/x")
    services.save_channel_secret(closed, SECRET)
    queued = services.send_test_message(closed, None)
    delivery.deliver(queued.pk)
    attempt = Delivery.objects.get(pk=queued.pk).attempts_made.get()
    assert not attempt.success and attempt.status_code is None
    assert "Connection refused" in attempt.error or "ConnectionRefusedError" in attempt.error

    mail = NotificationChannel.objects.create(name="mail", kind="email", recipients=["ops@example.com"])
    queued = services.send_test_message(mail, None)
    delivery.deliver(queued.pk)
    assert Delivery.objects.get(pk=queued.pk).status == "delivered"
    assert smtp_server.envelopes == [("drplan@localhost", ["ops@example.com"])]


@pytest.mark.django_db(transaction=True)
def test_a_hanging_webhook_holds_up_neither_the_run_nor_the_other_channels(receiver, smtp_server):
    receiver.hang = threading.Event()
    hanging = webhook(receiver, timeout_seconds=1)
    mail = NotificationChannel.objects.create(name="mail", kind="email", recipients=["ops@example.com"])
    for channel in (hanging, mail):
        Subscription.objects.create(channel=channel, event_kinds=["execution_started", "execution_completed"])

    execution = make_execution([{"key": "one", "action": "noop"}, {"key": "two", "action": "noop", "needs": ["one"]}])
    assert run_execution(execution.pk) == "completed"  # the notifications were only queued
    assert receiver.received == []
    kinds = sorted(Delivery.objects.values_list("notification__kind", "channel__name"))
    assert kinds == [
        ("execution_completed", "mail"),
        ("execution_completed", "ops-webhook"),
        ("execution_started", "mail"),
        ("execution_started", "ops-webhook"),
    ]
    assert sorted(queued_deliveries()) == sorted(Delivery.objects.values_list("pk", flat=True))

    run_queued_deliveries()  # a worker: the webhook times out after its 1 s, the e-mails go out regardless
    assert len(smtp_server.messages) == 2
    stuck = Delivery.objects.filter(channel=hanging)
    assert set(stuck.values_list("status", flat=True)) == {"pending"}
    assert {a.error for d in stuck for a in d.attempts_made.all()} == {"timed out after 1 s"}
    receiver.hang.set()


@pytest.mark.django_db(transaction=True)
def test_a_failing_notification_hook_is_logged_and_never_stops_a_run(caplog):
    def broken(event):
        raise RuntimeError("notifications are down")

    default = hooks.installed()
    hooks.install(replace(default, notify_event=broken))
    try:
        execution = make_execution([{"key": "one", "action": "noop"}])
        with caplog.at_level(logging.ERROR, logger="failover.engine.events"):
            assert run_execution(execution.pk) == "completed"
    finally:
        hooks.install(default)
    assert "notify_event failed for event" in caplog.text


@pytest.mark.django_db
def test_the_secret_never_appears_in_the_api_the_audit_log_or_the_logs(
    receiver, api_for, caplog, django_capture_on_commit_callbacks
):
    secret = "s3cr3t-never-shown-anywhere-42"
    caplog.set_level(logging.DEBUG)
    admin = api_for("admin")
    created = admin.post(
        f"{API}/notifications/channels",
        {"name": "ops-webhook", "kind": "webhook", "url": receiver.url, "secret": secret},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["has_secret"] is True and "secret" not in created.json()
    channel = NotificationChannel.objects.get(name="ops-webhook")
    assert Secret.objects.filter(name=channel.secret_name).exists()

    receiver.secret = secret
    receiver.statuses = [500]
    with django_capture_on_commit_callbacks(execute=True):
        tested = admin.post(f"{API}/notifications/channels/ops-webhook/test", format="json")
    assert tested.status_code == 202, tested.content
    run_queued_deliveries()
    delivery.deliver(tested.json()["id"], now=timezone.now() + timedelta(hours=1))
    assert [r.verified for r in receiver.received] == [True, True]  # signed with it
    rotated = admin.patch(f"{API}/notifications/channels/ops-webhook", {"secret": secret + "-v2"}, format="json")
    assert rotated.status_code == 200, rotated.content

    reads = [
        admin.get(f"{API}/notifications/channels"),
        admin.get(f"{API}/notifications/channels/ops-webhook"),
        admin.get(f"{API}/notifications/deliveries"),
        admin.get(f"{API}/secrets"),
        admin.get(f"{API}/audit-log", {"page_size": 500}),
    ]
    assert [r.status_code for r in reads] == [200] * len(reads)
    assert channel.secret_name.encode() in reads[3].content  # the store holds it, by name only
    for output in [created.content, tested.content, rotated.content, *(r.content for r in reads)]:
        assert secret.encode() not in output
    assert all(secret not in str(entry.before) + str(entry.after) for entry in AuditEntry.objects.all())
    assert secret not in caplog.text
    assert "notification delivery" in caplog.text  # the failed attempt was logged, without it
    assert admin.delete(f"{API}/notifications/channels/ops-webhook").status_code == 204
    assert not Secret.objects.filter(name=channel.secret_name).exists()


@pytest.mark.django_db
def test_a_webhook_to_the_cloud_metadata_address_is_refused_without_a_connection(receiver):
    """A channel stored before the check (or whose URL names a host that resolves there) never POSTs there."""
    channel = webhook(receiver)
    NotificationChannel.objects.filter(pk=channel.pk).update(url="http://169.254.169.254/latest/meta-data/")
    sent = services.send_test_message(NotificationChannel.objects.get(pk=channel.pk), None)
    outcome = delivery.deliver(sent.pk)
    assert "attempt 1 failed: refused: 169.254.169.254 is a link-local (cloud instance metadata) address" in outcome
    assert sent.attempts_made.get().status_code is None


@pytest.mark.django_db
def test_a_name_that_rebinds_to_the_metadata_address_after_the_check_is_not_followed(receiver, monkeypatch):
    """DNS rebinding: the name answers the receiver's address to the check, then the metadata service's. The
    POST goes to the address that was checked (the receiver), never to the one a second lookup would give."""
    import socket as socket_module

    real = socket_module.getaddrinfo
    answers = iter(["127.0.0.1"])  # the check's answer; every later lookup of the name: the metadata service

    def rebinding(host, port, *args, **kwargs):
        if host == "hooks.rebind.test":
            address = next(answers, "169.254.169.254")
            return real(address, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket_module, "getaddrinfo", rebinding)
    channel = webhook(receiver)
    port = receiver.url.split(":")[2].split("/")[0]
    NotificationChannel.objects.filter(pk=channel.pk).update(url=f"http://hooks.rebind.test:{port}/hooks/drplan")
    sent = services.send_test_message(NotificationChannel.objects.get(pk=channel.pk), None)
    outcome = delivery.deliver(sent.pk)
    assert sent.attempts_made.get().status_code == 200, outcome
    assert [r.headers["Host"] for r in receiver.received] == [f"hooks.rebind.test:{port}"]
