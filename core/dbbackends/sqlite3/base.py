"""Django's SQLite backend, with the connections of a process reused across threads.

Under ASGI every request runs its synchronous code on a thread of its own (asgiref's ThreadSensitiveContext),
so Django's per-thread persistent connections never persist: each request opened a new SQLite connection
(functions registered, PRAGMAs run, the whole schema parsed by its first statement) and closed it at its end,
~2 ms of a plans-list request's CPU under load (bench/api.py). Here a connection that Django closes goes back
to a small pool of its process instead, rolled back if a transaction was left open, and the next connect of
any thread takes it. A connection that saw a database error is closed, as Django would.

Django opens SQLite connections with check_same_thread=False and applies its own thread-sharing checks to the
wrapper, so an idle connection may serve another thread. In-memory databases are never closed by Django and
so never pooled. SQLite forbids using a connection opened before fork() in the child: each connection records
the process that opened it, and another process never takes it from the pool nor puts it back.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

from django.db.backends.sqlite3 import base

POOL_SIZE = 8  # idle connections kept per database file and process


class PooledConnection(sqlite3.Connection):
    """An sqlite3 connection that knows the process that opened it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened_by = os.getpid()


class ConnectionPool:
    """Idle connections by database file. Thread-safe; at most POOL_SIZE per file."""

    def __init__(self, size: int = POOL_SIZE) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._idle: dict[str, list[PooledConnection]] = {}
        self._inherited: list[PooledConnection] = []  # a parent's, after fork: never used, never closed here

    def take(self, name: str) -> PooledConnection | None:
        with self._lock:
            idle = self._idle.get(name, [])
            while idle:
                conn = idle.pop()
                if conn.opened_by == os.getpid():
                    return conn
                self._inherited.append(conn)
        return None

    def give(self, name: str, conn: PooledConnection) -> bool:
        """Keep `conn` for reuse; False when it is not this process's or the pool is full (close it then)."""
        if getattr(conn, "opened_by", None) != os.getpid():
            return False
        with self._lock:
            idle = self._idle.setdefault(name, [])
            if len(idle) >= self.size:
                return False
            idle.append(conn)
            return True

    def idle_count(self, name: str) -> int:
        with self._lock:
            return len(self._idle.get(name, []))


pool = ConnectionPool()


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        params.setdefault("factory", PooledConnection)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if not self.is_in_memory_db():
            conn = pool.take(str(self.settings_dict["NAME"]))
            if conn is not None:
                return conn
        return super().get_new_connection(conn_params)

    def _close(self) -> None:
        conn = self.connection
        if conn is not None and not self.errors_occurred and not self.is_in_memory_db():
            try:
                if conn.in_transaction:
                    conn.rollback()
                conn.execute("PRAGMA foreign_keys = ON")  # as Django opens it, whatever its last user turned off
            except sqlite3.Error:
                pass  # closed below, as Django would
            else:
                if pool.give(str(self.settings_dict["NAME"]), conn):
                    return
        super()._close()
