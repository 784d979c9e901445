"""Helpers for the live-stream tests: websocket clients of the real ASGI application, in process."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from drplan.asgi import application
from failover.engine.events import emit
from failover.engine.states import transition_execution
from failover.models import ExecutionEvent

ORIGIN = b"http://127.0.0.1"


def session_cookie(user: User) -> str:
    """A real signed-in session (database backend), as a browser would hold it."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def open_stream(
    execution_id: int, *, cookie: str | None = None, after: int | None = None, origin: bytes | None = ORIGIN
) -> tuple[WebsocketCommunicator, bool]:
    path = f"/ws/executions/{execution_id}/" + ("" if after is None else f"?after={after}")
    headers = []
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    return communicator, connected


async def read_until_summary(communicator: WebsocketCommunicator, timeout: float = 30) -> tuple[list[int], dict]:
    """The seqs of the events received until the summary message, and that message."""
    seqs: list[int] = []
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        if message["type"] == "summary":
            return seqs, message
        assert message["type"] == "event", message
        seqs.append(message["event"]["seq"])


async def read_events(communicator: WebsocketCommunicator, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    events = []
    for _ in range(count):
        message = await communicator.receive_json_from(timeout=timeout)
        assert message["type"] == "event", message
        events.append(message["event"])
    return events


def finish(execution_id: int, status: str = "completed") -> None:
    """What the runner does at the end: the terminal status and the SUMMARY event in one transaction."""
    with transaction.atomic():
        assert transition_execution(execution_id, status)
        emit(execution_id, ExecutionEvent.Kind.SUMMARY, f"execution {status}", {"status": status})


aemit = database_sync_to_async(emit)
afinish = database_sync_to_async(finish)
