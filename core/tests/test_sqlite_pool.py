"""core.dbbackends.sqlite3: SQLite connections reused across threads (under ASGI each request has a thread)."""

from __future__ import annotations

import os
import threading

import pytest
from django.db import connection, connections

from core.dbbackends.sqlite3.base import ConnectionPool, PooledConnection, pool

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the embedded SQLite database's backend")


def _in_thread(fn):
    """Run `fn` on a new thread, with that thread's own Django connection, and return its result."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out["value"]


def _thread_connection():
    db = connections["default"]
    db.ensure_connection()
    return db.connection


@pytest.mark.django_db(transaction=True)
def test_a_connection_closed_by_one_thread_serves_the_next():
    name = str(connection.settings_dict["NAME"])
    first = _in_thread(_thread_connection)  # the thread's connection, closed by Django as the thread ends
    assert pool.idle_count(name) >= 1
    assert _in_thread(_thread_connection) is first
    assert first.execute("SELECT 1").fetchone() == (1,)  # open: pooled, not closed


@pytest.mark.django_db(transaction=True)
def test_a_transaction_left_open_is_rolled_back_before_reuse():
    from plans.models import Site

    def leave_open():
        db = connections["default"]
        db.set_autocommit(False)
        Site.objects.create(code="left-open", name="Left open")
        assert db.connection.in_transaction
        db.close()  # closed without commit, as a dying request would

    _in_thread(leave_open)

    def reuse():
        db = connections["default"]
        db.ensure_connection()
        return db.connection.in_transaction, Site.objects.filter(code="left-open").exists()

    assert _in_thread(reuse) == (False, False)


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_saw_an_error_is_closed_not_pooled():
    def fail():
        db = connections["default"]
        db.ensure_connection()
        conn = db.connection
        with pytest.raises(Exception, match="no such table"), db.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")
        return conn

    conn = _in_thread(fail)
    with pytest.raises(Exception, match="closed"):
        conn.execute("SELECT 1")


def test_the_pool_keeps_at_most_its_size_and_only_its_process_connections(tmp_path):
    path = str(tmp_path / "db.sqlite3")
    small = ConnectionPool(size=2)
    conns = [PooledConnection(path) for _ in range(3)]
    assert [small.give(path, c) for c in conns] == [True, True, False]
    assert small.take(path) is conns[1] and small.take(path) is conns[0] and small.take(path) is None

    parent = PooledConnection(path)
    parent.opened_by = os.getpid() + 1  # as in a forked child: opened by another process
    assert not small.give(path, parent)
    small._idle[path] = [parent]  # a parent's idle connection inherited through fork
    assert small.take(path) is None  # never used by this process
    for conn in conns:
        conn.close()


def test_a_forked_child_never_uses_its_parents_connections(tmp_path):
    path = str(tmp_path / "db.sqlite3")
    shared = ConnectionPool()
    conn = PooledConnection(path)
    conn.execute("CREATE TABLE t (x)")
    assert shared.give(path, conn)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether it got the parent's connection
        try:
            os.write(write, b"1" if shared.take(path) is not None else b"0")
        finally:
            os._exit(0)
    os.close(write)
    got = os.read(read, 1)
    os.waitpid(pid, 0)
    os.close(read)
    assert got == b"0"
    assert shared.take(path) is conn  # still the parent's to use
    conn.close()


@pytest.mark.django_db(transaction=True)
def test_a_connection_closed_with_foreign_keys_off_comes_back_enforcing_them():
    def turn_off():
        db = connections["default"]
        db.disable_constraint_checking()  # as a migration does, and a failed one may leave it
        return db.connection

    conn = _in_thread(turn_off)
    assert _in_thread(_thread_connection) is conn
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
