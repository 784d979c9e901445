"""`manage.py migrate` on PostgreSQL runs without the statement and idle-in-transaction limits every other
connection has (core/management/commands/migrate.py), and gives them back when it ends."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models.signals import pre_migrate

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the limits are PostgreSQL session settings"),
]


def limits() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, setting FROM pg_settings"
            " WHERE name IN ('statement_timeout', 'idle_in_transaction_session_timeout')"
        )
        return dict(cursor.fetchall())


def test_migrations_run_without_the_session_limits_which_come_back_afterwards():
    before = limits()
    assert before["statement_timeout"] != "0" and before["idle_in_transaction_session_timeout"] != "0"
    seen: list[dict[str, str]] = []

    def during(**kwargs) -> None:
        seen.append(limits())

    pre_migrate.connect(during, dispatch_uid="test-migrate-limits")
    try:
        call_command("migrate", verbosity=0)
    finally:
        pre_migrate.disconnect(dispatch_uid="test-migrate-limits")
    assert seen, "migrate sent no pre_migrate signal"
    assert all(s == {"statement_timeout": "0", "idle_in_transaction_session_timeout": "0"} for s in seen)
    assert limits() == before
