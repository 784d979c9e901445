"""The websocket of one execution: /ws/executions/<id>/?after=SEQ.

Messages to the client (JSON):
    {"type": "event", "event": {execution, seq, kind, step_run, message, data, created_at}}   in seq order
    {"type": "summary", "last_seq": N, "status": "...", "complete": true}   the execution is terminal and
        every event up to N was sent (sent again, with the new N, if an event is added later)
    {"type": "error", "code": "...", "message": "..."}   then the socket closes with:
        4400 bad ?after, 4401 not signed in, 4403 no permission to view executions, 4404 unknown execution.
        An open stream is closed the same way (4401 "session_ended", 4403 "permission_denied") soon after its
        viewer signs out, is deactivated or loses the permission: the consumer re-checks every
        LIVE_AUTH_RECHECK_SECONDS (a few queries per viewer per interval, none per event).

Never a gap, never a duplicate: the consumer keeps the last seq it sent, drops anything at or below it,
and when a live event skips numbers it first reads the missing ones from the table. Every message, from
the table or live, goes through one task (the pump), so sends never interleave (the access guard stops the
pump before it sends its error). Live events come from the process's feed (failover/live/feed.py), which
fans out one read or one channel-layer message to every viewer of the execution in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from failover.live import selectors
from failover.live.feed import get_feed
from failover.models import ExecutionEvent

logger = logging.getLogger(__name__)

NOT_SIGNED_IN, FORBIDDEN, NOT_FOUND, BAD_REQUEST = 4401, 4403, 4404, 4400
# After the terminal status the engine appends one "outcome recorded" event; wait this long for it
# before declaring the stream complete anyway (record_outcome may have failed).
OUTCOME_GRACE_SECONDS = 5.0
_CHECK_KINDS = {ExecutionEvent.Kind.STATUS, ExecutionEvent.Kind.SUMMARY}


class ExecutionStreamConsumer(AsyncJsonWebsocketConsumer):
    execution_id: int
    last_sent: int
    _pump: asyncio.Task | None = None
    _guard: asyncio.Task | None = None
    _inbox: asyncio.Queue | None = None

    async def connect(self) -> None:
        # Accept first so a refused client learns why (a close code), not just an HTTP 403.
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self._refuse(NOT_SIGNED_IN, "not_authenticated", "Sign in to follow executions.")
        if not await database_sync_to_async(selectors.can_follow)(user):
            return await self._refuse(FORBIDDEN, "permission_denied", "Your role may not view executions.")
        after = self._after()
        if after is None:
            return await self._refuse(BAD_REQUEST, "invalid", "after: must be a sequence number (integer >= 0).")
        self.execution_id = int(self.scope["url_route"]["kwargs"]["execution_id"])
        if await database_sync_to_async(selectors.last_seq)(self.execution_id) is None:
            return await self._refuse(NOT_FOUND, "not_found", f"Execution #{self.execution_id} does not exist.")

        self.last_sent = after
        self._summary_for: int | None = None
        self._outcome_deadline: float | None = None
        self._inbox = asyncio.Queue()
        # Subscribe to live events first, then read the table: nothing falls between the two.
        await get_feed().subscribe(self.execution_id, self._inbox.put_nowait)
        loop = asyncio.get_running_loop()
        self._pump = loop.create_task(self._run(), name=f"ws-execution-{self.execution_id}")
        session = self.scope.get("session")
        self._guard = loop.create_task(
            self._recheck(user.pk, getattr(session, "session_key", None)), name=f"ws-guard-{self.execution_id}"
        )

    async def disconnect(self, code: int) -> None:
        await self._stop_task(self._guard)
        await self._stop_task(self._pump)
        if self._inbox is not None:
            await get_feed().unsubscribe(self.execution_id, self._inbox.put_nowait)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Clients have nothing to say on this socket; their messages are ignored."""

    # --- the pump -------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._catch_up()
            await self._check_complete()
            while True:
                timeout = None
                if self._outcome_deadline is not None:
                    timeout = max(0.0, self._outcome_deadline - time.monotonic())
                try:
                    first = await asyncio.wait_for(self._inbox.get(), timeout)
                except TimeoutError:
                    await self._check_complete()
                    continue
                batch = [first]
                while not self._inbox.empty():
                    batch.append(self._inbox.get_nowait())
                await self._deliver(batch)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("live stream of execution %s failed", self.execution_id)
            with contextlib.suppress(Exception):
                await self.send_json({"type": "error", "code": "internal", "message": "The stream failed; reconnect."})
                await self.close(code=1011)

    async def _deliver(self, batch: list[dict[str, Any]]) -> None:
        check = False
        for payload in sorted(batch, key=lambda p: p["seq"]):
            if payload["seq"] <= self.last_sent:
                continue  # already sent (from the table, or by the other live source)
            if payload["seq"] > self.last_sent + 1:
                await self._catch_up()  # a gap: the table has everything up to this one
                check = True
                continue
            await self._send_event(payload)
            check = check or payload["kind"] in _CHECK_KINDS
        if check or self._outcome_deadline is not None:
            await self._check_complete()

    async def _catch_up(self) -> None:
        while True:
            payloads = await database_sync_to_async(selectors.events_after)(self.execution_id, self.last_sent)
            for payload in payloads:
                await self._send_event(payload)
            if len(payloads) < 500:
                return

    async def _send_event(self, payload: dict[str, Any]) -> None:
        await self.send_json({"type": "event", "event": payload})
        self.last_sent = payload["seq"]

    async def _check_complete(self) -> None:
        """Send the summary once the execution is terminal and everything up to its last seq was sent."""
        state = await database_sync_to_async(selectors.stream_state)(self.execution_id)
        if not state.terminal:
            self._outcome_deadline = None
            return
        if state.last_seq > self.last_sent:
            await self._catch_up()
            state = await database_sync_to_async(selectors.stream_state)(self.execution_id)
        if state.outcome_pending:
            if self._outcome_deadline is None:
                self._outcome_deadline = time.monotonic() + OUTCOME_GRACE_SECONDS
            if time.monotonic() < self._outcome_deadline:
                return
        self._outcome_deadline = None
        if self._summary_for != self.last_sent and self.last_sent >= state.last_seq:
            self._summary_for = self.last_sent
            await self.send_json(
                {"type": "summary", "last_seq": self.last_sent, "status": state.status, "complete": True}
            )

    # --- the guard: access is checked again while the stream is open ------------------

    async def _recheck(self, user_id: int, session_key: str | None) -> None:
        """Every LIVE_AUTH_RECHECK_SECONDS: is the viewer still signed in, active and allowed? If not, stop the
        pump (so nothing is sent after the error) and close with 4401 or 4403."""
        while True:
            await asyncio.sleep(settings.LIVE_AUTH_RECHECK_SECONDS)
            try:
                lost = await database_sync_to_async(selectors.viewer_access)(session_key, user_id)
            except Exception:  # a database hiccup: keep the stream, check again next time
                logger.warning("live stream of execution %s: access re-check failed", self.execution_id, exc_info=True)
                continue
            if lost is not None:
                break
        await self._stop_task(self._pump)
        if lost == "session_ended":
            await self._refuse(NOT_SIGNED_IN, lost, "Your session has ended; sign in again to follow executions.")
        else:
            await self._refuse(FORBIDDEN, lost, "Your role may no longer view executions.")

    @staticmethod
    async def _stop_task(task: asyncio.Task | None) -> None:
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- helpers ----------------------------------------------------------------------

    def _after(self) -> int | None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        values = query.get("after", ["0"])
        try:
            after = int(values[-1])
        except ValueError:
            return None
        return after if after >= 0 else None

    async def _refuse(self, code: int, error: str, message: str) -> None:
        await self.send_json({"type": "error", "code": error, "message": message})
        await self.close(code=code)
