"""Django's `migrate`, without the PostgreSQL session limits every other connection has.

`DRPLAN_DB_STATEMENT_TIMEOUT` (60 s) and `DRPLAN_DB_IDLE_IN_TRANSACTION_TIMEOUT` (30 s) bound how long a request or
a coordinator's turn can hang, for fencing (drplan/settings.py). A migration is run by an operator, may rewrite a
large table in one statement or run Python between statements inside its transaction for longer than that, and
must not be cancelled halfway by a limit meant for something else. The limits come back when the command ends
(the connection may be a pooled one)."""

from __future__ import annotations

import contextlib
from typing import Any

from django.core.management.commands.migrate import Command as DjangoMigrateCommand
from django.db import DatabaseError, connections

LIFTED = ("statement_timeout", "idle_in_transaction_session_timeout")


class Command(DjangoMigrateCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            return super().handle(*args, **options)
        with connection.cursor() as cursor:
            for setting in LIFTED:
                cursor.execute(f"SET {setting} = 0")
        try:
            return super().handle(*args, **options)
        finally:
            # Back to the values the connection started with; a connection broken by a failed migration is
            # discarded anyway, and its error must not hide the migration's.
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                for setting in LIFTED:
                    cursor.execute(f"RESET {setting}")
