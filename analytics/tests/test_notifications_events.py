"""Execution events by subscription (the engine's notify_event hook, after commit): a go/no-go level
waiting reaches the holders of its role (never the person who triggered it, never another role), level by
level; a manual step waiting; started, completed and failed; an RTO breach forecast once per execution."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.notifications import services
from analytics.notifications.models import Delivery, Notification, NotificationChannel, Subscription
from analytics.tests.notification_support import SECRET, run_queued_deliveries
from failover import approvals
from failover import services as failover_services
from failover.engine.runner import run_execution
from failover.engine.states import transition_step
from failover.models import FailoverExecution, StepRun
from failover.tests.engine_factories import add_approval_levels, three_app_plan
from failover.tests.engine_support import in_thread, make_execution, shell, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

APPROVAL = ["approval_waiting"]


@pytest.fixture
def channels(receiver, smtp_server) -> tuple[NotificationChannel, NotificationChannel]:
    hook = NotificationChannel.objects.create(name="chatops", kind="webhook", url=receiver.url)
    services.save_channel_secret(hook, SECRET)
    mail = NotificationChannel.objects.create(name="mail", kind="email")
    return hook, mail


@pytest.fixture
def people(users, make_user):
    for role, user in users.items():
        user.email = f"{role}@example.com"
        user.save(update_fields=["email"])
    second = make_user("approver2", "approver", email="approver2@example.com")
    return {**users, "approver2": second}


def test_a_go_no_go_level_waiting_reaches_the_holders_of_its_role_level_by_level(
    channels, people, receiver, smtp_server, enqueued
):
    hook, mail = channels
    plan, _ = three_app_plan(approval_timeout_seconds=600)
    add_approval_levels(plan, ("approver", 1), ("admin", 1))
    for role in ("approver", "admin", "operator"):
        Subscription.objects.create(plan=plan, role=role, event_kinds=APPROVAL, channel=mail)
    Subscription.objects.create(role="approver", event_kinds=APPROVAL, channel=hook)  # every plan

    execution = failover_services.start_failover(plan, actor=people["approver2"], reason="maintenance")
    run_queued_deliveries()
    # Level 1 (approver): the approvers by e-mail, except approver2 who triggered it; superusers hold every
    # role (admin). Not the operators, and not the admin subscription (level 2's role).
    assert [sorted(to) for _, to in smtp_server.envelopes] == [["admin@example.com", "approver@example.com"]]
    assert "level 1 waits for 1 approver" in smtp_server.subjects()[0]
    assert f"/console/executions/{execution.pk}/" in smtp_server.messages[0].get_content()
    assert [r.json["kind"] for r in receiver.received] == ["approval_waiting"]
    body = receiver.received[0].json
    assert receiver.received[0].verified
    assert body["recipients"] == ["admin", "approver"]
    assert body["data"]["level"] == {"level": 1, "role": "approver", "approvers": 1}
    assert body["data"]["execution"]["id"] == execution.pk

    approvals.decide_execution(execution, people["approver"], "approve")
    run_queued_deliveries()
    assert [sorted(to) for _, to in smtp_server.envelopes][1] == ["admin@example.com"]
    assert "level 2 waits for 1 admin" in smtp_server.subjects()[1]
    assert len(receiver.received) == 1  # the webhook subscribed to the approver role only

    approvals.decide_execution(execution, people["admin"], "approve")
    run_queued_deliveries()
    assert len(smtp_server.messages) == 2  # nothing left to wait for
    assert Notification.objects.filter(execution=execution, kind="approval_waiting").count() == 2


def test_a_plan_subscription_hears_nothing_of_other_runs_and_dry_runs_tell_nobody(channels, people, enqueued):
    hook, _ = channels
    plan, _ = three_app_plan(approval_timeout_seconds=600)
    Subscription.objects.create(plan=plan, event_kinds=["execution_started", "execution_completed"], channel=hook)
    assert run_execution(make_execution([{"key": "one", "action": "noop"}]).pk) == "completed"  # no plan
    dry = failover_services.start_failover(plan, actor=people["operator"], dry_run=True)
    assert run_execution(dry.pk) == "completed"
    assert Delivery.objects.count() == 0
    real = make_execution([{"key": "one", "action": "noop"}], plan=plan, execution_type="planned")
    assert run_execution(real.pk) == "completed"
    assert sorted(Delivery.objects.values_list("notification__kind", flat=True)) == [
        "execution_completed",
        "execution_started",
    ]


def test_a_manual_step_waiting_and_the_start_and_end_of_a_run(channels, people, receiver):
    hook, mail = channels
    kinds = ["manual_step_waiting", "execution_started", "execution_completed", "execution_failed"]
    Subscription.objects.create(role="operator", event_kinds=kinds, channel=mail)
    Subscription.objects.create(event_kinds=kinds, channel=hook)
    execution = make_execution(
        [
            shell("true", key="prepare"),
            {"key": "check", "action": "manual", "needs": ["prepare"], "with": {"instructions": "Look at grafana"}},
        ]
    )

    def confirm() -> None:
        step = wait_for(lambda: StepRun.objects.filter(execution=execution, status="waiting").first())
        wait_for(lambda: Delivery.objects.filter(notification__kind="manual_step_waiting").exists())
        now = timezone.now()
        transition_step(step, "succeeded", only_from={"waiting"}, confirmed_at=now, finished_at=now)

    thread = in_thread(confirm)
    assert run_execution(execution.pk) == "completed"
    thread.join()
    failing = make_execution([shell("false", key="broken")])
    final = run_execution(failing.pk)
    run_queued_deliveries()
    ended = f"execution_{'failed' if final in ('failed', 'rollback_failed') else final}"
    assert receiver.kinds() == [
        "execution_started",
        "manual_step_waiting",
        "execution_completed",
        "execution_started",
        ended,
    ]
    waiting = receiver.received[1].json
    assert waiting["data"]["step"] == "check" and "Look at grafana" in waiting["text"]
    operator_mail = [m for m in Delivery.objects.filter(channel=mail)]
    assert {tuple(d.recipients) for d in operator_mail} == {("admin@example.com", "operator@example.com")}


def test_an_rto_breach_forecast_is_sent_once_per_execution(channels, people, receiver, enqueued):
    hook, _ = channels
    plan, _ = three_app_plan(rto_seconds=60)
    Subscription.objects.create(plan=plan, event_kinds=["rto_breach_forecast"], channel=hook)
    execution = failover_services.start_failover(plan, actor=people["operator"])
    FailoverExecution.objects.filter(pk=execution.pk).update(
        status="running", started_at=timezone.now(), triggered_at=timezone.now() - timedelta(seconds=30)
    )
    assert services.check_rto_forecasts() == 1  # 30 s gone, ~40 s of steps to go: past 60 s
    assert services.check_rto_forecasts() == 0
    run_queued_deliveries()
    assert receiver.kinds() == ["rto_breach_forecast"]
    forecast = receiver.received[0].json["data"]["projection"]
    assert forecast["state"] == "at_risk" and forecast["target_seconds"] == 60
    assert forecast["projected_total_seconds"] > 60


def test_a_step_approval_gate_waiting_reaches_its_role(channels, people, receiver):
    hook, mail = channels
    Subscription.objects.create(role="approver", event_kinds=APPROVAL, channel=mail)
    Subscription.objects.create(role="operator", event_kinds=APPROVAL, channel=hook)  # not the gate's role
    execution = make_execution([shell("true", key="switch-dns", approval={"role": "approver"})])

    def approve() -> None:
        wait_for(lambda: Delivery.objects.filter(notification__kind="approval_waiting").exists())
        StepRun.objects.filter(execution=execution).update(gate_approved_at=timezone.now())

    thread = in_thread(approve)
    assert run_execution(execution.pk) == "completed"
    thread.join()
    (delivery,) = Delivery.objects.filter(notification__kind="approval_waiting")
    assert delivery.channel == mail  # ordered by username; nobody triggered it, so every approver
    assert delivery.recipients == ["admin@example.com", "approver@example.com", "approver2@example.com"]
    assert delivery.notification.payload["step"] == "switch-dns"
    assert "step switch-dns waits for 1 approver" in delivery.notification.subject
