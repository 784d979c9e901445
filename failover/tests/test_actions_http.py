"""The http action against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

import pytest

from failover.engine.actions import StepContext, run_action
from failover.engine.actions.http import MAX_BODY_CHARS, json_path, origin
from runbooks.actions import get_action

HEALTH = {"status": "ok", "replicas": [{"name": "r1", "lag": 3}], "checks": {"db": {"ok": True}}}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, json.dumps(HEALTH).encode())
        elif self.path == "/down":
            self._send(503, b'{"status": "down"}')
        elif self.path == "/text":
            self._send(200, b"plain text", "text/plain")
        elif self.path == "/big":
            self._send(200, json.dumps({"blob": "x" * (MAX_BODY_CHARS * 2)}).encode())
        elif self.path == "/slow":
            time.sleep(3)
            self._send(200, b"{}")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/health")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path.startswith("/away?to="):  # redirects wherever it is told to
            self.send_response(302)
            self.send_header("Location", unquote(self.path.removeprefix("/away?to=")))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/headers":
            self._send(200, json.dumps(dict(self.headers.items())).encode())
        else:
            self._send(404, b'{"error": "no such path"}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = self.rfile.read(length).decode()
        echo = {
            "method": self.command,
            "content_type": self.headers.get("Content-Type"),
            "token": self.headers.get("X-Token"),
            "body": received,
        }
        self._send(201, json.dumps(echo).encode())

    do_PUT = do_POST


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    yield from _serve(Handler)


class Recorder(Handler):
    """Another origin (another port): remembers the headers of every request it gets."""

    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        Recorder.seen.append(dict(self.headers.items()))
        super().do_GET()


@pytest.fixture
def other_server() -> Iterator[str]:
    Recorder.seen = []
    yield from _serve(Recorder)


def _ctx(timeout: float | None = 5, lines: list[str] | None = None) -> StepContext:
    return StepContext(
        execution_id=1, step_key="http", timeout=timeout, log=(lines if lines is not None else []).append
    )


def _valid(params: dict) -> dict:
    """Every example here is also valid against the runbook schema of the action."""
    errors = list(get_action("http").validator.iter_errors(params))
    assert errors == [], [e.message for e in errors]
    return params


def test_get_with_json_checks(server: str) -> None:
    lines: list[str] = []
    params = _valid(
        {
            "url": f"{server}/health",
            "json_checks": [
                {"path": "$.status", "equals": "ok"},
                {"path": "replicas[0].lag", "equals": 3},
                {"path": "$.replicas[0]['name']", "equals": "r1"},
                {"path": "checks.db.ok", "equals": True},
                {"path": "$.checks.db", "exists": True},
                {"path": "$.maintenance", "exists": False},
            ],
        }
    )
    result = run_action("http", params, _ctx(lines=lines))
    assert result.ok, result.error
    assert result.output["status"] == 200
    assert result.output["json"] == HEALTH
    assert json.loads(result.output["body"]) == HEALTH
    assert 0 <= result.output["elapsed_ms"] < 5000
    assert set(result.output) == {"status", "body", "json", "elapsed_ms"}
    assert len(lines) == 1 and lines[0].startswith(f"GET {server}/health → 200 in ")


def test_failed_json_checks_name_the_path_and_url(server: str) -> None:
    params = _valid(
        {
            "url": f"{server}/health",
            "json_checks": [
                {"path": "$.status", "equals": "degraded"},
                {"path": "$.replicas[5].lag", "equals": 0},
                {"path": "$.status", "exists": False},
            ],
        }
    )
    result = run_action("http", params, _ctx())
    assert not result.ok
    assert result.error == (
        f"GET {server}/health: json check $.status: expected 'degraded', got 'ok'; "
        "json check $.replicas[5].lag: not found in the response; "
        "json check $.status: expected it to be absent, found 'ok'"
    )
    assert result.output["status"] == 200


def test_expected_status(server: str) -> None:
    down = run_action("http", _valid({"url": f"{server}/down"}), _ctx())
    assert not down.ok
    assert down.error == f"GET {server}/down: status 503 (expected 2xx)"
    assert down.output["json"] == {"status": "down"}
    assert run_action("http", _valid({"url": f"{server}/down", "expected_status": 503}), _ctx()).ok
    listed = run_action("http", _valid({"url": f"{server}/down", "expected_status": [200, 204]}), _ctx())
    assert listed.error == f"GET {server}/down: status 503 (expected 200 or 204)"
    assert run_action("http", _valid({"url": f"{server}/down", "expected_status": [200, 503]}), _ctx()).ok
    redirected = run_action("http", _valid({"url": f"{server}/redirect"}), _ctx())
    assert (redirected.ok, redirected.output["json"]) == (True, HEALTH)


def test_post_json_and_string_bodies_with_headers(server: str) -> None:
    params = _valid(
        {"method": "POST", "url": f"{server}/drain", "headers": {"X-Token": "t0k"}, "body": {"drain": True}}
    )
    result = run_action("http", params, _ctx())
    assert result.ok, result.error
    assert result.output["status"] == 201
    assert result.output["json"] == {
        "method": "POST",
        "content_type": "application/json",
        "token": "t0k",
        "body": '{"drain": true}',
    }
    params = _valid(
        {"method": "PUT", "url": f"{server}/x", "headers": {"Content-Type": "text/plain"}, "body": "raw text"}
    )
    echo = run_action("http", params, _ctx()).output["json"]
    assert (echo["method"], echo["content_type"], echo["body"]) == ("PUT", "text/plain", "raw text")


def test_non_json_response_and_large_body(server: str) -> None:
    text = run_action("http", _valid({"url": f"{server}/text", "json_checks": [{"path": "$.a"}]}), _ctx())
    assert not text.ok
    assert text.error == f"GET {server}/text: the response is not JSON; json checks failed"
    assert text.output["body"] == "plain text"
    assert text.output["json"] is None

    big = run_action("http", _valid({"url": f"{server}/big", "json_checks": [{"path": "$.blob"}]}), _ctx())
    assert big.ok, big.error  # the checks see the whole document …
    assert len(big.output["body"]) == MAX_BODY_CHARS  # … the output keeps only the start
    assert big.output["body_truncated"] is True
    assert big.output["json"] is None


def test_timeout_and_cancel_stop_waiting(server: str) -> None:
    started = time.monotonic()
    result = run_action("http", {"url": f"{server}/slow"}, _ctx(timeout=0.3))
    assert time.monotonic() - started < 1.5
    assert (result.ok, result.error) == (False, f"GET {server}/slow: timed out after 0.3s")

    ctx = _ctx(timeout=10)
    threading.Timer(0.2, ctx.cancelled.set).start()
    started = time.monotonic()
    result = run_action("http", {"url": f"{server}/slow"}, ctx)
    assert time.monotonic() - started < 1.5
    assert result.error == f"GET {server}/slow: cancelled"


def test_unreachable_server_names_the_url() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_action("http", {"url": f"http://127.0.0.1:{port}/health"}, _ctx())
    assert not result.ok
    assert result.error.startswith(f"GET http://127.0.0.1:{port}/health: request failed: ConnectionRefusedError")


def test_bad_url_is_refused_without_a_request() -> None:
    result = run_action("http", {"url": "file:///etc/passwd"}, _ctx())
    assert result.error == "http: url must start with http:// or https:// (got 'file:///etc/passwd')"


@pytest.mark.parametrize(
    ("path", "expected"),
    [("$", HEALTH), ("$.replicas[-1].name", "r1"), ("replicas.0.lag", 3), ("$['checks']['db']['ok']", True)],
)
def test_json_path(path: str, expected: object) -> None:
    assert json_path(HEALTH, path) == expected


# --- redirects ---------------------------------------------------------------------------------

SECRET = "s3cr3t-t0ken-value"
CREDENTIALS = {
    "Authorization": "Bearer abc",
    "Proxy-Authorization": "Basic xyz",
    "Cookie": "session=1",
    "X-Api-Key": f"key={SECRET}",  # carries a secret the step used
    "X-Trace": "keep-me",
}


def _secret_ctx() -> StepContext:
    ctx = _ctx()
    ctx.secret_values.add(SECRET)
    return ctx


def test_a_redirect_to_another_origin_drops_credentials(server: str, other_server: str) -> None:
    url = f"{server}/away?to={quote(other_server + '/headers')}"
    lines: list[str] = []
    ctx = _secret_ctx()
    ctx.log = lines.append
    result = run_action("http", _valid({"url": url, "headers": CREDENTIALS}), ctx)
    assert result.ok, result.error
    assert len(Recorder.seen) == 1
    received = {k.lower(): v for k, v in Recorder.seen[0].items()}
    for name in ("authorization", "proxy-authorization", "cookie", "x-api-key"):
        assert name not in received
    assert received["x-trace"] == "keep-me"
    assert result.output["json"]["X-Trace"] == "keep-me"
    assert lines[0] == (
        f"redirected to another origin ({other_server}/headers): "
        "not sending authorization, cookie, proxy-authorization, x-api-key"
    )


def test_a_same_origin_redirect_keeps_the_headers(server: str) -> None:
    result = run_action("http", _valid({"url": f"{server}/away?to=/headers", "headers": CREDENTIALS}), _secret_ctx())
    assert result.ok, result.error
    received = result.output["json"]
    assert received["Authorization"] == "Bearer abc"
    assert received["Cookie"] == "session=1"
    assert received["X-Api-Key"] == f"key={SECRET}"


def test_follow_redirects_false_returns_the_redirect(server: str, other_server: str) -> None:
    url = f"{server}/away?to={quote(other_server + '/headers')}"
    result = run_action("http", _valid({"url": url, "follow_redirects": False}), _ctx())
    assert (result.ok, result.output["status"]) == (False, 302)
    assert result.error == f"GET {url}: status 302 (expected 2xx)"
    assert run_action("http", _valid({"url": url, "follow_redirects": False, "expected_status": 302}), _ctx()).ok
    assert Recorder.seen == []


def test_a_redirect_to_another_scheme_is_not_followed(server: str) -> None:
    url = f"{server}/away?to={quote('ftp://127.0.0.1/x')}"
    result = run_action("http", _valid({"url": url}), _ctx())
    assert result.error == f"GET {url}: redirected to ftp://127.0.0.1/x: only http and https redirects are followed"


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("http://a.example/x", "http://a.example:80/y", True),
        ("https://a.example/x", "https://A.EXAMPLE:443/y", True),
        ("https://a.example/x", "http://a.example/x", False),  # downgrade
        ("http://a.example/x", "https://a.example/x", False),
        ("http://a.example/x", "http://a.example:8080/x", False),
        ("http://a.example/x", "http://b.example/x", False),
        ("http://a.example/x", "http://a.example.evil/x", False),
    ],
)
def test_origins(first: str, second: str, same: bool) -> None:
    assert (origin(first) == origin(second)) is same


# --- allowed hosts of the secrets the step used -------------------------------------------------


def _restricted(*hosts: str) -> StepContext:
    ctx = _secret_ctx()
    ctx.allowed_hosts["api_token"] = list(hosts)
    return ctx


def test_a_host_outside_a_secrets_allow_list_is_refused_before_connecting(other_server: str) -> None:
    port = other_server.rsplit(":", 1)[1]
    url = f"{other_server}/headers"
    result = run_action("http", _valid({"url": url, "headers": CREDENTIALS}), _restricted("api.example.com"))
    assert (result.ok, result.output) == (False, {})
    assert result.error == (
        f"GET {url}: secret 'api_token' may not be sent to 127.0.0.1:{port} (allowed hosts: api.example.com)"
    )
    assert SECRET not in result.error
    assert Recorder.seen == []  # never connected
    allowed = run_action("http", _valid({"url": url}), _restricted("api.example.com", f"127.0.0.1:{port}"))
    assert allowed.ok, allowed.error
    assert len(Recorder.seen) == 1


def test_every_redirect_hop_must_be_allowed(server: str, other_server: str) -> None:
    here, there = server.rsplit(":", 1)[1], other_server.rsplit(":", 1)[1]
    url = f"{server}/away?to={quote(other_server + '/headers')}"
    result = run_action("http", _valid({"url": url}), _restricted(f"127.0.0.1:{here}"))
    assert result.error == (
        f"GET {url}: redirected to {other_server}/headers: "
        f"secret 'api_token' may not be sent to 127.0.0.1:{there} (allowed hosts: 127.0.0.1:{here})"
    )
    assert Recorder.seen == []
    same_origin = run_action("http", _valid({"url": f"{server}/away?to=/health"}), _restricted(f"127.0.0.1:{here}"))
    assert same_origin.ok, same_origin.error
