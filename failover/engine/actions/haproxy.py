"""The haproxy actions: shift traffic between the servers of a backend over HAProxy's runtime API.

    - id: shift-half
      action: haproxy.set_weight
      with: {runtime_api: /run/haproxy/admin.sock, backend: app,
             weights: [{server: site-b, weight: 50}, {server: site-a, weight: 50}]}
    - {id: drain-a, action: haproxy.set_state, with: {runtime_api_secret: lb-api, backend: app, server: site-a,
       state: drain, wait_drained: true}}
    - {id: b-up, action: haproxy.server_status, with: {runtime_api: "127.0.0.1:9999", backend: app,
       server: site-b, expect_status: [UP, "no check"], expect_weight: 100}}

The runtime API is HAProxy's `stats socket ... level admin`: a unix socket path, or host:port over TCP (then,
if a secret the step used has allowed hosts, the host must be one of them). One command per connection
(HAProxy answers and closes); a command that changes something succeeds when HAProxy answers nothing, and
anything else it answers ("No such server.") is the step's error. Names of backends and servers are checked
before anything is sent (no blanks, `;`, `/` or `#`: the runtime API would read them as more commands or
arguments). Every call is bounded by the step's timeout (30 s when it has none; one call at most
CALL_TIMEOUT) and a cancel closes the socket under it.

set_weight reads the backend first (every named server must exist, else nothing changes), then sends the
raised weights before the lowered ones, so traffic always has somewhere to go, and reads the weights back.
"""

from __future__ import annotations

import contextlib
import csv
import io
import socket
import time
from collections.abc import Callable
from typing import Any

from failover.engine.actions import ActionResult, StepContext, executor
from failover.engine.actions.sessions import ActionFailed, StepSession, run_session

CALL_TIMEOUT = 5.0  # seconds one runtime API command may take, within the step's timeout
POLL_INTERVAL = 0.1  # while waiting for a server to drain
MAX_ANSWER = 4 * 1024 * 1024  # bytes read from one answer (show stat of a large configuration)
FORBIDDEN = set(" \t\r\n;/#")


def _name(value: Any, what: str) -> str:
    text = str(value or "").strip()
    if not text or len(text) > 128 or any(ch in FORBIDDEN for ch in text):
        raise ActionFailed(
            f"{what} {text!r} is not an HAProxy name (no blanks, ';', '/' or '#', at most 128 characters)"
        )
    return text


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def status_word(status: str) -> str:
    """HAProxy's server status without its transition suffix ("UP 1/3" -> "UP", "MAINT (via x/y)" -> "MAINT")."""
    status = status.strip()
    if status.lower() == "no check":
        return "no check"
    return status.split(" ", 1)[0].upper() if status else ""


