"""Signed audit checkpoints kept outside the database.

`verify_chain()` trusts the chain-head row: someone who deletes the last entries and rewrites the head (or
rewrites entries and re-hashes everything after them) leaves a chain that verifies. A checkpoint is the head
(seq, hash, time) signed with the organisation's key (core/signing.py) and appended to a file outside the
database (DRPLAN_CHECKPOINT_FILE, default var/audit-checkpoints.jsonl, one JSON object per line). Checking the
chain against every checkpoint finds a truncated chain (a checkpoint names an entry that no longer exists) and
a rewritten one (the entry's hash differs from the signed one).

Checkpoints are written periodically (the django-q2 schedule `audit-checkpoint`, DRPLAN_CHECKPOINT_INTERVAL_SECONDS)
and with every compliance report; `manage.py audit checkpoint` writes one, `manage.py audit verify --checkpoints`
checks them.

A file on the same machine is lost with it, and whoever can rewrite the database can usually rewrite the file. With
DRPLAN_AUDIT_CHECKPOINT_WEBHOOK_URL set, every checkpoint is also POSTed (its JSON, exactly as in the file) to a
receiver elsewhere (`WebhookSink`): retried on a refused connection, a timeout, 429 or 5xx, a failure logged and
never raised, and delivered from a background thread where a person is waiting (a report being generated).
`manage.py audit verify --checkpoint-url URL` (or `--checkpoint-file` on a file the receiver exported) checks the
chain against the checkpoints kept there: `read_source()` takes JSON Lines, a JSON array or {"checkpoints": [...]}.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from django.conf import settings
from django.utils import timezone

from core import signing
from core.models import AuditChainHead, AuditEntry

log = logging.getLogger(__name__)
FIELDS = ("seq", "hash", "at", "cert_sha256", "signature", "reason")


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str  # ISO 8601, UTC
    cert_sha256: str  # fingerprint of the certificate that signed it
    signature: str  # base64 of the signature over signed_bytes()
    reason: str = ""

    def signed_bytes(self) -> bytes:
        body = {"seq": self.seq, "hash": self.hash, "at": self.at, "reason": self.reason}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Problem:
    seq: int
    reason: str


class CheckpointStore:
    """An append-only file of checkpoints, one JSON object per line."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def append(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(checkpoint.as_dict(), sort_keys=True) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as fh:  # one write() of one line: concurrent appends do not interleave
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> tuple[list[Checkpoint], list[Problem]]:
        """The checkpoints in the file, and a problem for each line that is not one."""
        if not self.path.exists():
            return [], []
        return parse_checkpoints(self.path.read_text(), self.path.name)

    @property
    def name(self) -> str:
        return str(self.path)

    def latest(self) -> Checkpoint | None:
        found, _ = self.read()
        return max(found, key=lambda c: c.seq, default=None)


def _checkpoint(data: Any) -> Checkpoint:
    """A checkpoint from its JSON object; a receiver's own keys (when it received it …) are ignored."""
    if not isinstance(data, dict) or any(key not in data for key in FIELDS[:5]):
        raise TypeError("not a checkpoint object")
    checkpoint = Checkpoint(**{key: data[key] for key in FIELDS if key in data})
    if not isinstance(checkpoint.seq, int) or isinstance(checkpoint.seq, bool):
        raise TypeError("seq is not an integer")
    if not all(isinstance(getattr(checkpoint, key), str) for key in FIELDS[1:]):
        raise TypeError("a field is not a string")
    return checkpoint


def parse_checkpoints(text: str, source: str) -> tuple[list[Checkpoint], list[Problem]]:
    """Checkpoints from JSON Lines (the file sink's format), a JSON array, or an object {"checkpoints": [...]}
    (what a receiver may serve), and a problem for each item that is not one."""
    items: list[tuple[str, Any]] = []
    try:
        document = json.loads(text) if text.strip() else []
    except ValueError:  # several lines of JSON: JSON Lines
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    items.append((f"{source} line {number}", json.loads(line)))
                except ValueError:
                    items.append((f"{source} line {number}", None))
    else:
        if isinstance(document, dict) and "checkpoints" in document:
            document = document["checkpoints"]
        if not isinstance(document, list):
            document = [document]
        items = [(f"{source} item {number}", item) for number, item in enumerate(document, start=1)]
    found, problems = [], []
    for where, item in items:
        try:
            found.append(_checkpoint(item))
        except TypeError:
            problems.append(Problem(0, f"{where} is not a checkpoint"))
    return found, problems


