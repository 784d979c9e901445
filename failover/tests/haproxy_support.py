"""Debian's HAProxy in front of two real HTTP backends on 127.0.0.1, for the haproxy actions' tests and the
active-active template: HAProxy runs in its own session with its own configuration (its runtime API on a unix
socket and on a TCP port, both at admin level), stopped by its pid; the backends are HTTP servers in threads
that answer with their site's name; a client thread sends requests through HAProxy without pause and counts
the answers per site and the failures."""

from __future__ import annotations

import contextlib
import csv
import http.client
import io
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.localservers.procs import free_port, port_open
from failover.tests.engine_support import wait_for

HOST = "127.0.0.1"
BACKEND = "app"

CONFIG = """\
global
    stats socket {socket} mode 600 level admin
    stats socket ipv4@{host}:{api_port} level admin
    maxconn 512

defaults
    mode http
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 15s
    timeout server 15s
    timeout queue 10s

frontend web
    bind {host}:{port}
    default_backend {backend}

backend {backend}
    balance roundrobin
    option httpchk GET /health
    default-server inter 500ms fall 3 rise 2
    server site-a {host}:{port_a} check weight 100
    server site-b {host}:{port_b} check weight 0
"""


class _Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    site = ""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        time.sleep(0.005 if self.path != "/health" else 0)  # a request takes a moment: drain has work to wait for
        body = self.site.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # HAProxy's health checks reset their connections; nothing to report


def _site(name: str) -> ThreadingHTTPServer:
    server = _Quiet((HOST, 0), type(f"Site_{name}", (_Site,), {"site": name}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class HAProxy:
    port: int
    api_port: int
    socket: str
    proc: subprocess.Popen = field(repr=False)
    sites: dict[str, ThreadingHTTPServer] = field(repr=False)
    folder: str = ""

    @property
    def api_address(self) -> str:
        return f"{HOST}:{self.api_port}"

    def command(self, line: str) -> str:
        import socket as sockets

        with sockets.socket(sockets.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(self.socket)
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def weights(self) -> dict[str, int]:
        lines = self.command(f"show servers state {BACKEND}").splitlines()[2:]
        return {parts[3]: int(parts[7]) for parts in (line.split() for line in lines if line.strip())}

    def status(self, server: str) -> str:
        """The server's status in `show stat` (UP, DRAIN, MAINT ...)."""
        rows = csv.DictReader(io.StringIO(self.command("show stat").removeprefix("# ")))
        return next(row["status"] for row in rows if row["pxname"] == BACKEND and row["svname"] == server)

    def get(self, timeout: float = 10.0) -> str:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            connection.request("GET", "/", headers={"Connection": "close"})
            response = connection.getresponse()
            body = response.read().decode()
            if response.status != 200:
                raise RuntimeError(f"status {response.status}: {body[:200]}")
            return body
        finally:
            connection.close()

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for site in self.sites.values():
            site.shutdown()
            site.server_close()
        shutil.rmtree(self.folder, ignore_errors=True)


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if not found:
        pytest.skip("haproxy is not installed: run scripts/ensure_haproxy.sh (Debian's haproxy)")
    return found


def start_haproxy(root: Path) -> HAProxy:
    """HAProxy with backend `app`: site-a (weight 100) and site-b (weight 0), both up, health-checked."""
    binary = haproxy_binary()
    sites = {name: _site(name) for name in ("site-a", "site-b")}
    folder = tempfile.mkdtemp(prefix="hap-")  # a short path: a unix socket's is at most 107 bytes
    socket_path = f"{folder}/admin.sock"
    port, api_port = free_port(), free_port()
    config = root / "haproxy.cfg"
    config.write_text(
        CONFIG.format(
            socket=socket_path,
            host=HOST,
            api_port=api_port,
            port=port,
            backend=BACKEND,
            port_a=sites["site-a"].server_address[1],
            port_b=sites["site-b"].server_address[1],
        )
    )
    subprocess.run([binary, "-c", "-q", "-f", str(config)], check=True, capture_output=True, timeout=60)
    log = root / "haproxy.log"
    with log.open("ab") as handle:
        proc = subprocess.Popen(
            [binary, "-db", "-f", str(config)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=root,
            start_new_session=True,
        )
    proxy = HAProxy(port, api_port, socket_path, proc, sites, folder)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"haproxy exited {proc.returncode}: {log.read_text()}")
        if not (port_open(port) and port_open(api_port) and Path(socket_path).exists()):
            return False
        return proxy.status("site-a") == proxy.status("site-b") == "UP"  # both servers' health checks passed

    try:
        wait_for(ready, timeout=30)
    except BaseException:
        proxy.stop()
        raise
    return proxy


class Client:
    """Sends GET / through HAProxy one after the other from a thread until stopped; counts answers per site
    and failures (any error or non-200 answer, with the first few reasons)."""

    def __init__(self, proxy: HAProxy) -> None:
        self.proxy = proxy
        self.sites: Counter[str] = Counter()
        self.failures = 0
        self.reasons: list[str] = []
        self.last: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                site = self.proxy.get()
            except Exception as exc:
                self.failures += 1
                if len(self.reasons) < 5:
                    self.reasons.append(f"{type(exc).__name__}: {exc}")
                continue
            self.sites[site] += 1
            self.last = [*self.last[-49:], site]

    def start(self) -> Client:
        self._thread.start()
        wait_for(lambda: sum(self.sites.values()) >= 5 or self.failures > 0, timeout=30)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def total(self) -> int:
        return sum(self.sites.values()) + self.failures


@contextlib.contextmanager
def running_haproxy(root: Path) -> Iterator[HAProxy]:
    proxy = start_haproxy(root)
    try:
        yield proxy
    finally:
        proxy.stop()
