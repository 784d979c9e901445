"""Use cases of alerts and notifications.

- Channels: the webhook's signing secret lives in the secret store (core/secrets.py), never in a row
  the API or the audit log shows (`save_channel_secret`, `delete_channel`).
- Alert rules: `evaluate_alert_rules(application_ids=None, now=None)` compares each enabled rule's metric
  (the RTO targets' current values the monitoring probes keep up to date) with its threshold, per
  application of its scope, and queues what changed: fired (past the threshold for longer than the
  window), repeated (at most every repeat interval while it lasts), resolved. Called by the schedule
  every minute and by anyone who just changed a current value (the probes).
- Execution events: `notify_execution_event(event)` is the engine's `notify_event` hook (installed by
  drplan/wiring.py, called after the event's commit): it turns approval requests, manual steps waiting
  and status changes into messages for the matching subscriptions. `check_rto_forecasts(now=None)` (the
  schedule) tells the subscribers once per execution when the console's projection breaches the RTO.
- Every message is a Notification with one Delivery per channel, queued on commit (django-q2): nothing
  here waits for a receiver.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from analytics.models import RTOTarget
from analytics.notifications import delivery, tasks
from analytics.notifications.choices import (
    LOW_IS_BAD,
    METRIC_FIELDS,
    AlertStatus,
    ChannelKind,
    DeliveryStatus,
    NotificationKind,
    Scope,
)
from analytics.notifications.models import (
    AlertRule,
    AlertState,
    Delivery,
    Notification,
    NotificationChannel,
    Subscription,
)
from core import secrets
from core.choices import AuthMethod
from core.exceptions import Conflict
from core.roles import holds_role, role_holders
from failover import projection
from failover.choices import ExecutionStatus as ES
from failover.choices import StepStatus as SS
from failover.engine.approval_policy import current_level
from failover.models import ApprovalDecision, ExecutionEvent, FailoverExecution, StepRun

logger = logging.getLogger(__name__)

SECRET_PREFIX = "notification-channel-"  # noqa: S105 (a name, not a value)


# --- channels ---------------------------------------------------------------------------------------------


def save_channel_secret(
    channel: NotificationChannel, secret: str, *, actor: Any = None, auth_method: str = AuthMethod.SYSTEM
) -> None:
    """Store (or replace) a webhook channel's signing secret in the secret store, under a name of its own
    (`notification-channel-<id>`; Conflict if a secret of that name was made by someone else)."""
    if channel.secret_name and secrets.Secret.objects.filter(name=channel.secret_name).exists():
        secrets.update_secret(
            secrets.Secret.objects.get(name=channel.secret_name), value=secret, actor=actor, auth_method=auth_method
        )
        return
    name = f"{SECRET_PREFIX}{channel.pk}"
    secrets.create_secret(
        name,
        secret,
        actor=actor,
        auth_method=auth_method,
        description=f"signing secret of notification channel {channel.name}",
    )
    NotificationChannel.objects.filter(pk=channel.pk).update(secret_name=name)
    channel.secret_name = name


def delete_channel_secret(
    channel: NotificationChannel, *, actor: Any = None, auth_method: str = AuthMethod.SYSTEM
) -> None:
    """Remove the channel's secret from the store (the channel is being deleted)."""
    if channel.secret_name and secrets.Secret.objects.filter(name=channel.secret_name).exists():
        secrets.delete_secret(channel.secret_name, actor=actor, auth_method=auth_method)


def send_test_message(channel: NotificationChannel, actor: Any) -> Delivery:
    """Queue a test message to the channel (to check the receiver and its signature check)."""
    if not channel.enabled:
        raise Conflict(f"channel {channel.name!r} is disabled; enable it first", code="channel_disabled")
    if channel.kind == ChannelKind.EMAIL and not channel.recipients:
        raise Conflict(f"e-mail channel {channel.name!r} has no recipients to test", field="recipients")
    who = actor.get_username() if actor is not None else "system"
    notification = _queue(
        {
            "kind": NotificationKind.TEST,
            "subject": f"DRPlan test message to channel {channel.name}",
            "text": f"{who} sent this test message to check that channel {channel.name} reaches you.",
            "payload": {"channel": channel.name, "requested_by": who},
        },
        [(channel, list(channel.recipients or []))],
    )
    assert notification is not None  # no dedupe key: always created
    return notification.deliveries.get()


# --- queueing ---------------------------------------------------------------------------------------------


