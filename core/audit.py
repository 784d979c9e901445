"""Recording and verifying the audit trail.

Services and the API call `record()` explicitly inside the same transaction as the
change, so an audited change and its entry commit or roll back together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from core.choices import AuditAction, AuthMethod
from core.context import current_request_id
from core.models import AuditChainHead, AuditEntry

GENESIS_HASH = "0" * 64
REDACTED = "***"
# Secrets on models we do not own (a model of ours declares `AUDIT_REDACT` instead).
REDACT_BY_MODEL: dict[str, tuple[str, ...]] = {"auth.user": ("password",)}


def snapshot(instance: models.Model) -> dict[str, Any]:
    """A JSON-safe dict of the instance's fields (m2m as id lists).

    Fields listed in the model's `AUDIT_REDACT` are replaced with `***` so secrets
    never reach the audit log.
    """
    data = serializers.serialize("python", [instance])[0]["fields"]
    redact = (*getattr(instance, "AUDIT_REDACT", ()), *REDACT_BY_MODEL.get(instance._meta.label_lower, ()))
    for name in redact:
        if name in data:
            data[name] = REDACTED
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _actor_fields(actor: Any) -> tuple[int | None, str]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None, ""
    return actor.pk, actor.get_username()


def _content(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": entry.actor_id,
        "actor_username": entry.actor_username,
        "auth_method": entry.auth_method,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "object_repr": entry.object_repr,
        "before": entry.before,
        "after": entry.after,
        "comment": entry.comment,
        "request_id": entry.request_id,
        "prev_hash": entry.prev_hash,
    }


def compute_hash(entry: AuditEntry) -> str:
    canonical = json.dumps(_content(entry), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    action: str | AuditAction,
    instance: models.Model | None = None,
    *,
    actor: Any = None,
    auth_method: str | AuthMethod = AuthMethod.SYSTEM,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    comment: str = "",
    object_type: str | None = None,
    object_id: str | None = None,
    object_repr: str | None = None,
) -> AuditEntry:
    """Append one entry to the chain. Call inside the transaction that makes the change."""
    actor_id, actor_username = _actor_fields(actor)
    if instance is not None:
        object_type = object_type or instance._meta.label_lower
        object_id = object_id or str(instance.pk)
        object_repr = object_repr or str(instance)[:200]
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        entry = AuditEntry(
            seq=head.seq + 1,
            at=timezone.now(),
            actor_id=actor_id,
            actor_username=actor_username,
            auth_method=str(auth_method),
            action=str(action),
            object_type=object_type or "",
            object_id=object_id or "",
            object_repr=(object_repr or "")[:200],
            before=_json_safe(before),
            after=_json_safe(after),
            comment=comment,
            request_id=current_request_id(),
            prev_hash=head.hash,
        )
        entry.hash = compute_hash(entry)
        entry.save()
        AuditChainHead.objects.filter(pk=1).update(seq=entry.seq, hash=entry.hash)
    return entry


def _json_safe(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def auth_method_of(request: Any) -> AuthMethod:
    """Which credential a DRF request used: token or browser session."""
    from rest_framework.authtoken.models import Token

    return AuthMethod.TOKEN if isinstance(getattr(request, "auth", None), Token) else AuthMethod.SESSION


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


def verify_chain(batch_size: int = 2000) -> ChainBreak | None:
    """Walk the chain in order; return the first broken link, or None if intact."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    last_seq = 0
    queryset = AuditEntry.objects.order_by("seq")
    for entry in queryset.iterator(chunk_size=batch_size):
        if entry.seq != expected_seq:
            return ChainBreak(expected_seq, f"entry #{expected_seq} is missing (next present is #{entry.seq})")
        if entry.prev_hash != expected_prev:
            return ChainBreak(entry.seq, f"entry #{entry.seq} does not link to entry #{entry.seq - 1}")
        if compute_hash(entry) != entry.hash:
            return ChainBreak(entry.seq, f"entry #{entry.seq} was modified: its content no longer matches its hash")
        expected_prev = entry.hash
        expected_seq += 1
        last_seq = entry.seq
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and (head.seq != last_seq or head.hash != expected_prev):
        return ChainBreak(
            last_seq + 1, f"entries #{last_seq + 1}..#{head.seq} are missing (the chain head records #{head.seq})"
        )
    return None