class _RuntimeAPI(StepSession):
    """One HAProxy runtime API, and the step's deadline: every command goes through `command`."""

    poll_interval = POLL_INTERVAL

    def __init__(self, params: dict[str, Any], ctx: StepContext) -> None:
        super().__init__(ctx)
        self.family, self.address, self.label = self._address(params)
        self._open: socket.socket | None = None

    def _address(self, params: dict[str, Any]) -> tuple[int, Any, str]:
        if params.get("runtime_api_secret"):
            name = str(params["runtime_api_secret"])
            value = self.read_secret("runtime_api_secret", name)
            where = f"(runtime_api_secret '{name}')"
        else:
            value = str(params.get("runtime_api") or "").strip()
            where = ""
        if not value:
            raise ActionFailed("no runtime API: give runtime_api or runtime_api_secret")
        if value.startswith("/"):
            return socket.AF_UNIX, value, f"haproxy {value} {where}".strip()
        host, _, port_text = value.rpartition(":")
        host = host.strip("[]")
        port = _int(port_text, -1)
        if not host or not 1 <= port <= 65535:
            raise ActionFailed(f"runtime API {where or repr(value)} is neither a socket path nor host:port")
        refused = self.ctx.refuse_host(host, port)
        label = f"haproxy {host}:{port} {where}".strip()
        if refused:
            raise ActionFailed(f"{label}: {refused}")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return family, (host, port), label

    def _send(self, line: str) -> str:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        self._open = sock
        try:
            sock.settimeout(min(CALL_TIMEOUT, max(0.1, self.remaining()) + 0.5))
            sock.connect(self.address)
            sock.sendall(line.encode() + b"\n")
            chunks: list[bytes] = []
            size = 0
            while size < MAX_ANSWER:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks).decode("utf-8", "replace")
        finally:
            sock.close()

    def _stop(self) -> None:
        if self._open is not None:
            with contextlib.suppress(OSError):
                self._open.close()

    def describe(self, exc: BaseException) -> str:
        text = f"no answer within {CALL_TIMEOUT:g}s" if isinstance(exc, TimeoutError) else str(exc)
        return text or type(exc).__name__

    def command(self, line: str) -> str:
        return self.call(self, line, lambda: self._send(line), on_stop=self._stop)

    def change(self, line: str) -> None:
        """A command that changes something: HAProxy answers nothing when it did it."""
        answer = self.command(line).strip()
        if answer:
            raise ActionFailed(f"{self.label}: {line}: {' '.join(answer.split())}")

    def servers(self, backend: str) -> dict[str, dict[str, Any]]:
        """The servers of `backend` as `show stat` reports them, by name (the backend must exist)."""
        answer = self.command("show stat")
        if not answer.startswith("# "):
            raise ActionFailed(f"{self.label}: show stat: {' '.join(answer.split()) or 'empty answer'}")
        rows = csv.DictReader(io.StringIO(answer[2:]))
        found: dict[str, dict[str, Any]] = {}
        backend_seen = False
        for row in rows:
            if row.get("pxname") != backend:
                continue
            name = row.get("svname") or ""
            if name == "BACKEND":
                backend_seen = True
            if name in ("FRONTEND", "BACKEND", ""):
                continue
            weight = _int(row.get("uweight") or row.get("weight"))
            found[name] = {
                "server": name,
                "address": row.get("addr") or "",
                "status": status_word(row.get("status") or ""),
                "weight": weight,
                "effective_weight": _int(row.get("weight")),
                "current_sessions": _int(row.get("scur")),
                "queued": _int(row.get("qcur")),
                "total_sessions": _int(row.get("stot")),
                "check_status": row.get("check_status") or "",
            }
        if not backend_seen:
            raise ActionFailed(f"{self.label}: no backend named '{backend}'")
        return found

    def wait_for(self, what: str, check: Callable[[], bool], last: Callable[[], str]) -> float:
        """Seconds until `check()` held (polling; ActionStopped at the deadline or on a cancel)."""
        started = time.monotonic()
        self.wait(self, what, check, last)
        return round(time.monotonic() - started, 3)


def _run(params: dict[str, Any], ctx: StepContext, body: Callable[[_RuntimeAPI], ActionResult]) -> ActionResult:
    try:
        api = _RuntimeAPI(params, ctx)
    except ActionFailed as failure:
        return ActionResult(False, error=str(failure))
    return run_session(api, body)


def _unknown(api: _RuntimeAPI, backend: str, names: list[str], servers: dict[str, Any]) -> None:
    missing = [name for name in names if name not in servers]
    if missing:
        known = ", ".join(sorted(servers)) or "none"
        raise ActionFailed(f"{api.label}: backend '{backend}' has no server {', '.join(missing)} (servers: {known})")


