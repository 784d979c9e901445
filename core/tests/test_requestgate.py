"""core.requestgate.RequestGate: at most `slots` HTTP requests inside the app at once, none held back by a slow one
for longer than `hold_seconds`, websockets untouched, and a slot never lost to a request that fails or is cancelled.

The app behind the gate is a small ASGI app whose requests finish when the test says so."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.requestgate import RequestGate


class Requests:
    """An ASGI app whose requests stay inside until `finish(name)`; records who is inside."""

    def __init__(self) -> None:
        self.inside: set[str] = set()
        self.most_inside = 0
        self.entered: list[str] = []
        self.release: dict[str, asyncio.Event] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        name = scope["path"]
        self.entered.append(name)
        self.inside.add(name)
        self.most_inside = max(self.most_inside, len(self.inside))
        try:
            if name.startswith("/fail"):
                raise RuntimeError("the view failed")
            await self.release.setdefault(name, asyncio.Event()).wait()
        finally:
            self.inside.discard(name)

    def finish(self, name: str) -> None:
        self.release.setdefault(name, asyncio.Event()).set()


def _start(gate: RequestGate, path: str, kind: str = "http") -> asyncio.Task:
    return asyncio.ensure_future(gate({"type": kind, "path": path}, None, None))


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_at_most_slots_requests_are_inside_and_the_rest_enter_in_order_as_slots_free() -> None:
    async def scenario() -> None:
        app = Requests()
        gate = RequestGate(app, slots=2, hold_seconds=60)
        tasks = [_start(gate, f"/r{i}") for i in range(5)]
        await _settle()
        assert app.inside == {"/r0", "/r1"}
        app.finish("/r1")
        await _settle()
        assert app.inside == {"/r0", "/r2"}
        for i in (0, 2, 3, 4):
            app.finish(f"/r{i}")
        await asyncio.gather(*tasks)
        assert app.entered == ["/r0", "/r1", "/r2", "/r3", "/r4"]
        assert app.most_inside == 2

    asyncio.run(scenario())


def test_a_slow_request_gives_up_its_slot_after_the_hold_time_and_still_finishes() -> None:
    async def scenario() -> None:
        app = Requests()
        gate = RequestGate(app, slots=1, hold_seconds=0.05)
        slow = _start(gate, "/slow")
        await _settle()
        waiting = _start(gate, "/next")
        await _settle()
        assert app.inside == {"/slow"}  # queued behind the slow one, for now
        await asyncio.sleep(0.2)
        assert app.inside == {"/slow", "/next"}  # the slow request no longer holds the node
        app.finish("/next")
        await waiting
        app.finish("/slow")
        await slow
        third = _start(gate, "/third")  # the early release did not free a second slot
        fourth = _start(gate, "/fourth")
        await _settle()
        assert app.inside == {"/third"}
        app.finish("/third")
        app.finish("/fourth")
        await asyncio.gather(third, fourth)

    asyncio.run(scenario())


def test_a_failed_or_cancelled_request_frees_its_slot() -> None:
    async def scenario() -> None:
        app = Requests()
        gate = RequestGate(app, slots=1, hold_seconds=60)
        with pytest.raises(RuntimeError, match="the view failed"):
            await gate({"type": "http", "path": "/fail"}, None, None)
        gone = _start(gate, "/client-went-away")
        await _settle()
        gone.cancel()
        await _settle()
        after = _start(gate, "/after")
        await _settle()
        assert app.inside == {"/after"}
        app.finish("/after")
        await after

    asyncio.run(scenario())


def test_websockets_and_lifespan_pass_the_gate_without_a_slot() -> None:
    async def scenario() -> None:
        app = Requests()
        gate = RequestGate(app, slots=1, hold_seconds=60)
        busy = _start(gate, "/busy")
        socket, lifespan = _start(gate, "/ws", kind="websocket"), _start(gate, "/life", kind="lifespan")
        await _settle()
        assert app.inside == {"/busy", "/ws", "/life"}
        for name in ("/busy", "/ws", "/life"):
            app.finish(name)
        await asyncio.gather(busy, socket, lifespan)

    asyncio.run(scenario())


def test_one_gate_serves_event_loops_one_after_the_other() -> None:
    app = Requests()
    gate = RequestGate(app, slots=1, hold_seconds=60)

    async def contended(tag: str) -> None:
        first, second = _start(gate, f"/{tag}1"), _start(gate, f"/{tag}2")
        await _settle()
        assert app.inside == {f"/{tag}1"}
        app.finish(f"/{tag}1")
        app.finish(f"/{tag}2")
        await asyncio.gather(first, second)

    asyncio.run(contended("a"))
    asyncio.run(contended("b"))  # an asyncio.Semaphore bound to the first loop would refuse this one
    assert app.entered == ["/a1", "/a2", "/b1", "/b2"]


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="slots must be at least 1"):
        RequestGate(Requests(), slots=0, hold_seconds=1)
    with pytest.raises(ValueError, match="hold_seconds must be positive"):
        RequestGate(Requests(), slots=1, hold_seconds=0)
