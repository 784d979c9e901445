"""Real receivers for the notification tests: an HTTP server on 127.0.0.1 that checks each request's
HMAC-SHA256 signature the way a receiver should (README, "Alerts and notifications"), and a real SMTP
server (aiosmtpd) on 127.0.0.1; plus running the delivery tasks django-q2 holds in its queue."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django_q.models import OrmQ

from analytics.notifications import delivery

SECRET = "receiver-shared-secret-9f2c7e"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    at: float  # time.monotonic() when it arrived

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """Answers POSTs with the next status of `statuses` (then 200); `hang` blocks a request until set."""

    secret: str = SECRET
    statuses: list[int] = field(default_factory=list)
    hang: threading.Event | None = None
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        signature = headers.get("X-DRPlan-Signature", "")
        fresh = abs(time.time() - int(headers.get("X-DRPlan-Timestamp", "0"))) <= 300
        signed_time = json.loads(body).get("timestamp") == int(headers.get("X-DRPlan-Timestamp", "0"))
        return hmac.compare_digest(signature, expected) and fresh and signed_time

    def kinds(self) -> list[str]:
        return [r.json["kind"] for r in self.received]


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = dict(self.headers.items())
            if receiver.hang is not None:
                receiver.hang.wait(30)
            receiver.received.append(Received(headers, body, receiver.verify(headers, body), time.monotonic()))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    state = WebhookReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/drplan"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        if state.hang is not None:
            state.hang.set()
        server.shutdown()
        server.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[_Inbox]:
    """A real SMTP server on 127.0.0.1, and Django's SMTP backend pointed at it."""
    inbox = _Inbox()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield inbox
    finally:
        controller.stop()


def queued_deliveries() -> list[int]:
    """Ids of the delivery tasks waiting in django-q2's queue (ORM broker)."""
    tasks = [q.task for q in OrmQ.objects.order_by("id")]
    return [task["args"][0] for task in tasks if task["func"] == "analytics.notifications.tasks.deliver"]


def run_queued_deliveries() -> list[str]:
    """Do what a worker would: take each queued delivery task off the queue and run it."""
    done = []
    for q in OrmQ.objects.order_by("id"):
        if q.task["func"] == "analytics.notifications.tasks.deliver":
            q.delete()
            done.append(delivery.deliver(q.task["args"][0]))
    return done
