"""The orders app's admin API (lab/httpapi.py) on a real socket: the token is required and checked, a bad
body is refused naming the field and changes nothing, a repoint rewrites route.json once (pointing where it
already points changes nothing), and /status waits on state, answering 503 when the state is not reached."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.localservers.procs import free_port
from lab.app import OrdersApp
from lab.httpapi import serve
from lab.state import read_route, switch_route, write_json_atomic

TOKEN = "tok-Zq7-admin"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    write_json_atomic(tmp_path / "state.json", {"postgres": {"pg1": {"port": 5001}, "pg2": {"port": 5002}}})
    switch_route("postgres", {"node": "pg1", "host": "127.0.0.1", "port": 5001, "dbname": "lab"}, tmp_path)
    app = OrdersApp(tmp_path, 0.02)  # its writer loop is not started: no database needed here
    port = free_port()
    server = serve(app, port, TOKEN)
    try:
        yield f"http://127.0.0.1:{port}", tmp_path
    finally:
        server.shutdown()
        server.server_close()
        app.log.close()


def call(url: str, body: object = None, token: str | None = TOKEN, method: str = "POST") -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_repoint_needs_the_token_and_a_valid_body(api: tuple[str, Path]) -> None:
    base, root = api
    before = read_route(root)
    good = {"service": "postgres", "dsn": "postgresql://postgres@127.0.0.1:5002/lab"}
    assert call(f"{base}/admin/route", good, token=None)[0] == 401
    assert call(f"{base}/admin/route", good, token="wrong")[0] == 401
    assert call(f"{base}/admin/route", {"service": "mysql"}) == (400, {"error": "service: must be postgres or redis"})
    no_dsn = (400, {"error": "dsn: required for service postgres"})
    assert call(f"{base}/admin/route", {"service": "postgres"}) == no_dsn
    bad_dsn = {"service": "postgres", "dsn": "postgresql://h1,h2/lab"}
    assert call(f"{base}/admin/route", bad_dsn) == (400, {"error": "dsn: needs one host and a port"})
    bad_url = {"service": "redis", "url": "http://127.0.0.1:6379"}
    assert call(f"{base}/admin/route", bad_url) == (400, {"error": "url: not a redis://host:port URL"})
    assert read_route(root) == before  # nothing changed

    status, body = call(f"{base}/admin/route", good)
    assert status == 200 and (body["node"], body["port"], body["epoch"], body["changed"]) == ("pg2", 5002, 2, True)
    assert read_route(root)["postgres"]["node"] == "pg2"
    assert call(f"{base}/admin/route", good)[1]["changed"] is False  # already there: same epoch
    assert read_route(root)["postgres"]["epoch"] == 2


def test_status_waits_on_state_and_says_when_it_is_not_reached(api: tuple[str, Path]) -> None:
    base, _ = api
    status, body = call(f"{base}/status", method="GET")
    assert status == 200 and body["acked_total"] == 0
    status, body = call(f"{base}/status?wait_ack=0.3", method="GET")  # nothing acknowledged: the wait ends
    assert status == 503 and body["acked_in_epoch"] == 0
    assert call(f"{base}/status?wait_ack=soon", method="GET")[0] == 400
