"""Signed audit checkpoints outside the database find what the hash chain alone cannot: a truncated chain
whose head row was rewritten, and a chain rewritten from some entry on."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from core import audit, checkpoints, signing
from core.choices import AuditAction
from core.models import AuditChainHead, AuditEntry
from core.tasks import ensure_checkpoint_schedule, sign_audit_checkpoint
from plans.tests.factories import make_plan

pytestmark = pytest.mark.django_db


def _sql(statement: str, params: list) -> None:
    """Behind the application's back, as someone with database access would."""
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _entries(n: int) -> None:
    for i in range(n):
        plan = make_plan(f"plan-{AuditEntry.objects.count()}-{i}")
        audit.record(AuditAction.CREATE, plan, after=audit.snapshot(plan))


def _truncate_and_rewrite_head(keep: int) -> None:
    """What an attacker with database access does: delete the last entries, point the head at the new last."""
    last = AuditEntry.objects.get(seq=keep)
    _sql("DELETE FROM core_auditentry WHERE seq > %s", [keep])
    AuditChainHead.objects.filter(pk=1).update(seq=keep, hash=last.hash)


def test_a_signed_checkpoint_holds_the_head_and_verifies(settings) -> None:
    _entries(3)
    made = checkpoints.sign_head(reason="test")
    assert (made.seq, made.hash) == checkpoints.head()
    assert made.cert_sha256 == signing.identity().fingerprint
    line = json.loads(settings.CHECKPOINT_FILE.read_text())
    assert line["seq"] == made.seq and line["signature"]
    assert checkpoints.verify_against_chain() == []
    key_file = signing.identity().key_file
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_truncation_with_a_rewritten_head_is_found_only_by_the_checkpoints(capsys) -> None:
    _entries(4)
    checkpoints.sign_head()
    _truncate_and_rewrite_head(keep=2)
    assert audit.verify_chain() is None  # the chain alone looks intact

    problems = checkpoints.verify_against_chain()
    assert [p.seq for p in problems] == [AuditChainHead.objects.get().seq + 2]
    assert "the chain was truncated" in problems[0].reason

    call_command("audit", "verify")  # without checkpoints: passes
    with pytest.raises(CommandError, match="does NOT match its signed checkpoints") as raised:
        call_command("audit", "verify", "--checkpoints")
    assert "the chain was truncated" in str(raised.value)


def test_a_rewritten_chain_is_found() -> None:
    _entries(3)
    checkpoints.sign_head()
    # rewrite the last entry and re-hash it, so the chain itself verifies again
    last = AuditEntry.objects.order_by("-seq").first()
    last.object_repr = "something else"
    new_hash = audit.compute_hash(last)
    _sql("UPDATE core_auditentry SET object_repr = %s, hash = %s WHERE id = %s", ["something else", new_hash, last.pk])
    AuditChainHead.objects.filter(pk=1).update(hash=new_hash)
    assert audit.verify_chain() is None
    [problem] = checkpoints.verify_against_chain()
    assert "the chain was rewritten" in problem.reason


def test_an_edited_checkpoint_file_is_found(settings) -> None:
    _entries(2)
    checkpoints.sign_head()
    data = json.loads(settings.CHECKPOINT_FILE.read_text())
    data["seq"] -= 1
    data["hash"] = AuditEntry.objects.get(seq=data["seq"]).hash
    settings.CHECKPOINT_FILE.write_text(json.dumps(data) + "\n")
    [problem] = checkpoints.verify_against_chain()
    assert "was altered: its signature does not match" in problem.reason


def test_verify_command_reports_agreement_and_a_missing_file(capsys) -> None:
    _entries(1)
    with pytest.raises(CommandError, match="no signed checkpoint"):
        call_command("audit", "verify", "--checkpoints")
    call_command("audit", "checkpoint")
    call_command("audit", "verify", "--checkpoints")
    assert "checkpoints agree: 1 signed checkpoints" in capsys.readouterr().out


def test_the_periodic_checkpoint_task_and_schedule() -> None:
    _entries(1)
    assert ensure_checkpoint_schedule() is True
    assert ensure_checkpoint_schedule() is False
    assert sign_audit_checkpoint().startswith("audit checkpoint #")
    assert checkpoints.default_store().latest().reason == "scheduled"
