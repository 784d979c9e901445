from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from core import audit
from core.choices import AuditAction, AuthMethod
from core.models import AppendOnlyError, AuditEntry
from plans.models import Site


def _record_sites(count: int) -> list[AuditEntry]:
    entries = []
    for index in range(count):
        site = Site.objects.create(code=f"s{index}", name=f"Site {index}")
        entries.append(audit.record(AuditAction.CREATE, site, after=audit.snapshot(site)))
    return entries


def _verify() -> str:
    out = StringIO()
    call_command("audit", "verify", stdout=out)
    return out.getvalue().strip()


def _raw(sql: str, params: list) -> None:
    table = connection.ops.quote_name(AuditEntry._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=table), params)


@pytest.mark.django_db
class TestVerifyCommand:
    def test_intact_chain(self) -> None:
        _record_sites(5)
        assert _verify() == "audit chain intact: 5 entries"

    def test_empty_chain_is_intact(self) -> None:
        assert _verify() == "audit chain intact: 0 entries"

    def test_edited_entry_is_named(self) -> None:
        _record_sites(5)
        _raw("UPDATE {table} SET object_repr = %s WHERE seq = %s", ["forged", 3])
        with pytest.raises(CommandError) as excinfo:
            _verify()
        assert excinfo.value.returncode == 1
        assert str(excinfo.value) == (
            "audit chain BROKEN at entry #3: entry #3 was modified: its content no longer matches its hash"
        )

    def test_edited_snapshot_is_named(self) -> None:
        _record_sites(3)
        _raw("UPDATE {table} SET after = %s WHERE seq = %s", ['{"code": "evil"}', 2])
        with pytest.raises(CommandError, match=r"^audit chain BROKEN at entry #2: entry #2 was modified"):
            _verify()

    def test_edit_with_recomputed_hash_breaks_the_next_link(self) -> None:
        entries = _record_sites(4)
        forged = AuditEntry.objects.get(seq=2)
        forged.comment = "nothing to see"
        _raw(
            "UPDATE {table} SET comment = %s, hash = %s WHERE seq = %s", [forged.comment, audit.compute_hash(forged), 2]
        )
        assert entries[2].seq == 3
        with pytest.raises(CommandError) as excinfo:
            _verify()
        assert str(excinfo.value) == "audit chain BROKEN at entry #3: entry #3 does not link to entry #2"

    def test_deleted_middle_entry_is_named(self) -> None:
        _record_sites(5)
        _raw("DELETE FROM {table} WHERE seq = %s", [3])
        with pytest.raises(CommandError) as excinfo:
            _verify()
        assert excinfo.value.returncode == 1
        assert str(excinfo.value) == "audit chain BROKEN at entry #3: entry #3 is missing (next present is #4)"

    def test_deleted_last_entry_is_named(self) -> None:
        _record_sites(5)
        _raw("DELETE FROM {table} WHERE seq = %s", [5])
        with pytest.raises(CommandError) as excinfo:
            _verify()
        assert str(excinfo.value) == (
            "audit chain BROKEN at entry #5: entries #5..#5 are missing (the chain head records #5)"
        )

    def test_tail_prints_recent_entries_oldest_first(self) -> None:
        _record_sites(3)
        out = StringIO()
        call_command("audit", "tail", "-n", "2", stdout=out)
        lines = out.getvalue().strip().splitlines()
        assert len(lines) == 2
        assert lines[0].startswith("#2 ") and "create plans.site:" in lines[0] and "Site 1 (s1)" in lines[0]
        assert lines[1].startswith("#3 ") and "system (system)" in lines[1]


@pytest.mark.django_db
class TestAppendOnly:
    def test_orm_refuses_changes(self) -> None:
        entry = _record_sites(1)[0]
        entry.comment = "changed"
        with pytest.raises(AppendOnlyError):
            entry.save()
        with pytest.raises(AppendOnlyError):
            entry.delete()
        with pytest.raises(AppendOnlyError):
            AuditEntry.objects.filter(pk=entry.pk).update(comment="changed")
        with pytest.raises(AppendOnlyError):
            AuditEntry.objects.all().delete()
        stored = AuditEntry.objects.get()
        assert stored.comment == ""
        assert audit.verify_chain() is None


