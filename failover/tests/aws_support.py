"""The AWS API emulator for the aws actions' tests: moto's standalone server, a separate process on a free
127.0.0.1 port stopped by its pid, and a relay in front of it that can hold a transitional state.

moto completes every change at once: StartInstances leaves the instance running, PromoteReadReplica leaves
it available, every Route 53 change is INSYNC. AWS takes seconds to minutes. The relay passes each request
to the emulator and its answer back unchanged, except that, while told to, it rewrites the final state in
the answers of one operation (e.g. `<name>running</name>` into `<name>pending</name>` in DescribeInstances).
So the actions' waits, their timeout and their cancel run against the emulator's own answers.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3

from core.exceptions import InvalidInput
from failover.engine.actions import StepContext

REGION = "eu-west-1"
KEY_ID = "AKIADRPLANTESTKEY0007"
SECRET_KEY = "drplan/Secret+Access/Key-never-shown-0123456789"
TOKEN = "drplan-session-token-never-shown-ABCDEFGHIJ"
HIDDEN = (KEY_ID, SECRET_KEY, TOKEN)


def credentials(endpoint: str, **extra: Any) -> str:
    value = {
        "aws_access_key_id": KEY_ID,
        "aws_secret_access_key": SECRET_KEY,
        "aws_session_token": TOKEN,
        "region_name": REGION,
        "endpoint_url": endpoint,
        **extra,
    }
    return json.dumps(value)


class Ctx(StepContext):
    """A StepContext whose secret store is a dict and whose log is a list."""

    def __init__(self, secrets: dict[str, str], timeout: float | None = 20) -> None:
        self.lines: list[str] = []

        def secret(name: str) -> str:
            if name not in secrets:
                raise InvalidInput(f"secret '{name}' is not defined")
            return secrets[name]

        super().__init__(execution_id=1, step_key="aws", timeout=timeout, log=self.lines.append, secret=secret)


START_TIMEOUT = 90.0  # importing every moto backend takes a while on a loaded machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    """`python -m moto.server` on 127.0.0.1; `stop()` ends it by its pid."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.proc.returncode}; see {log}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not answer within {START_TIMEOUT:g}s; see {log}") from None
                time.sleep(0.1)

    def reset(self) -> None:
        """Forget every resource (between tests)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass

    def client(self, service: str) -> Any:
        """A boto3 client straight to the emulator, to set up what a test needs."""
        return boto3.session.Session(
            aws_access_key_id="setup", aws_secret_access_key="setup", region_name=REGION
        ).client(service, endpoint_url=self.url)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


class Relay:
    """An HTTP relay to `upstream` on a free 127.0.0.1 port. `hold(operation, final, transitional)`: in the
    answers to requests containing `operation` (e.g. b"Action=DescribeInstances", b"/change/"), `final` is
    replaced by `transitional` until `release()`. Counts requests and held answers."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.rule: tuple[bytes, bytes, bytes] | None = None
        self.requests = 0
        self.held = 0
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, answer = relay.forward(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, bytes]:
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            status, response_headers = response.status, response.getheaders()
        finally:
            connection.close()
        with self.lock:
            self.requests += 1
            rule = self.rule
            if rule is not None and rule[0] in f"{method} {path}\n".encode() + body and rule[1] in answer:
                answer = answer.replace(rule[1], rule[2])
                self.held += 1
            self.changed.notify_all()
        return status, response_headers, answer

    def hold(self, operation: bytes, final: bytes, transitional: bytes) -> None:
        with self.lock:
            self.rule = (operation, final, transitional)
            self.held = 0

    def release(self) -> None:
        with self.lock:
            self.rule = None

    def wait_held(self, count: int, timeout: float = 30.0) -> None:
        """Until `count` answers have been held (the action is waiting)."""
        with self.lock:
            if not self.changed.wait_for(lambda: self.held >= count, timeout):
                raise AssertionError(f"{self.held} answer(s) held within {timeout:g}s, expected {count}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Blackhole:
    """A port that accepts connections and never answers (an endpoint that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


def make_replica(moto: MotoServer) -> None:
    """orders (a PostgreSQL primary) and orders-dr, its read replica."""
    rds = moto.client("rds")
    rds.create_db_instance(
        DBInstanceIdentifier="orders",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="orders",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
    )
    rds.create_db_instance_read_replica(DBInstanceIdentifier="orders-dr", SourceDBInstanceIdentifier="orders")