def _brief(servers: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{s['server']} {s['status']} weight {s['weight']}" for s in servers.values())


@executor("haproxy.set_weight")
def run_set_weight(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    def body(api: _RuntimeAPI) -> ActionResult:
        backend = _name(params.get("backend"), "backend")
        raw = params.get("weights")
        if not isinstance(raw, list) or not raw:
            raise ActionFailed(f"{api.label}: weights must name at least one server")
        weights: dict[str, int] = {}
        for entry in raw:
            entry = entry if isinstance(entry, dict) else {}
            server, value = _name(entry.get("server"), "server"), entry.get("weight")
            weight = _int(value, -1)
            if isinstance(value, bool) or not 0 <= weight <= 256:
                raise ActionFailed(f"{api.label}: weight {value!r} of server '{server}' is not within 0-256")
            if server in weights:
                raise ActionFailed(f"{api.label}: server '{server}' is named twice in weights")
            weights[server] = weight
        before = api.servers(backend)
        _unknown(api, backend, list(weights), before)
        # Raised weights first: the backend never has less capacity in between than before or after.
        order = sorted(weights, key=lambda s: (weights[s] <= before[s]["weight"], list(weights).index(s)))
        for server in order:
            if weights[server] == before[server]["weight"]:
                continue
            api.change(f"set weight {backend}/{server} {weights[server]}")
            ctx.log(f"{api.label}: {backend}/{server} weight {before[server]['weight']} -> {weights[server]}")
        after = api.servers(backend)
        wrong = [f"{s} has {after[s]['weight']}" for s in weights if after[s]["weight"] != weights[s]]
        if wrong:
            raise ActionFailed(f"{api.label}: weights not applied: {', '.join(wrong)}")
        ctx.log(f"{api.label}: backend {backend}: {_brief(after)}")
        output = {
            "backend": backend,
            "previous": {s: before[s]["weight"] for s in weights},
            "weights": {s: after[s]["weight"] for s in after},
            "changed": any(before[s]["weight"] != weights[s] for s in weights),
            "servers": list(after.values()),
        }
        return ActionResult(True, output=output)

    return _run(params, ctx, body)


@executor("haproxy.set_state")
def run_set_state(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    def body(api: _RuntimeAPI) -> ActionResult:
        backend = _name(params.get("backend"), "backend")
        server = _name(params.get("server"), "server")
        state = str(params.get("state") or "")
        if state not in ("ready", "drain", "maint"):
            raise ActionFailed(f"{api.label}: state {state!r} is not one of ready, drain, maint")
        before = api.servers(backend)
        _unknown(api, backend, [server], before)
        api.change(f"set server {backend}/{server} state {state}")
        ctx.log(f"{api.label}: {backend}/{server} state {state} (was {before[server]['status']})")
        seen = [api.servers(backend)[server]]
        waited = 0.0
        if params.get("wait_drained") and state in ("drain", "maint"):

            def drained() -> bool:
                seen.append(api.servers(backend)[server])
                return seen[-1]["current_sessions"] == 0 and seen[-1]["queued"] == 0

            def last() -> str:
                return f"{seen[-1]['current_sessions']} current session(s), {seen[-1]['queued']} queued"

            waited = api.wait_for(f"{backend}/{server} to drain", drained, last)
            ctx.log(f"{api.label}: {backend}/{server} drained after {waited:g}s")
        now = seen[-1]
        output = {
            "backend": backend,
            "server": server,
            "state": state,
            "previous_status": before[server]["status"],
            "status": now["status"],
            "current_sessions": now["current_sessions"],
            "waited_seconds": waited,
        }
        return ActionResult(True, output=output)

    return _run(params, ctx, body)


@executor("haproxy.server_status")
def run_server_status(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    def body(api: _RuntimeAPI) -> ActionResult:
        backend = _name(params.get("backend"), "backend")
        servers = api.servers(backend)
        server = _name(params["server"], "server") if params.get("server") else None
        if server is not None:
            _unknown(api, backend, [server], servers)
            servers = {server: servers[server]}
        ctx.log(f"{api.label}: backend {backend}: {_brief(servers) or 'no servers'}")
        output: dict[str, Any] = {"backend": backend, "servers": list(servers.values())}
        if server is not None:
            output.update(servers[server])
        problems = []
        expected_status = params.get("expect_status")
        if server is not None and expected_status and servers[server]["status"] not in expected_status:
            problems.append(f"status {servers[server]['status']} (expected {' or '.join(expected_status)})")
        expected_weight = params.get("expect_weight")
        if server is not None and expected_weight is not None and servers[server]["weight"] != _int(expected_weight):
            problems.append(f"weight {servers[server]['weight']} (expected {expected_weight})")
        if problems:
            return ActionResult(False, output=output, error=f"{api.label}: {backend}/{server}: {'; '.join(problems)}")
        return ActionResult(True, output=output)

    return _run(params, ctx, body)