def _queue(fields: dict[str, Any], targets: Iterable[tuple[NotificationChannel, list[str]]]) -> Notification | None:
    """One Notification and a Delivery per target channel, enqueued on commit. None when a notification
    with the same dedupe_key exists already (it was sent)."""
    targets = [(c, r) for c, r in targets if c.enabled and (c.kind == ChannelKind.WEBHOOK or r)]
    if not targets:
        return None
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                notification = Notification.objects.create(**fields)
        except IntegrityError:
            return None
        ids = [
            Delivery.objects.create(
                notification=notification,
                channel=channel,
                recipients=recipients,
                max_attempts=channel.max_attempts,
                next_attempt_at=now,
            ).pk
            for channel, recipients in targets
        ]
        transaction.on_commit(lambda: (delivery.send_soon(ids), tasks.enqueue_deliveries(ids)))
    return notification


# --- alert rules ------------------------------------------------------------------------------------------


def _targets(rule: AlertRule, application_ids: set[int] | None) -> list[tuple[int, str, float | None]]:
    """(application id, slug, current value) of the rule's scope that have an RTO target."""
    field = METRIC_FIELDS[rule.metric]
    rows = RTOTarget.objects.all()
    if rule.scope == Scope.PLAN:
        rows = rows.filter(application__plans=rule.plan_id)
    elif rule.scope == Scope.APPLICATION:
        rows = rows.filter(application_id=rule.application_id)
    if application_ids is not None:
        rows = rows.filter(application_id__in=application_ids)
    return [
        (app_id, slug, float(value) if value is not None else None)
        for app_id, slug, value in rows.values_list("application_id", "application__slug", field).distinct()
    ]


def _past(rule: AlertRule, value: float) -> bool:
    return value < rule.threshold if rule.metric in LOW_IS_BAD else value > rule.threshold


def evaluate_alert_rules(
    application_ids: Iterable[int] | None = None, *, now: datetime | None = None
) -> dict[str, int]:
    """Evaluate every enabled alert rule (only for `application_ids` if given) at `now`; queue the
    messages of what changed. Returns counts: fired, repeated, resolved.

    The value is the RTO target's current value of the rule's metric. Past the threshold (above it;
    below it for availability) starts the window; past it for `window_seconds` or longer fires once; while
    it lasts a reminder goes at most every `repeat_interval_seconds`; back within the threshold sends the
    resolved message (a rule still pending goes back to ok silently). An unknown value (None: the probe
    could not tell) changes nothing."""
    now = now or timezone.now()
    wanted = set(application_ids) if application_ids is not None else None
    counts = {"fired": 0, "repeated": 0, "resolved": 0}
    rules = AlertRule.objects.filter(enabled=True).select_related("plan", "application").prefetch_related("channels")
    for rule in rules:
        targets = _targets(rule, wanted)
        for app_id, slug, value in targets:
            if value is None:
                continue
            outcome = _evaluate_one(rule, app_id, slug, value, now)
            if outcome:
                counts[outcome] += 1
        if wanted is None:  # applications no longer in the rule's scope (changed scope, plan or target)
            AlertState.objects.filter(rule=rule).exclude(application_id__in=[t[0] for t in targets]).delete()
    return counts


def _evaluate_one(rule: AlertRule, app_id: int, slug: str, value: float, now: datetime) -> str | None:
    past = _past(rule, value)
    with transaction.atomic():
        AlertState.objects.get_or_create(rule=rule, application_id=app_id)
        state = AlertState.objects.select_for_update().get(rule=rule, application_id=app_id)
        state.value = value
        outcome, kind = None, None
        if past:
            if state.status == AlertStatus.OK:
                state.status, state.pending_since = AlertStatus.PENDING, now
            if state.status == AlertStatus.PENDING and now - state.pending_since >= timedelta(
                seconds=rule.window_seconds
            ):
                state.status, state.fired_at, state.last_sent_at, state.repeats = AlertStatus.FIRING, now, now, 0
                state.resolved_at = None
                outcome, kind = "fired", NotificationKind.ALERT_FIRING
            elif state.status == AlertStatus.FIRING and now - state.last_sent_at >= timedelta(
                seconds=rule.repeat_interval_seconds
            ):
                state.last_sent_at, state.repeats = now, state.repeats + 1
                outcome, kind = "repeated", NotificationKind.ALERT_REPEAT
        elif state.status == AlertStatus.FIRING:
            state.status, state.pending_since, state.resolved_at = AlertStatus.OK, None, now
            outcome, kind = "resolved", NotificationKind.ALERT_RESOLVED
        elif state.status == AlertStatus.PENDING:
            state.status, state.pending_since = AlertStatus.OK, None
        state.save()
        if kind is not None:
            _queue(
                _alert_message(rule, state, slug, kind, now),
                [(c, list(c.recipients or [])) for c in rule.channels.all()],
            )
    return outcome


