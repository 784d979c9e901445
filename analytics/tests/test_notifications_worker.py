"""End to end with a real django-q2 worker (manage.py qcluster on this test run's database): a failover
that needs a go/no-go reaches its approvers' webhook and mailbox through the queue, without waiting for
any schedule. The time from the trigger to the receipt is printed (the issue's goal: within 5 s)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from analytics.notifications import services, tasks
from analytics.notifications.models import Delivery, NotificationChannel, Subscription
from analytics.tests.notification_support import SECRET, run_queued_deliveries
from failover.tests.engine_factories import add_approval_levels, three_app_plan
from failover.tests.engine_support import start, stop, subprocess_env, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

API = "/api/v1/dr"


def test_an_approval_request_reaches_the_approvers_through_a_real_worker(
    tmp_path: Path, receiver, smtp_server, users, api_for, settings, monkeypatch
):
    users["approver"].email = "approver@example.com"
    users["approver"].save(update_fields=["email"])
    plan, _ = three_app_plan(approval_timeout_seconds=600)
    add_approval_levels(plan, ("approver", 1))
    hook = NotificationChannel.objects.create(name="approvers-hook", kind="webhook", url=receiver.url)
    services.save_channel_secret(hook, SECRET)
    mail = NotificationChannel.objects.create(name="approvers-mail", kind="email")
    for channel in (hook, mail):
        Subscription.objects.create(plan=plan, role="approver", event_kinds=["approval_waiting"], channel=channel)

    env = subprocess_env(DRPLAN_WORKERS="2", EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(settings.EMAIL_PORT))
    cluster = start(["manage.py", "qcluster"], env, tmp_path / "qcluster.log")
    try:
        services.send_test_message(hook, None)  # the worker is up once it has delivered this
        wait_for(lambda: receiver.received, timeout=120, interval=0.1)

        # Which deliveries this process queued (the real enqueue still runs). The queue itself cannot be read
        # for them: the woken worker may take and finish a task before this test looks.
        queued: list[int] = []
        enqueue = tasks.enqueue_deliveries
        monkeypatch.setattr(tasks, "enqueue_deliveries", lambda ids: (queued.extend(ids), enqueue(ids)))
        started = time.monotonic()
        response = api_for("operator").post(f"{API}/failover", {"plan": plan.plan_id, "reason": "DC maintenance"})
        assert response.status_code == 201 and response.json()["status"] == "awaiting_approval", response.content
        assert len(queued) == 2  # the webhook's and the e-mail's, handed to the queue on commit: no schedule involved
        wait_for(lambda: len(receiver.received) == 2 and smtp_server.messages, timeout=60, interval=0.02)
        webhook_latency = receiver.received[1].at - started
        arrived = time.monotonic() - started
    finally:
        stop(cluster)

    message = receiver.received[1]
    assert message.verified and message.json["kind"] == "approval_waiting"
    assert message.json["recipients"] == ["admin", "approver"]
    assert message.json["data"]["execution"]["id"] == response.json()["id"]
    assert smtp_server.envelopes == [("drplan@localhost", ["approver@example.com"])]  # admin has no address
    print(f"\napproval request: webhook {webhook_latency:.2f} s, webhook and e-mail {arrived:.2f} s after the trigger")


def test_with_every_worker_busy_the_approval_request_is_sent_from_the_triggering_process(
    receiver, users, api_for, settings
):
    """No django-q worker runs (as when each one coordinates a failover): the web process that created the
    request makes the first attempt itself; the queued task, run later, finds it sent and sends nothing."""
    settings.NOTIFY_SEND_FROM_PROCESS = True
    plan, _ = three_app_plan(approval_timeout_seconds=600)
    add_approval_levels(plan, ("approver", 1))
    hook = NotificationChannel.objects.create(name="approvers-hook", kind="webhook", url=receiver.url)
    services.save_channel_secret(hook, SECRET)
    Subscription.objects.create(plan=plan, role="approver", event_kinds=["approval_waiting"], channel=hook)

    response = api_for("operator").post(f"{API}/failover", {"plan": plan.plan_id, "reason": "DC maintenance"})
    assert response.status_code == 201 and response.json()["status"] == "awaiting_approval", response.content
    wait_for(lambda: receiver.received, timeout=30, interval=0.02)
    wait_for(lambda: Delivery.objects.get().status == "delivered", timeout=30)
    message = receiver.received[0]
    assert message.verified and message.json["kind"] == "approval_waiting"
    assert message.json["data"]["execution"]["id"] == response.json()["id"]

    assert run_queued_deliveries() == [f"delivery #{Delivery.objects.get().pk}: not pending or not due"]
    assert len(receiver.received) == 1
    assert Delivery.objects.get().attempts == 1
