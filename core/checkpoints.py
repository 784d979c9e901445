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
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from django.conf import settings
from django.utils import timezone

from core import signing
from core.models import AuditChainHead, AuditEntry


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
        found, problems = [], []
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                found.append(Checkpoint(**data))
            except (ValueError, TypeError):
                problems.append(Problem(0, f"{self.path.name} line {number} is not a checkpoint"))
        return found, problems

    def latest(self) -> Checkpoint | None:
        found, _ = self.read()
        return max(found, key=lambda c: c.seq, default=None)


def default_store() -> CheckpointStore:
    return CheckpointStore(settings.CHECKPOINT_FILE)


def head() -> tuple[int, str]:
    row = AuditChainHead.objects.filter(pk=1).first()
    return (row.seq, row.hash) if row else (0, "0" * 64)


def sign_head(store: CheckpointStore | None = None, *, reason: str = "") -> Checkpoint:
    """Sign the current chain head and append it to the store."""
    seq, head_hash = head()
    identity = signing.identity()
    unsigned = Checkpoint(seq, head_hash, timezone.now().isoformat(), identity.fingerprint, "", reason)
    signature = base64.b64encode(signing.sign_bytes(unsigned.signed_bytes())).decode()
    checkpoint = Checkpoint(seq, head_hash, unsigned.at, identity.fingerprint, signature, reason)
    (store or default_store()).append(checkpoint)
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


def verify_against_chain(store: CheckpointStore | None = None) -> list[Problem]:
    """Every signed checkpoint must name an entry the chain still holds, with the same hash."""
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