def _fmt(rule: AlertRule, value: float) -> str:
    return f"{value:g} %" if rule.metric in LOW_IS_BAD else f"{value:g} s"


def _alert_message(rule: AlertRule, state: AlertState, slug: str, kind: str, now: datetime) -> dict[str, Any]:
    what = {"rpo_seconds": "RPO", "rto_seconds": "RTO estimate", "availability_percent": "availability"}[rule.metric]
    words = {
        NotificationKind.ALERT_FIRING: "FIRING",
        NotificationKind.ALERT_REPEAT: "STILL FIRING",
        NotificationKind.ALERT_RESOLVED: "RESOLVED",
    }[kind]
    side = "below" if rule.metric in LOW_IS_BAD else "above"
    subject = f"[{rule.severity.upper()}] {words}: {what} of {slug} is {_fmt(rule, state.value)} ({rule.name})"
    if kind == NotificationKind.ALERT_RESOLVED:
        text = f"{what} of {slug} is back within {_fmt(rule, rule.threshold)}: {_fmt(rule, state.value)}."
    else:
        text = (
            f"{what} of {slug} is {_fmt(rule, state.value)}, {side} the threshold {_fmt(rule, rule.threshold)} "
            f"for more than {rule.window_seconds} s (since {state.pending_since.isoformat()})."
        )
    return {
        "kind": kind,
        "subject": subject[:300],
        "text": text,
        "rule": rule,
        "application_id": state.application_id,
        "plan": rule.plan,
        "payload": {
            "rule": {
                "id": rule.pk,
                "name": rule.name,
                "metric": rule.metric,
                "scope": rule.scope,
                "threshold": rule.threshold,
                "window_seconds": rule.window_seconds,
                "severity": rule.severity,
            },
            "application": slug,
            "plan": rule.plan.plan_id if rule.plan_id else None,
            "state": state.status,
            "value": state.value,
            "since": state.pending_since.isoformat() if state.pending_since else None,
            "fired_at": state.fired_at.isoformat() if state.fired_at else None,
            "resolved_at": state.resolved_at.isoformat() if state.resolved_at else None,
            "repeats": state.repeats,
            "at": now.isoformat(),
        },
    }


# --- execution events -------------------------------------------------------------------------------------

_STATUS_KINDS = {
    ES.COMPLETED: NotificationKind.EXECUTION_COMPLETED,
    ES.FAILED: NotificationKind.EXECUTION_FAILED,
    ES.ROLLBACK_FAILED: NotificationKind.EXECUTION_FAILED,
    ES.ROLLED_BACK: NotificationKind.EXECUTION_ROLLED_BACK,
    ES.PAUSED: NotificationKind.EXECUTION_PAUSED,
}


def _classify(event: ExecutionEvent, execution: FailoverExecution) -> tuple[str, dict[str, Any]] | None:
    """(notification kind, details) of an event people act on, else None."""
    data = event.data or {}
    if event.kind == ExecutionEvent.Kind.STATUS:
        status = data.get("status")
        if status == ES.AWAITING_APPROVAL:
            level = current_level(execution.approval_policy or [], [])
            return (NotificationKind.APPROVAL_WAITING, {"level": level}) if level else None
        if status == ES.RUNNING:
            earlier = ExecutionEvent.objects.filter(
                execution_id=execution.pk, kind=ExecutionEvent.Kind.STATUS, seq__lt=event.seq
            ).values_list("data", flat=True)
            if any((d or {}).get("status") == ES.RUNNING for d in earlier):
                return None  # a resume, not a start
            return NotificationKind.EXECUTION_STARTED, {}
        if status in _STATUS_KINDS:
            return _STATUS_KINDS[status], {"status": status}
        return None
    if event.kind == ExecutionEvent.Kind.APPROVAL:
        if data.get("decision") != "approve" or event.step_run_id or execution.status != ES.AWAITING_APPROVAL:
            return None
        decisions = list(ApprovalDecision.objects.filter(execution=execution, step_run__isnull=True))
        level = current_level(execution.approval_policy or [], decisions)
        return (NotificationKind.APPROVAL_WAITING, {"level": level}) if level else None
    if event.kind == ExecutionEvent.Kind.STEP_STATUS and data.get("status") == SS.WAITING and event.step_run_id:
        step = StepRun.objects.filter(pk=event.step_run_id).first()
        if step is None or step.status != SS.WAITING:
            return None
        if step.waiting_for == "approval":
            gate = step.approval or {}
            level = {"level": 1, "role": gate.get("role", "approver"), "approvers": int(gate.get("approvers", 1))}
            return NotificationKind.APPROVAL_WAITING, {"level": level, "step": step.step_key}
        if step.waiting_for == "confirmation":
            return NotificationKind.MANUAL_STEP_WAITING, {"step": step.step_key, "title": step.title}
    return None