@pytest.mark.django_db
class TestRecord:
    def test_entries_link_in_sequence(self, users: dict) -> None:
        site = Site.objects.create(code="fra1", name="Frankfurt")
        first = audit.record(AuditAction.CREATE, site, actor=users["approver"], auth_method=AuthMethod.TOKEN)
        second = audit.record(AuditAction.DELETE, site, comment="bye")
        assert (first.seq, second.seq) == (1, 2)
        assert first.prev_hash == audit.GENESIS_HASH
        assert second.prev_hash == first.hash
        assert (first.actor_username, first.actor_id, first.auth_method) == ("approver", users["approver"].pk, "token")
        assert (second.actor_username, second.actor_id, second.auth_method) == ("", None, "system")
        assert (first.object_type, first.object_id, first.object_repr) == ("plans.site", str(site.pk), str(site))

    def test_snapshot_redacts_declared_secrets(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(Site, "AUDIT_REDACT", ("location",), raising=False)
        site = Site.objects.create(code="fra1", name="Frankfurt", location="secret vault")
        snap = audit.snapshot(site)
        assert snap["location"] == audit.REDACTED
        assert snap["name"] == "Frankfurt"
        entry = audit.record(AuditAction.CREATE, site, after=snap)
        assert "secret vault" not in str(AuditEntry.objects.get(pk=entry.pk).after)

    def test_snapshot_redacts_user_password(self, users: dict) -> None:
        snap = audit.snapshot(users["viewer"])
        assert snap["password"] == audit.REDACTED
        assert snap["username"] == "viewer"


THREADS, PER_WORKER = 4, 10


def _assert_sequential(rows: list[tuple[int, str, str, str]]) -> None:
    """rows: (seq, prev_hash, hash, object_id) ordered by seq."""
    assert [row[0] for row in rows] == list(range(1, THREADS * PER_WORKER + 1))
    assert len({row[3] for row in rows}) == THREADS * PER_WORKER
    previous = audit.GENESIS_HASH
    for _seq, prev_hash, hash_, _object_id in rows:
        assert prev_hash == previous
        previous = hash_


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_form_one_sequential_chain(tmp_path: Path) -> None:
    """Concurrent writers never fork the chain: seq 1..N, each entry linking to the one before.

    PostgreSQL: threads in this process (the chain head is locked with SELECT … FOR UPDATE).
    SQLite: the test database is a shared in-memory one that refuses concurrent writers outright,
    so real processes append to a file database, as the web server and workers do in production;
    the same database then checks `manage.py audit verify` exit codes from the command line.
    """
    if connection.vendor == "sqlite":
        _concurrent_processes_on_sqlite_file(tmp_path)
        return
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def append(worker: int) -> None:
        try:
            barrier.wait()
            for index in range(PER_WORKER):
                audit.record(AuditAction.EXECUTE, object_type="test.worker", object_id=f"{worker}-{index}")
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    _assert_sequential(list(AuditEntry.objects.order_by("seq").values_list("seq", "prev_hash", "hash", "object_id")))
    assert audit.verify_chain() is None


def _concurrent_processes_on_sqlite_file(tmp_path: Path) -> None:
    db_path = tmp_path / "chain.sqlite3"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DRPLAN_SQLITE_PATH"] = str(db_path)
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, capture_output=True, timeout=120)
    script = (
        "from core import audit\n"
        f"for i in range({PER_WORKER}):\n"
        "    audit.record('execute', object_type='test.worker', object_id=f'{W}-{i}')\n"
    )
    workers = [
        subprocess.Popen(
            [*manage, "shell", "-c", script.replace("{W}", str(n))],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in range(THREADS)
    ]
    for worker in workers:
        _out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()

    with closing(sqlite3.connect(db_path)) as db:
        rows = db.execute("SELECT seq, prev_hash, hash, object_id FROM core_auditentry ORDER BY seq").fetchall()
    _assert_sequential(rows)

    verify = subprocess.run([*manage, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert (verify.returncode, verify.stdout.strip()) == (0, f"audit chain intact: {THREADS * PER_WORKER} entries")

    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("UPDATE core_auditentry SET actor_username = 'mallory' WHERE seq = 7")
    verify = subprocess.run([*manage, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 1
    assert "audit chain BROKEN at entry #7: entry #7 was modified" in verify.stderr
