"""Events written by ANOTHER process (a worker) reach a websocket client of this process's application:
through the per-process feed on the embedded default (no Redis), and through the Redis channel layer."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from asgiref.sync import async_to_sync

from failover.tests.engine_support import ROOT, make_execution, subprocess_env
from failover.tests.live_support import open_stream, read_events, read_until_summary, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

LINES = 40

# Runs in the other process: what a worker does, through the engine's own emit().
EMITTER = """
import sys, time
from django.db import transaction
from failover.engine.events import emit, wait_until_published
from failover.engine.states import transition_execution
execution_id, lines = int(sys.argv[-2]), int(sys.argv[-1])
for i in range(lines):
    emit(execution_id, "log", f"line {i + 1} from pid {__import__('os').getpid()}")
    time.sleep(0.005)
with transaction.atomic():
    transition_execution(execution_id, "completed")
    emit(execution_id, "summary", "execution completed", {"status": "completed"})
assert wait_until_published(10)
"""


def emitter(execution_id: int, env: dict[str, str]) -> subprocess.Popen:
    code = "import django; django.setup()\n" + EMITTER
    return subprocess.Popen(
        [sys.executable, "-c", code, str(execution_id), str(LINES)],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "drplan.settings"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def stream_from_another_process(execution_id: int, cookie: str, env: dict[str, str]) -> tuple[list[dict], dict]:
    async def scenario():
        communicator, connected = await open_stream(execution_id, cookie=cookie)
        assert connected
        proc = emitter(execution_id, env)
        try:
            first = await read_events(communicator, 1, timeout=30)
            seqs, summary = await read_until_summary(communicator, timeout=30)
        finally:
            output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output.decode()
        await communicator.disconnect()
        return first, seqs, summary

    first, seqs, summary = async_to_sync(scenario)()
    assert first[0]["message"].startswith("line 1 from pid ")
    assert first[0]["message"] != f"line 1 from pid {os.getpid()}"
    return [first[0]["seq"], *seqs], summary


def test_events_of_another_process_reach_the_client_without_redis(users, settings):
    settings.REDIS_URL = ""
    settings.LIVE_POLL_SECONDS = 0.02
    execution = make_execution([], status="running")
    env = subprocess_env()
    env.pop("REDIS_URL", None)

    seqs, summary = stream_from_another_process(execution.pk, session_cookie(users["viewer"]), env)
    assert seqs == list(range(1, LINES + 3))
    assert summary == {"type": "summary", "last_seq": LINES + 2, "status": "completed", "complete": True}


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis server (REDIS_URL)")
def test_events_of_another_process_reach_the_client_through_redis(users, settings):
    settings.LIVE_POLL_SECONDS = 3600  # the feed's safety net stays out of it: live events come from Redis
    execution = make_execution([], status="running")

    seqs, summary = stream_from_another_process(execution.pk, session_cookie(users["viewer"]), subprocess_env())
    assert seqs == list(range(1, LINES + 3))
    assert summary["last_seq"] == LINES + 2