def notify_execution_event(event: ExecutionEvent) -> Notification | None:
    """The engine's notify_event hook: queue the message of an event for the matching subscriptions
    (once per event). Dry runs notify nobody."""
    if event.kind not in (ExecutionEvent.Kind.STATUS, ExecutionEvent.Kind.APPROVAL, ExecutionEvent.Kind.STEP_STATUS):
        return None
    if event.kind == ExecutionEvent.Kind.STEP_STATUS and (event.data or {}).get("status") != SS.WAITING:
        return None
    if not Subscription.objects.filter(enabled=True).exists():
        return None
    execution = FailoverExecution.objects.select_related("plan", "triggered_by").filter(pk=event.execution_id).first()
    if execution is None or execution.dry_run:
        return None
    classified = _classify(event, execution)
    if classified is None:
        return None
    kind, details = classified
    return _notify_subscribers(
        execution, kind, details, dedupe_key=f"execution-event:{event.pk}", message=event.message
    )


def _subscriptions(plan_id: int | None, kind: str | None = None) -> list[Subscription]:
    rows = Subscription.objects.filter(enabled=True, channel__enabled=True).select_related("channel", "user")
    if plan_id is not None:
        rows = rows.filter(Q(plan__isnull=True) | Q(plan_id=plan_id))
    return [s for s in rows if kind is None or kind in (s.event_kinds or [])]


def _emails(users: Iterable[Any]) -> list[str]:
    return [u.email for u in users if u.email]


def _recipients(
    subscription: Subscription, kind: str, role: str | None, triggered_by_id: int | None
) -> tuple[bool, list[str], list[str]]:
    """(applies, e-mail addresses, usernames) of one subscription for one message. For an approval the
    role subscriptions of other roles and users who do not hold the role are left out, and so is the
    person who triggered the execution (who may not approve it)."""
    User = get_user_model()
    if subscription.role:
        if role is not None and subscription.role != role:
            return False, [], []
        users = list(
            User.objects.filter(role_holders(subscription.role), is_active=True)
            .distinct()
            .order_by(User.USERNAME_FIELD)
        )
        if role is not None:
            users = [u for u in users if u.pk != triggered_by_id]
        return True, _emails(users), [u.get_username() for u in users]
    if subscription.user_id:
        user = subscription.user
        if not user.is_active or (role is not None and (not holds_role(user, role) or user.pk == triggered_by_id)):
            return False, [], []
        return True, _emails([user]), [user.get_username()]
    if subscription.email:
        return True, [subscription.email], []
    return True, list(subscription.channel.recipients or []), []