class SourceUnavailable(Exception):
    """The checkpoints kept elsewhere could not be read (refused, timed out, not JSON …)."""


class UrlSource:
    """Checkpoints served by a URL (the receiver's list), read once."""

    def __init__(self, url: str, token: str = "", timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise SourceUnavailable(f"{url!r} is not an http:// or https:// URL")
        self.url, self.token, self.timeout = url, token, timeout
        self.name = url
        self._read: tuple[list[Checkpoint], list[Problem]] | None = None

    def read(self) -> tuple[list[Checkpoint], list[Problem]]:
        if self._read is None:
            headers = {"Accept": "application/json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            request = urllib.request.Request(self.url, headers=headers)  # noqa: S310 - http(s) only, see __init__
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    text = response.read().decode()
                self._read = parse_checkpoints(text, self.url)
            except urllib.error.HTTPError as error:
                raise SourceUnavailable(f"{self.url} answered {error.code}") from error
            except (OSError, ValueError) as error:  # refused, timed out, not UTF-8 or not JSON
                raise SourceUnavailable(f"{self.url} could not be read: {error}") from error
        return self._read

    def latest(self) -> Checkpoint | None:
        found, _ = self.read()
        return max(found, key=lambda c: c.seq, default=None)


def default_store() -> CheckpointStore:
    return CheckpointStore(settings.CHECKPOINT_FILE)


class WebhookSink:
    """POSTs each checkpoint's JSON to a receiver outside the machine.

    Retried (DRPLAN_AUDIT_CHECKPOINT_WEBHOOK_ATTEMPTS, default 3, with a doubling pause from
    DRPLAN_AUDIT_CHECKPOINT_WEBHOOK_BACKOFF_SECONDS) on what may pass: a refused connection, a timeout, 408, 429,
    5xx. Any other answer is final. A failed delivery is logged and never raised: the checkpoint is in the file
    anyway, and the next one delivered covers every entry before it."""

    def __init__(
        self, url: str, *, token: str = "", timeout: float = 5.0, attempts: int = 3, backoff: float = 1.0
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("DRPLAN_AUDIT_CHECKPOINT_WEBHOOK_URL must be an http:// or https:// URL")
        self.url, self.token, self.timeout = url, token, timeout
        self.attempts, self.backoff = max(1, attempts), backoff

    def deliver(self, checkpoint: Checkpoint) -> bool:
        """Whether the receiver took it (2xx); never raises."""
        body = json.dumps(checkpoint.as_dict(), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "X-DRPlan-Event": "audit-checkpoint"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        reason = ""
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                    response.read()
                log.info("audit checkpoint #%s delivered to %s", checkpoint.seq, self.url)
                return True
            except urllib.error.HTTPError as error:
                reason = f"answered {error.code}"
                if error.code not in {408, 429} and error.code < 500:
                    break
            except (OSError, ValueError) as error:  # refused, reset, timed out
                reason = f"did not answer ({type(error).__name__}: {error})"
            if attempt < self.attempts:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        log.error(
            "audit checkpoint #%s NOT delivered to %s: %s (attempt %s of %s); it is kept in %s",
            checkpoint.seq,
            self.url,
            reason,
            attempt,
            self.attempts,
            settings.CHECKPOINT_FILE,
        )
        return False

    def deliver_in_background(self, checkpoint: Checkpoint) -> threading.Thread:
        thread = threading.Thread(
            target=self.deliver, args=(checkpoint,), name=f"checkpoint-webhook-{checkpoint.seq}", daemon=True
        )
        thread.start()
        return thread


def webhook_sink() -> WebhookSink | None:
    """The configured webhook (DRPLAN_AUDIT_CHECKPOINT_WEBHOOK_URL), or None."""
    if not settings.CHECKPOINT_WEBHOOK_URL:
        return None
    return WebhookSink(
        settings.CHECKPOINT_WEBHOOK_URL,
        token=settings.CHECKPOINT_WEBHOOK_TOKEN,
        timeout=settings.CHECKPOINT_WEBHOOK_TIMEOUT_SECONDS,
        attempts=settings.CHECKPOINT_WEBHOOK_ATTEMPTS,
        backoff=settings.CHECKPOINT_WEBHOOK_BACKOFF_SECONDS,
    )


def head() -> tuple[int, str]:
    row = AuditChainHead.objects.filter(pk=1).first()
    return (row.seq, row.hash) if row else (0, "0" * 64)


def sign_head(store: CheckpointStore | None = None, *, reason: str = "", wait: bool = False) -> Checkpoint:
    """Sign the current chain head, append it to the store and send it to the webhook, if one is configured: from
    a background thread, or before returning with `wait` (a command or a worker's task, whose process may end)."""
    seq, head_hash = head()
    identity = signing.identity()
    unsigned = Checkpoint(seq, head_hash, timezone.now().isoformat(), identity.fingerprint, "", reason)
    signature = base64.b64encode(signing.sign_bytes(unsigned.signed_bytes())).decode()
    checkpoint = Checkpoint(seq, head_hash, unsigned.at, identity.fingerprint, signature, reason)
    (store or default_store()).append(checkpoint)
    sink = webhook_sink()
    if sink is not None:
        if wait:
            sink.deliver(checkpoint)
        else:
            sink.deliver_in_background(checkpoint)
    return checkpoint


def _certificates() -> dict[str, x509.Certificate]:
    certs = {signing.fingerprint(c): c for c in signing.trust_roots()}
    own = signing.identity().cert
    certs.setdefault(signing.fingerprint(own), own)
    return certs


def verify_signature(checkpoint: Checkpoint, certs: dict[str, x509.Certificate] | None = None) -> str | None:
    """None if the checkpoint's signature is valid by a known certificate, else why not."""
    cert = (certs if certs is not None else _certificates()).get(checkpoint.cert_sha256)
    if cert is None:
        return f"checkpoint #{checkpoint.seq} is signed by an unknown certificate ({checkpoint.cert_sha256[:16]}…)"
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
    except ValueError:
        return f"checkpoint #{checkpoint.seq} has an unreadable signature"
    if not signing.verify_bytes(cert, checkpoint.signed_bytes(), signature):
        return f"checkpoint #{checkpoint.seq} ({checkpoint.at}) was altered: its signature does not match"
    return None


def verify_against_chain(store: CheckpointStore | UrlSource | None = None) -> list[Problem]:
    """Every signed checkpoint must name an entry the chain still holds, with the same hash. The store may be the
    file, a file the receiver exported, or a URL (UrlSource: SourceUnavailable when it cannot be read)."""
    store = store or default_store()
    checkpoints, problems = store.read()
    if not checkpoints:
        return problems
    certs = _certificates()
    seq_now, _ = head()
    last_entry = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    hashes = dict(AuditEntry.objects.filter(seq__in={c.seq for c in checkpoints if c.seq}).values_list("seq", "hash"))
    for checkpoint in sorted(checkpoints, key=lambda c: (c.seq, c.at)):
        bad_signature = verify_signature(checkpoint, certs)
        if bad_signature:
            problems.append(Problem(checkpoint.seq, bad_signature))
            continue
        if checkpoint.seq == 0:
            continue
        if checkpoint.seq > last_entry or checkpoint.seq > seq_now:
            problems.append(
                Problem(
                    checkpoint.seq,
                    f"the chain was truncated: checkpoint of {checkpoint.at} was signed at entry #{checkpoint.seq}, "
                    f"but the chain now ends at #{min(last_entry, seq_now)}",
                )
            )
        elif checkpoint.seq not in hashes:
            problems.append(Problem(checkpoint.seq, f"entry #{checkpoint.seq} named by a checkpoint is missing"))
        elif hashes[checkpoint.seq] != checkpoint.hash:
            problems.append(
                Problem(
                    checkpoint.seq,
                    f"the chain was rewritten: entry #{checkpoint.seq} has hash {hashes[checkpoint.seq][:16]}…, "
                    f"the checkpoint of {checkpoint.at} signed {checkpoint.hash[:16]}…",
                )
            )
    return problems
