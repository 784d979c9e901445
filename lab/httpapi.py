"""The orders app's admin HTTP API, on 127.0.0.1 only: what the lab's runbooks drive with the `http` action,
where a real system has a load balancer, a DNS or a service registry API.

    POST /admin/route   Authorization: Bearer <token>
        {"service": "postgres", "dsn": "postgresql://user@host:port/db"}
        or {"service": "redis", "url": "redis://host:port/0"}
        -> 200 {"service", "node", "host", "port", "epoch", "changed"}; the app reconnects at its next order.
           Pointing it where it already points changes nothing (changed: false, same epoch).
    GET /status[?wait_ack=SECONDS][&acked_after=N]
        -> 200 the app's status (app.OrdersApp.status): orders acknowledged, the last route change (`switch`:
           acknowledged orders missing on the new primary, orders acknowledged since), outages.
           wait_ack: wait until the app acknowledged an order since the last route change it applied;
           acked_after: wait until more than N orders are acknowledged in all. 503 with the status when the
           wait ends first.

A wrong or missing token gets 401 and changes nothing; a body that is not one of the two forms, 400 naming
the field. No Django here (the app starts in a fraction of a second).
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lab.state import HOST, load_state, read_route, switch_route

MAX_BODY = 64 * 1024
MAX_WAIT = 120.0


class BadRequest(Exception):
    pass


def postgres_target(dsn: str) -> dict[str, Any]:
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        raise BadRequest("dsn: not a PostgreSQL DSN") from None
    if not parts.get("host") or not str(parts.get("port") or "").isdigit() or "," in str(parts.get("host")):
        raise BadRequest("dsn: needs one host and a port")
    return {
        "host": str(parts["host"]),
        "port": int(parts["port"]),
        "dbname": str(parts.get("dbname") or "lab"),
        "user": str(parts.get("user") or "postgres"),
    }


def redis_target(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname or not parts.port:
        raise BadRequest("url: not a redis://host:port URL")
    return {"host": parts.hostname, "port": parts.port}


def repoint(root: Any, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or body.get("service") not in ("postgres", "redis"):
        raise BadRequest("service: must be postgres or redis")
    service = body["service"]
    field = "dsn" if service == "postgres" else "url"
    if not isinstance(body.get(field), str):
        raise BadRequest(f"{field}: required for service {service}")
    target = postgres_target(body[field]) if service == "postgres" else redis_target(body[field])
    state = load_state(root) or {}
    node = next(
        (name for name, n in sorted(state.get(service, {}).items()) if n.get("port") == target["port"]),
        f"{target['host']}:{target['port']}",
    )
    current = read_route(root).get(service) or {}
    if (current.get("host"), current.get("port")) == (target["host"], target["port"]):
        return {
            "service": service,
            "node": current.get("node"),
            **target,
            "epoch": current.get("epoch"),
            "changed": False,
        }
    switched = switch_route(service, {"node": node, **target}, root)["current"]
    return {"service": service, "node": node, **target, "epoch": switched["epoch"], "changed": True}


def serve(app: Any, port: int, token: str) -> ThreadingHTTPServer:
    """Start the API on 127.0.0.1:port in a daemon thread; returns the server (shutdown() stops it)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "lab-orders-app"

        def log_message(self, *args: Any) -> None:  # the app's log is its status file
            pass

        def _send(self, status: int, data: Any) -> None:
            body = json.dumps(data, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/admin/route":
                return self._send(404, {"error": "not found"})
            given = self.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return self._send(401, {"error": "missing or wrong Bearer token"})
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._send(400, {"error": "body too large"})
            try:
                body = json.loads(self.rfile.read(length) or b"null")
                result = repoint(app.root, body)
            except json.JSONDecodeError:
                return self._send(400, {"error": "body: not JSON"})
            except BadRequest as exc:
                return self._send(400, {"error": str(exc)})
            with app.changed:
                app.changed.notify_all()
            return self._send(200, result)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/status":
                return self._send(404, {"error": "not found"})
            query = parse_qs(url.query)
            try:
                wait_ack = min(MAX_WAIT, float(query.get("wait_ack", ["0"])[0]))
                acked_after = int(query["acked_after"][0]) if "acked_after" in query else None
            except ValueError:
                return self._send(400, {"error": "wait_ack must be seconds, acked_after a number"})
            wait = max(wait_ack, MAX_WAIT if acked_after is not None and not wait_ack else 0.0)
            ok = _wait(app, wait, need_ack=bool(wait_ack), acked_after=acked_after)
            return self._send(200 if ok else 503, app.status())

    server = ThreadingHTTPServer((HOST, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="admin-api", daemon=True).start()
    return server


def _wait(app: Any, seconds: float, *, need_ack: bool, acked_after: int | None) -> bool:
    """Until the app acked an order since its last route change (need_ack) and more than `acked_after`
    orders in all; False if `seconds` pass first."""

    def done() -> bool:
        if need_ack:
            route_epoch = int((read_route(app.root).get("postgres") or {}).get("epoch", 0))
            if app.epoch != route_epoch or app.acked_in_epoch == 0:
                return False
        return acked_after is None or app.acked_total > acked_after

    deadline = time.monotonic() + seconds
    with app.changed:
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            app.changed.wait(min(left, 0.2))
    return True
