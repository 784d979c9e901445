"""Sending one message over one channel: a signed webhook POST or an e-mail. Called by the delivery task
only (never inline where something waits for it); short timeouts; what happened is returned, never raised.

Webhook: POST of a JSON body with
    X-DRPlan-Signature: sha256=<hex HMAC-SHA256 of the raw body with the channel's secret>
    X-DRPlan-Timestamp: <unix seconds, also the body's "timestamp", so it is signed>
    X-DRPlan-Delivery: <delivery id, the body's "id": the same on every retry, for de-duplication>
    X-DRPlan-Event: <the notification's kind>
Only 2xx counts as delivered; redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from analytics.notifications.choices import ChannelKind
from analytics.notifications.models import Delivery
from core.secrets import Redactor, get_secret_value

SIGNATURE_HEADER = "X-DRPlan-Signature"
TIMESTAMP_HEADER = "X-DRPlan-Timestamp"
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True)
class Outcome:
    success: bool
    status_code: int | None = None
    error: str = ""
    duration_ms: float = 0.0


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(delivery: Delivery, attempt: int, timestamp: int) -> bytes:
    notification = delivery.notification
    document = {
        "id": delivery.pk,
        "attempt": attempt,
        "timestamp": timestamp,
        "kind": notification.kind,
        "subject": notification.subject,
        "text": notification.text,
        "recipients": delivery.recipients,
        "data": notification.payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def send(delivery: Delivery, attempt: int) -> Outcome:
    """One attempt of `delivery` (its channel and notification loaded)."""
    started = time.monotonic()
    try:
        outcome = _post(delivery, attempt) if delivery.channel.kind == ChannelKind.WEBHOOK else _mail(delivery)
    except Exception as exc:  # a bug or an unexpected library error must still be recorded, not lost
        outcome = Outcome(False, None, f"{type(exc).__name__}: {exc}")
    elapsed = (time.monotonic() - started) * 1000
    return Outcome(outcome.success, outcome.status_code, outcome.error[:MAX_ERROR_LENGTH], round(elapsed, 1))


def forbidden_address(address: str) -> str | None:
    """Why a webhook may not be sent to this IP address, or None. Link-local addresses hold the cloud
    instance-metadata services (169.254.169.254: credentials of the machine DRPlan runs on); unspecified,
    multicast and reserved addresses are never a receiver. Loopback and private addresses are allowed:
    receivers inside the organisation's network are the usual case."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for test, why in (
        (ip.is_link_local, "link-local (cloud instance metadata)"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
    ):
        if test:
            return f"{address} is a {why} address"
    return None


def _checked_addresses(host: str, port: int) -> tuple[list[str], str | None]:
    """The addresses `host` resolves to, each allowed, and None; or why no POST goes there. ([], None): the name
    does not resolve (the connection attempt reports it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return [], None
    addresses = []
    for info in infos:
        address = str(info[4][0])
        if why := forbidden_address(address):
            return [], f"refused: {why}" if address == host.strip("[]") else f"refused: {host} resolves to {why}"
        addresses.append(address)
    return addresses, None


def _pin(connection: http.client.HTTPConnection, addresses: list[str]) -> None:
    """Make `connection` connect to one of the `addresses` checked, never to what its host resolves to later: a
    name that answers an allowed address to the check and the metadata service's to the connection (DNS
    rebinding) reaches nothing it should not. The Host header, TLS's server name and its certificate check still
    use the host name."""

    def connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        error: OSError | None = None
        for ip in addresses:
            try:
                return socket.create_connection((ip, address[1]), *args, **kwargs)
            except OSError as exc:
                error = exc
        raise error or OSError(f"no address for {address[0]}")

    connection._create_connection = connect  # type: ignore[attr-defined]  (http.client's hook for this)


def _post(delivery: Delivery, attempt: int) -> Outcome:
    channel = delivery.channel
    secret = get_secret_value(channel.secret_name)
    redactor = Redactor([secret])
    timestamp = int(time.time())
    body = webhook_body(delivery, attempt, timestamp)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "DRPlan-Notifications/1",
        SIGNATURE_HEADER: sign(secret, body),
        TIMESTAMP_HEADER: str(timestamp),
        "X-DRPlan-Delivery": str(delivery.pk),
        "X-DRPlan-Event": delivery.notification.kind,
    }
    parts = urlsplit(channel.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host, port = parts.hostname or "", parts.port
    addresses, refusal = _checked_addresses(host, port or (443 if parts.scheme == "https" else 80))
    if refusal:
        return Outcome(False, None, refusal)
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=channel.timeout_seconds, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=channel.timeout_seconds)
    if addresses:
        _pin(connection, addresses)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)
        status = response.status
    except TimeoutError:
        return Outcome(False, None, f"timed out after {channel.timeout_seconds} s")
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(False, None, redactor.redact(f"{type(exc).__name__}: {exc}"))
    finally:
        connection.close()
    if 200 <= status < 300:
        return Outcome(True, status)
    return Outcome(False, status, f"HTTP {status}")


def _mail(delivery: Delivery) -> Outcome:
    import smtplib

    if not delivery.recipients:
        return Outcome(False, None, "no recipients")
    notification = delivery.notification
    connection: Any = get_connection(timeout=delivery.channel.timeout_seconds)
    message = EmailMessage(
        subject=notification.subject,
        body=notification.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(delivery.recipients),
        connection=connection,
        headers={"X-DRPlan-Delivery": str(delivery.pk), "X-DRPlan-Event": notification.kind},
    )
    try:
        message.send()
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return Outcome(False, exc.smtp_code, f"SMTP {exc.smtp_code}: {text}")
    except smtplib.SMTPRecipientsRefused as exc:
        return Outcome(False, None, f"SMTP recipients refused: {', '.join(sorted(exc.recipients))}")
    except TimeoutError:
        return Outcome(False, None, f"SMTP timed out after {delivery.channel.timeout_seconds} s")
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome(False, None, f"SMTP error: {type(exc).__name__}: {exc}")
    return Outcome(True, 250)
