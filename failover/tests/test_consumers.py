"""The live event stream of an execution (/ws/executions/<id>/), in process with WebsocketCommunicator
against the real ASGI application (origin check, session authentication, routing).

Without REDIS_URL, live events reach the consumer only through the per-process feed that polls the table."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import connection
from django.test.utils import CaptureQueriesContext

from failover.engine.events import event_payload, group_name
from failover.engine.records import OUTCOME_MARKER
from failover.live import feed as feed_module
from failover.live.feed import Feed
from failover.models import ExecutionEvent
from failover.tests.engine_support import in_thread, make_execution
from failover.tests.factories import add_events
from failover.tests.live_support import aemit, afinish, finish, open_stream, read_events, read_until_summary
from failover.tests.live_support import session_cookie as cookie_of
from plans.tests.factories import make_plan

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _embedded(settings):
    settings.REDIS_URL = ""
    settings.LIVE_POLL_SECONDS = 0.02


@pytest.fixture
def viewer(users):
    return cookie_of(users["viewer"])


def run(coroutine_function, *args):
    return async_to_sync(coroutine_function)(*args)


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "code", "error"),
    [(None, 4401, "not_authenticated"), ("no-role", 4403, "permission_denied")],
)
def test_refused_without_sign_in_or_view_permission(make_user, who, code, error):
    execution = make_execution([])
    add_events(execution, 2)
    cookie = cookie_of(make_user("nobody")) if who else None

    async def scenario():
        communicator, connected = await open_stream(execution.pk, cookie=cookie)
        assert connected  # accepted only to say why, then closed
        message = await communicator.receive_json_from()
        assert message["type"] == "error"
        assert message["code"] == error
        closed = await communicator.receive_output()
        assert closed == {"type": "websocket.close", "code": code}

    run(scenario)


def test_refused_for_an_unknown_execution_and_a_bad_after(viewer):
    execution = make_execution([])

    async def scenario():
        communicator, _ = await open_stream(execution.pk + 1000, cookie=viewer)
        assert (await communicator.receive_json_from())["code"] == "not_found"
        assert await communicator.receive_output() == {"type": "websocket.close", "code": 4404}

        communicator, _ = await open_stream(execution.pk, cookie=viewer, after="x")
        message = await communicator.receive_json_from()
        assert message["code"] == "invalid"
        assert "after" in message["message"]
        assert await communicator.receive_output() == {"type": "websocket.close", "code": 4400}

    run(scenario)


def test_refused_from_a_foreign_origin(viewer):
    execution = make_execution([])

    async def scenario():
        _, connected = await open_stream(execution.pk, cookie=viewer, origin=b"http://evil.example")
        assert not connected
        _, connected = await open_stream(execution.pk, cookie=viewer, origin=None)
        assert not connected

    run(scenario)


# --- backlog, live, summary -----------------------------------------------------------------


def test_backlog_then_live_events_then_summary(viewer):
    execution = make_execution([], status="running")
    add_events(execution, 3)

    async def scenario():
        communicator, connected = await open_stream(execution.pk, cookie=viewer)
        assert connected
        backlog = await read_events(communicator, 3)
        assert [e["seq"] for e in backlog] == [1, 2, 3]
        assert backlog[0] == {
            "execution": execution.pk,
            "seq": 1,
            "kind": "log",
            "step_run": None,
            "message": "line 1",
            "data": {},
            "created_at": backlog[0]["created_at"],
        }
        assert await communicator.receive_nothing(timeout=0.2)  # running: no summary yet

        await aemit(execution.pk, ExecutionEvent.Kind.LOG, "live line", {"n": 4})
        (live,) = await read_events(communicator, 1)
        assert (live["seq"], live["message"], live["data"]) == (4, "live line", {"n": 4})

        await afinish(execution.pk)
        seqs, summary = await read_until_summary(communicator)
        assert seqs == [5, 6]  # the status event and the runner's SUMMARY event
        assert summary == {"type": "summary", "last_seq": 6, "status": "completed", "complete": True}
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()

    run(scenario)


def test_resume_after_n_gets_exactly_the_later_events_once(viewer):
    execution = make_execution([], status="running")
    add_events(execution, 5)
    finish(execution.pk)  # seq 6 and 7

    async def scenario():
        communicator, _ = await open_stream(execution.pk, cookie=viewer, after=4)
        seqs, summary = await read_until_summary(communicator)
        assert seqs == [5, 6, 7]
        assert summary["last_seq"] == 7
        assert await communicator.receive_nothing(timeout=0.3)  # the feed re-reads nothing
        await communicator.disconnect()

        # A client that already has everything gets only the summary.
        communicator, _ = await open_stream(execution.pk, cookie=viewer, after=7)
        assert await read_until_summary(communicator) == ([], summary)
        await communicator.disconnect()

    run(scenario)


def test_summary_waits_for_the_outcome_event_of_a_plan_execution(viewer):
    execution = make_execution([], status="running", plan=make_plan())
    add_events(execution, 1)

    async def scenario():
        communicator, _ = await open_stream(execution.pk, cookie=viewer)
        await read_events(communicator, 1)
        await afinish(execution.pk)
        assert [e["seq"] for e in await read_events(communicator, 2)] == [2, 3]
        assert await communicator.receive_nothing(timeout=0.3)  # record_outcome has not written yet
        await aemit(execution.pk, ExecutionEvent.Kind.SUMMARY, OUTCOME_MARKER, {"status": "completed"})
        seqs, summary = await read_until_summary(communicator)
        assert (seqs, summary["last_seq"]) == ([4], 4)
        await communicator.disconnect()

    run(scenario)


def test_reconnecting_mid_run_ends_with_every_event_exactly_once(viewer):
    execution = make_execution([], status="running")
    total_lines = 120

    def worker():
        from failover.engine.events import emit

        for i in range(total_lines):
            emit(execution.pk, ExecutionEvent.Kind.LOG, f"line {i + 1}")
            time.sleep(0.004)
        finish(execution.pk)

    async def scenario():
        communicator, _ = await open_stream(execution.pk, cookie=viewer)
        thread = in_thread(worker)
        first = [e["seq"] for e in await read_events(communicator, 30)]
        await communicator.disconnect()  # mid-run
        communicator, connected = await open_stream(execution.pk, cookie=viewer, after=first[-1])
        assert connected
        rest, summary = await read_until_summary(communicator)
        await communicator.disconnect()
        await database_sync_to_async(thread.join)(10)
        received = first + rest
        assert received == list(range(1, total_lines + 3))  # every line, the status and the summary event
        assert summary["last_seq"] == total_lines + 2

    run(scenario)


def test_live_message_with_a_gap_is_backfilled_and_duplicates_are_dropped(viewer, settings):
    settings.LIVE_POLL_SECONDS = 60  # only the channel-layer messages below are live
    execution = make_execution([], status="running")
    add_events(execution, 2)

    async def scenario():
        communicator, _ = await open_stream(execution.pk, cookie=viewer)
        assert [e["seq"] for e in await read_events(communicator, 2)] == [1, 2]
        events = await database_sync_to_async(add_events)(execution, 3)  # 3, 4, 5 stored, none published
        payloads = {
            e.seq: event_payload(await database_sync_to_async(ExecutionEvent.objects.get)(pk=e.pk)) for e in events
        }
        layer = get_channel_layer()
        await layer.group_send(group_name(execution.pk), {"type": "execution.event", "event": payloads[5]})
        assert [e["seq"] for e in await read_events(communicator, 3)] == [3, 4, 5]
        for seq in (4, 5, 2):
            await layer.group_send(
                group_name(execution.pk), {"type": "execution.event", "event": payloads.get(seq, payloads[4])}
            )
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()

    run(scenario)


def test_one_query_per_tick_whatever_the_number_of_viewers():
    executions = [make_execution([], status="running") for _ in range(3)]

    async def counted(feed: Feed) -> tuple[int, int]:
        # The feed polls on a thread of its own: count the queries on that thread's connection.
        loop = asyncio.get_running_loop()
        queries = CaptureQueriesContext(connection)
        await loop.run_in_executor(feed_module._POLLER, queries.__enter__)
        read = await feed.tick()

        def finish() -> int:
            queries.__exit__(None, None, None)
            return len(queries.captured_queries)

        return read, await loop.run_in_executor(feed_module._POLLER, finish)

    async def scenario():
        feed = Feed(interval=3600)
        inboxes = [[] for _ in range(30)]
        for i, inbox in enumerate(inboxes):
            await feed.subscribe(executions[i % 3].pk, inbox.append)
        for execution in executions:
            await aemit(execution.pk, ExecutionEvent.Kind.LOG, "hello")
        assert await counted(feed) == (3, 1)  # 3 events read by 1 query for 30 viewers
        assert await counted(feed) == (0, 1)
        await feed.stop()
        return inboxes

    inboxes = run(scenario)
    assert [[(p["execution"], p["seq"]) for p in inbox] for inbox in inboxes] == [
        [(executions[i % 3].pk, 1)] for i in range(30)
    ]


def test_a_viewer_who_arrives_while_the_feed_winds_down_still_gets_live_events(monkeypatch):
    """The last viewer leaves, so the feed's poller ends and lets its database connection go. A viewer arriving
    during that (a reconnect, a page reloaded) finds the poller still running and starts no other: it must poll
    on for them, or their console would never show another event."""
    execution = make_execution([], status="running")
    feed = Feed(interval=0.01)
    arrived: list[dict] = []
    release = feed_module._release_poller_connection

    async def release_while_a_viewer_arrives() -> None:
        if feed.subscribers.get(execution.pk) is None and not arrived:
            await feed.subscribe(execution.pk, arrived.append)  # inside the poller's task, as the race has it
        await release()

    monkeypatch.setattr(feed_module, "_release_poller_connection", release_while_a_viewer_arrives)

    async def scenario():
        leaving: list[dict] = []
        await feed.subscribe(execution.pk, leaving.append)
        await feed.unsubscribe(execution.pk, leaving.append)
        for _ in range(500):  # until the poller, winding down, has let the new viewer in
            if feed.subscribers.get(execution.pk):
                break
            await asyncio.sleep(0.01)
        await aemit(execution.pk, ExecutionEvent.Kind.LOG, "after the reconnect")
        for _ in range(500):
            if arrived:
                break
            await asyncio.sleep(0.01)
        await feed.stop()
        return leaving

    assert run(scenario) == []
    assert [(p["seq"], p["message"]) for p in arrived] == [(1, "after the reconnect")]


def test_a_viewer_who_arrives_while_the_last_one_leaves_stays_in_the_executions_group():
    """With a channel layer (Redis in a cluster), the feed's channel leaves the execution's group when its last
    viewer goes. A viewer arriving meanwhile must find the channel in the group once both are done, whatever
    order their calls reach the layer in: here the leave's discard is slow (a busy Redis), so the arrival's join
    would reach the layer first and the discard would then take the channel out with a viewer in it, leaving
    them only the safety-net poll (set to 30 s here, so only the group can deliver)."""
    execution = make_execution([], status="running")
    layer = InMemoryChannelLayer()
    group_discard = layer.group_discard

    async def slow_group_discard(group: str, channel: str) -> None:
        await asyncio.sleep(0.05)
        await group_discard(group, channel)

    layer.group_discard = slow_group_discard
    feed = Feed(interval=30.0, layer=layer)

    async def scenario():
        leaving: list[dict] = []
        arrived: list[dict] = []
        await feed.subscribe(execution.pk, leaving.append)

        async def arrive() -> None:
            await asyncio.sleep(0.01)  # once the leave has begun
            await feed.subscribe(execution.pk, arrived.append)

        await asyncio.gather(feed.unsubscribe(execution.pk, leaving.append), arrive())
        await layer.group_send(
            group_name(execution.pk),
            {"type": "execution.events", "events": [{"execution": execution.pk, "seq": 1, "message": "live"}]},
        )
        for _ in range(200):
            if arrived:
                break
            await asyncio.sleep(0.01)
        await feed.stop()
        return leaving, arrived

    leaving, arrived = run(scenario)
    assert leaving == []
    assert [(p["seq"], p["message"]) for p in arrived] == [(1, "live")]


# --- revocation while watching ----------------------------------------------------------------------


def _revoke_session(cookie: str) -> None:
    from django.contrib.sessions.models import Session

    Session.objects.filter(session_key=cookie).delete()  # what signing out does (database sessions)


def _deactivate(user) -> None:
    type(user).objects.filter(pk=user.pk).update(is_active=False)


def _remove_roles(user) -> None:
    user.groups.clear()


def _change_password(user) -> None:
    user.set_password("a-new-password-1")
    user.save(update_fields=["password"])  # sessions signed with the old password hash end


@pytest.mark.parametrize(
    ("revoke", "code", "error"),
    [
        (_revoke_session, 4401, "session_ended"),
        (_deactivate, 4401, "session_ended"),
        (_change_password, 4401, "session_ended"),
        (_remove_roles, 4403, "permission_denied"),
    ],
    ids=["signed-out", "deactivated", "password-changed", "role-removed"],
)
def test_a_stream_is_closed_soon_after_the_viewer_loses_access(settings, make_user, revoke, code, error):
    settings.LIVE_AUTH_RECHECK_SECONDS = 0.1
    user = make_user("watcher", "viewer")
    cookie = cookie_of(user)
    execution = make_execution([], status="running")
    add_events(execution, 1)

    async def scenario():
        communicator, connected = await open_stream(execution.pk, cookie=cookie)
        assert connected
        await read_events(communicator, 1)
        assert await communicator.receive_nothing(timeout=0.4)  # still allowed: nothing but the stream
        await database_sync_to_async(revoke)(cookie if revoke is _revoke_session else user)
        started = time.monotonic()
        message = await communicator.receive_json_from(timeout=3)
        assert message["type"] == "error"
        assert message["code"] == error
        assert await communicator.receive_output(timeout=3) == {"type": "websocket.close", "code": code}
        assert time.monotonic() - started < 2
        # nothing more is sent after the close, even a live event
        await aemit(execution.pk, ExecutionEvent.Kind.LOG, "after revocation")
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()

    run(scenario)


def test_the_recheck_is_a_few_queries_every_few_seconds_not_per_event(settings, users):
    from failover.live import consumers

    assert settings.LIVE_AUTH_RECHECK_SECONDS == 5.0  # DRPLAN_LIVE_AUTH_RECHECK_SECONDS
    settings.LIVE_AUTH_RECHECK_SECONDS = 0.2
    calls: list[int] = []
    original = consumers.selectors.viewer_access

    def counting(*args):
        calls.append(1)
        return original(*args)

    execution = make_execution([], status="running")
    cookie = cookie_of(users["viewer"])

    async def scenario():
        communicator, _ = await open_stream(execution.pk, cookie=cookie)
        for i in range(40):
            await aemit(execution.pk, ExecutionEvent.Kind.LOG, f"line {i}")
        await read_events(communicator, 40)
        await asyncio.sleep(0.5)
        await communicator.disconnect()

    consumers.selectors.viewer_access = counting
    try:
        run(scenario)
    finally:
        consumers.selectors.viewer_access = original
    assert 1 <= len(calls) <= 6  # one check per interval, whatever the number of events
