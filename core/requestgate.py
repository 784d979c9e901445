"""How many HTTP requests a web process lets into Django at once.

Under an ASGI server each request runs its synchronous Django code on a thread of its own, and Python runs one
thread at a time. With many requests in flight their threads hand the interpreter lock to each other at every
database row and network wait, and each hand-over costs context switches: measured with `bench/api.py`, eight
concurrent plan-list requests cost 1.4x the CPU of the same requests taken one at a time. The gate lets
`slots` requests in at once and queues the rest in the event loop, where waiting costs nothing.

A request holds its slot for at most `hold_seconds`; then the slot goes to the next request while it finishes.
So a slow request (a report rendered, a remote service awaited, a streamed download) delays the queue by at most
that long, and never blocks the node: with all slots given up by slow requests the process runs as without the
gate. Websockets and the server's lifespan messages pass straight through.
"""

from __future__ import annotations

import asyncio
from typing import Any

ASGIApp = Any


class RequestGate:
    """ASGI middleware: at most `slots` HTTP requests in `app` at once, each counted for at most `hold_seconds`."""

    def __init__(self, app: ASGIApp, *, slots: int, hold_seconds: float) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        if hold_seconds <= 0:
            raise ValueError("hold_seconds must be positive")
        self.app = app
        self.slots = slots
        self.hold_seconds = hold_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free = asyncio.Semaphore(slots)

    def _slots(self) -> asyncio.Semaphore:
        # A server runs one event loop; tests may serve one application from several in turn.
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._free = loop, asyncio.Semaphore(self.slots)
        return self._free

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        free = self._slots()
        await free.acquire()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                free.release()

        timer = asyncio.get_running_loop().call_later(self.hold_seconds, release)
        try:
            await self.app(scope, receive, send)
        finally:
            timer.cancel()
            release()
