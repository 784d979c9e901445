"""The tcp action: can a TCP connection to host:port be opened (or, with expect: unreachable, not)?

    action: tcp
    with: {host: db-replica.dc2, port: 5432, expect: reachable, connect_timeout: 3}

connect_timeout defaults to 5 s, bounded by the step's timeout. If a secret the step used has
allowed hosts, host:port must be one of them (refused before connecting). Output:
{host, port, reachable, elapsed_ms, reason (why it was not reachable)}.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

from failover.engine.actions import ActionResult, StepContext, executor
from failover.engine.actions.blocking import run_blocking

DEFAULT_CONNECT_TIMEOUT = 5.0


def _connect(host: str, port: int, timeout: float, holder: list[socket.socket]) -> None:
    sock = socket.create_connection((host, port), timeout=timeout)
    holder.append(sock)
    with contextlib.suppress(OSError):
        sock.close()


@executor("tcp")
def run_tcp(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    host = str(params.get("host") or "").strip()
    try:
        port = int(params.get("port"))
    except (TypeError, ValueError):
        return ActionResult(False, error=f"tcp {host}: port {params.get('port')!r} is not a number")
    target = f"tcp {host}:{port}"
    if not host or not 1 <= port <= 65535:
        return ActionResult(False, error=f"{target}: host must be non-empty and port within 1-65535")
    refused = ctx.refuse_host(host, port)  # e.g. a secret in the host name: it would reach DNS and the host
    if refused:
        return ActionResult(False, error=f"{target}: {refused}")
    expect = params.get("expect") or "reachable"
    if expect not in ("reachable", "unreachable"):
        return ActionResult(False, error=f"{target}: expect must be 'reachable' or 'unreachable', not {expect!r}")
    connect_timeout = float(params.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT)
    if ctx.timeout:
        connect_timeout = min(connect_timeout, float(ctx.timeout))
    holder: list[socket.socket] = []
    started = time.monotonic()
    # The connect itself is bounded by connect_timeout; waiting a little longer lets it report first.
    outcome = run_blocking(lambda: _connect(host, port, connect_timeout, holder), ctx, connect_timeout + 1.0)
    elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    if outcome.stopped == "cancelled":
        return ActionResult(
            False, output={"host": host, "port": port, "elapsed_ms": elapsed_ms}, error=f"{target}: cancelled"
        )
    reachable = outcome.exception is None and not outcome.stopped
    reason = ""
    if not reachable:
        exc = outcome.exception
        if outcome.stopped or isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within {connect_timeout:g}s"
        else:
            reason = f"{type(exc).__name__}: {exc}"
    output = {"host": host, "port": port, "reachable": reachable, "elapsed_ms": elapsed_ms}
    if reason:
        output["reason"] = reason
    ctx.log(f"{target}: {'reachable' if reachable else 'not reachable (' + reason + ')'} in {elapsed_ms:g} ms")
    if expect == "reachable" and not reachable:
        return ActionResult(False, output=output, error=f"{target}: not reachable ({reason})")
    if expect == "unreachable" and reachable:
        return ActionResult(False, output=output, error=f"{target}: reachable, but expected unreachable")
    return ActionResult(True, output=output)
