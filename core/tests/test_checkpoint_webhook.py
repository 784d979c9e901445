"""Signed audit checkpoints sent to a webhook outside the machine, and the chain verified against the
checkpoints the receiver kept: a real HTTP receiver on 127.0.0.1 that stores what it is sent and serves the list."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from core import audit, checkpoints
from core.choices import AuditAction
from core.models import AuditChainHead, AuditEntry
from core.tasks import sign_audit_checkpoint
from plans.tests.factories import make_plan

pytestmark = pytest.mark.django_db
TOKEN = "receiver-token-1"


class Receiver:
    """Stores the checkpoints POSTed with the right bearer token; GET serves them as {"checkpoints": [...]}.
    `fail_next` answers that many POSTs with `fail_status`; `gate`, when set, holds each POST until it opens."""

    def __init__(self) -> None:
        self.stored: list[dict] = []
        self.attempts = 0
        self.headers: list = []
        self.fail_next = 0
        self.fail_status = 503
        self.gate: threading.Event | None = None
        self.received = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                receiver.headers.append(self.headers)
                if receiver.gate is not None:
                    receiver.gate.wait(30)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401, {"error": "who are you"})
                if receiver.fail_next:
                    receiver.fail_next -= 1
                    return self._answer(receiver.fail_status, {"error": "not now"})
                receiver.stored.append({**json.loads(body), "received_by": "test receiver"})
                receiver.received.set()
                return self._answer(201, {"stored": len(receiver.stored)})

            def do_GET(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401, {"error": "who are you"})
                return self._answer(200, {"checkpoints": receiver.stored})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/checkpoints"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    served = Receiver()
    settings.CHECKPOINT_WEBHOOK_URL = served.url
    settings.CHECKPOINT_WEBHOOK_TOKEN = TOKEN
    settings.CHECKPOINT_WEBHOOK_TIMEOUT_SECONDS = 10
    settings.CHECKPOINT_WEBHOOK_ATTEMPTS = 3
    settings.CHECKPOINT_WEBHOOK_BACKOFF_SECONDS = 0.01
    yield served
    served.close()


def _entries(n: int) -> None:
    for i in range(n):
        plan = make_plan(f"plan-{AuditEntry.objects.count()}-{i}")
        audit.record(AuditAction.CREATE, plan, after=audit.snapshot(plan))


def _truncate_and_rewrite_head(keep: int) -> None:
    """What an attacker with access to the machine does: delete the last entries, point the head at the new
    last one, and delete the local checkpoint file too."""
    last = AuditEntry.objects.get(seq=keep)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM core_auditentry WHERE seq > %s", [keep])
    AuditChainHead.objects.filter(pk=1).update(seq=keep, hash=last.hash)


def test_checkpoints_reach_the_receiver_and_a_truncated_chain_is_found_from_its_copy(
    receiver: Receiver, settings, tmp_path: Path
) -> None:
    _entries(3)
    call_command("audit", "checkpoint")  # waits for the delivery
    _entries(2)
    assert sign_audit_checkpoint().startswith("audit checkpoint #")  # the scheduled task waits too
    assert [c["seq"] for c in receiver.stored] == [3, 5]
    file_lines = [json.loads(line) for line in Path(settings.CHECKPOINT_FILE).read_text().splitlines()]
    assert [{k: v for k, v in c.items() if k != "received_by"} for c in receiver.stored] == file_lines
    assert receiver.headers[0].get("X-DRPlan-Event") == "audit-checkpoint"
    call_command("audit", "verify", "--checkpoint-url", receiver.url)

    _truncate_and_rewrite_head(keep=3)
    Path(settings.CHECKPOINT_FILE).unlink()
    assert audit.verify_chain() is None  # the chain alone looks intact, and the local file is gone
    with pytest.raises(CommandError, match="no signed checkpoint"):
        call_command("audit", "verify", "--checkpoints")

    with pytest.raises(CommandError, match="does NOT match its signed checkpoints") as raised:
        call_command("audit", "verify", "--checkpoint-url", receiver.url)
    assert "the chain was truncated: checkpoint of" in str(raised.value)
    assert "signed at entry #5, but the chain now ends at #3" in str(raised.value)

    exported = tmp_path / "exported.json"  # what the receiver's operator hands over: a JSON array
    exported.write_text(json.dumps(receiver.stored))
    with pytest.raises(CommandError, match="the chain was truncated"):
        call_command("audit", "verify", "--checkpoint-file", str(exported))


def test_a_rewritten_head_after_truncation_and_new_entries_is_found(receiver: Receiver) -> None:
    _entries(4)
    checkpoints.sign_head(wait=True)
    _truncate_and_rewrite_head(keep=2)
    _entries(2)  # the chain grows past the checkpoint again, with different entries
    assert audit.verify_chain() is None
    [problem] = checkpoints.verify_against_chain(checkpoints.UrlSource(receiver.url, token=TOKEN))
    assert problem.seq == 4
    assert "the chain was rewritten: entry #4 has hash" in problem.reason


def test_a_failing_receiver_is_retried_then_takes_it(receiver: Receiver) -> None:
    _entries(1)
    receiver.fail_next = 2
    made = checkpoints.sign_head(wait=True)
    assert receiver.attempts == 3
    assert [c["seq"] for c in receiver.stored] == [made.seq]


def test_a_refusal_is_not_retried_and_is_logged(receiver: Receiver, settings, caplog) -> None:
    _entries(1)
    settings.CHECKPOINT_WEBHOOK_TOKEN = "wrong"
    with caplog.at_level(logging.ERROR, logger="core.checkpoints"):
        made = checkpoints.sign_head(wait=True)
    assert receiver.attempts == 1 and receiver.stored == []
    assert f"audit checkpoint #{made.seq} NOT delivered to {receiver.url}: answered 401" in caplog.text
    assert checkpoints.default_store().latest() == made  # the file sink has it


def test_a_receiver_that_is_down_never_stops_the_checkpoint(settings, caplog) -> None:
    dead = Receiver()
    dead.close()  # nothing listens on its port any more
    settings.CHECKPOINT_WEBHOOK_URL = dead.url
    settings.CHECKPOINT_WEBHOOK_BACKOFF_SECONDS = 0.01
    _entries(1)
    with caplog.at_level(logging.ERROR, logger="core.checkpoints"):
        made = checkpoints.sign_head(wait=True)
    assert "NOT delivered" in caplog.text and "attempt 3 of 3" in caplog.text
    assert checkpoints.default_store().latest() == made
    with pytest.raises(CommandError, match="the checkpoints could not be read"):
        call_command("audit", "verify", "--checkpoint-url", dead.url)


def test_a_report_waits_for_nobody_the_delivery_runs_in_the_background(receiver: Receiver) -> None:
    _entries(1)
    receiver.gate = threading.Event()  # the receiver holds every request until the gate opens
    made = checkpoints.sign_head(reason="report")  # as compliance reports call it
    assert checkpoints.default_store().latest() == made  # returned, with the receiver still holding the request
    assert receiver.stored == []
    receiver.gate.set()
    assert receiver.received.wait(30)
    assert receiver.stored[0]["signature"] == made.signature


def test_sources_in_every_receiver_format(tmp_path: Path) -> None:
    _entries(1)
    made = checkpoints.sign_head()
    for text in (
        json.dumps(made.as_dict()) + "\n" + json.dumps(made.as_dict()) + "\n",
        json.dumps([made.as_dict()]),
        json.dumps({"checkpoints": [{**made.as_dict(), "received_at": "now"}]}),
    ):
        found, problems = checkpoints.parse_checkpoints(text, "source")
        assert problems == [] and found[0] == made
    found, problems = checkpoints.parse_checkpoints(json.dumps([{"seq": "1"}, 3]), "source")
    assert found == [] and [p.reason for p in problems] == [
        "source item 1 is not a checkpoint",
        "source item 2 is not a checkpoint",
    ]