def _notify_subscribers(
    execution: FailoverExecution, kind: str, details: dict[str, Any], *, dedupe_key: str, message: str = ""
) -> Notification | None:
    subscriptions = _subscriptions(execution.plan_id, kind)
    if execution.plan_id is None:
        subscriptions = [s for s in subscriptions if s.plan_id is None]
    role = (details.get("level") or {}).get("role") if kind == NotificationKind.APPROVAL_WAITING else None
    per_channel: dict[int, tuple[NotificationChannel, list[str], list[str]]] = {}
    for subscription in subscriptions:
        applies, emails, usernames = _recipients(subscription, kind, role, execution.triggered_by_id)
        if not applies:
            continue
        channel, addresses, names = per_channel.setdefault(subscription.channel_id, (subscription.channel, [], []))
        addresses.extend(a for a in emails if a not in addresses)
        names.extend(n for n in usernames if n not in names)
    if not per_channel:
        return None
    subject, text = _event_text(execution, kind, details, message)
    payload = {
        "execution": {
            "id": execution.pk,
            "type": execution.execution_type,
            "status": execution.status,
            "plan": execution.plan.plan_id if execution.plan_id else None,
            "triggered_by": execution.triggered_by.get_username() if execution.triggered_by_id else None,
            "console": f"/console/executions/{execution.pk}/",
        },
        "event": kind,
        "message": message,
        **{key: value for key, value in details.items() if key != "projection"},
        **({"projection": details["projection"]} if "projection" in details else {}),
    }
    targets = []
    for channel, addresses, names in per_channel.values():
        payload_names = names
        recipients = addresses if channel.kind == ChannelKind.EMAIL else payload_names
        targets.append((channel, recipients))
    return _queue(
        {
            "kind": kind,
            "subject": subject[:300],
            "text": text,
            "payload": payload,
            "dedupe_key": dedupe_key,
            "plan": execution.plan,
            "execution": execution,
        },
        targets,
    )


def _event_text(execution: FailoverExecution, kind: str, details: dict[str, Any], message: str) -> tuple[str, str]:
    plan = execution.plan.plan_id if execution.plan_id else "no plan"
    what = f"{execution.get_execution_type_display()} #{execution.pk} ({plan})"
    console = f"Console: /console/executions/{execution.pk}/"
    if kind == NotificationKind.APPROVAL_WAITING:
        level = details.get("level") or {}
        gate = f" step {details['step']}" if details.get("step") else f" level {level.get('level')}"
        subject = f"Approval needed: {what}{gate} waits for {level.get('approvers', 1)} {level.get('role')}"
        text = (
            f"{what} waits for your go/no-go:{gate} needs {level.get('approvers', 1)} approval(s) by role "
            f"{level.get('role')!r}. Reason: {execution.trigger_reason or '—'}.\n{console}"
        )
        return subject, text
    if kind == NotificationKind.MANUAL_STEP_WAITING:
        subject = f"Manual step waiting: {details.get('step')} of {what}"
        return subject, f"{message}\n{console}"
    if kind == NotificationKind.RTO_BREACH_FORECAST:
        forecast = details.get("projection") or {}
        subject = f"RTO breach forecast: {what}"
        text = (
            f"{what} is projected to take {forecast.get('projected_total_seconds', 0):.0f} s against an RTO of "
            f"{forecast.get('target_seconds', 0):.0f} s (state {forecast.get('state')}; critical path: "
            f"{', '.join(forecast.get('critical_path') or []) or '—'}).\n{console}"
        )
        return subject, text
    label = dict(NotificationKind.choices)[kind]
    return f"{label}: {what}", f"{message or label}\n{console}"


def check_rto_forecasts(now: datetime | None = None) -> int:
    """Tell the rto_breach_forecast subscribers, once per execution, when the console's projection of a
    running plan execution passes its plan's RTO (at risk or breached). Returns how many were queued."""
    now = now or timezone.now()
    if not _subscriptions(None, NotificationKind.RTO_BREACH_FORECAST):
        return 0
    queued = 0
    running = FailoverExecution.objects.filter(
        status__in=(ES.RUNNING, ES.PAUSED, ES.VALIDATING), dry_run=False, plan__isnull=False
    ).select_related("plan", "triggered_by")
    for execution in running:
        key = f"rto-forecast:{execution.pk}"
        if Notification.objects.filter(dedupe_key=key).exists():
            continue
        steps = list(StepRun.objects.filter(execution=execution))
        forecast = projection.project_execution(execution, steps, now)
        if forecast.state not in (projection.AT_RISK, projection.BREACHED):
            continue
        details = {
            "projection": {
                "state": forecast.state,
                "target_seconds": forecast.target_seconds,
                "elapsed_seconds": round(forecast.elapsed_seconds, 1),
                "projected_total_seconds": round(forecast.projected_total_seconds, 1),
                "projected_finish": forecast.projected_finish.isoformat(),
                "critical_path": forecast.critical_path,
            }
        }
        if _notify_subscribers(execution, NotificationKind.RTO_BREACH_FORECAST, details, dedupe_key=key):
            queued += 1
    return queued


# --- deliveries -------------------------------------------------------------------------------------------


def pending_due(now: datetime | None = None) -> list[int]:
    """Ids of the deliveries waiting for an attempt whose time has come (oldest first)."""
    now = now or timezone.now()
    return list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:500]
    )
