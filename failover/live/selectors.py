"""Reads of the live stream, each one query (called through database_sync_to_async)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q
from django.http import HttpRequest

from failover.engine.events import event_payload
from failover.engine.records import OUTCOME_MARKER
from failover.engine.states import TERMINAL_EXECUTION
from failover.models import ExecutionEvent, FailoverExecution

VIEW_PERMISSION = "failover.view_failoverexecution"


def can_follow(user: AbstractBaseUser | AnonymousUser) -> bool:
    """May this user watch executions? The same permission the API needs to read them."""
    return bool(user.is_authenticated and user.is_active and user.has_perm(VIEW_PERMISSION))


def viewer_access(session_key: str | None, user_id: int) -> str | None:
    """Re-check of a viewer already following: None while they still may; "session_ended" once their session
    is gone (signed out, deleted, expired, password changed) or their account deactivated;
    "permission_denied" once they lost the view permission. Read fresh from the database, the way Django
    authenticates a request from its session cookie (a few queries)."""
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(request)
    if not user.is_authenticated or user.pk != user_id:
        return "session_ended"
    return None if can_follow(user) else "permission_denied"


def last_seq(execution_id: int) -> int | None:
    """The last sequence number issued for the execution; None if it does not exist."""
    return FailoverExecution.objects.filter(pk=execution_id).values_list("event_seq", flat=True).first()


def events_after(execution_id: int, after: int, limit: int = 500) -> list[dict[str, Any]]:
    """Payloads of the execution's events with seq > after, in order, at most `limit`."""
    events = ExecutionEvent.objects.filter(execution_id=execution_id, seq__gt=after).order_by("seq")[:limit]
    return [event_payload(event) for event in events]


def new_events(marks: dict[int, int], limit: int = 500) -> list[dict[str, Any]]:
    """One query for several executions: the events after each execution's mark, by execution then seq.

    By seq per execution and not by primary key: on PostgreSQL ids are not visible in id order across
    executions (a transaction can commit a lower id later), whereas one execution's events become visible
    strictly in seq order (emit() holds the execution row's lock until commit)."""
    if not marks:
        return []
    condition = Q()
    for execution_id, seq in marks.items():
        condition |= Q(execution_id=execution_id, seq__gt=seq)
    events = ExecutionEvent.objects.filter(condition).order_by("execution_id", "seq")[:limit]
    return [event_payload(event) for event in events]


@dataclass(frozen=True)
class StreamState:
    status: str
    last_seq: int
    terminal: bool
    outcome_pending: bool  # the engine finished the run and will still append the "outcome recorded" event


def stream_state(execution_id: int) -> StreamState:
    row = FailoverExecution.objects.filter(pk=execution_id).values("status", "event_seq", "plan_id", "dry_run").get()
    terminal = row["status"] in TERMINAL_EXECUTION
    outcome_pending = False
    if terminal and row["plan_id"] is not None and not row["dry_run"]:
        # The runner writes its SUMMARY with the terminal status, then (separately) record_outcome adds its own.
        summaries = set(
            ExecutionEvent.objects.filter(execution_id=execution_id, kind=ExecutionEvent.Kind.SUMMARY).values_list(
                "message", flat=True
            )
        )
        outcome_pending = bool(summaries) and OUTCOME_MARKER not in summaries
    return StreamState(row["status"], row["event_seq"], terminal, outcome_pending)
