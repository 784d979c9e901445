"""A pooled node (DRPLAN_DB_POOL_SIZE) after a real PostgreSQL outage: the first request once the server is back
gets a connection at once, rather than waiting for the pool's next, ever later, reconnection attempt (issue 15:
after a cluster test restarted PostgreSQL, a web node kept failing its health checks and requests hung)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
OUTAGE_S = 9  # the pool's own backoff would wait until ~15 s after the loss for its next attempt

pytestmark = pytest.mark.realsystem


def _database_settings(tmp_path: Path, database_url: str) -> dict[str, Any]:
    """The database settings a pooled node gets from drplan/settings.py."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    env.update(
        DRPLAN_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="drplan.settings",
        DATABASE_URL=database_url,
        DRPLAN_DB_POOL_SIZE="2",
    )
    code = (
        "import json; from django.conf import settings; d = settings.DATABASES['default']; "
        "print(json.dumps({'pool': d['OPTIONS']['pool'], 'checks': d['CONN_HEALTH_CHECKS']}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_after_an_outage_the_first_request_once_the_server_is_back_gets_a_connection(tmp_path: Path) -> None:
    pytest.importorskip("pgserver")
    import psycopg
    from psycopg_pool import ConnectionPool

    from core.localservers import postgres, procs

    root = Path(settings.VAR_DIR) / f"pool-pg-{os.getpid()}"  # reachable by the server's user, unlike tmp_path
    user = procs.server_user()
    procs.prepare(root, user)
    data, port = root / "data", procs.free_port()
    postgres.initdb(data, user)
    postgres.start(data, port, "pool", user)
    pool = None
    try:
        database = _database_settings(tmp_path, f"postgres://{postgres.SUPERUSER}@127.0.0.1:{port}/postgres")
        pool = ConnectionPool(  # as Django builds it (django/db/backends/postgresql/base.py)
            f"host=127.0.0.1 port={port} user={postgres.SUPERUSER} dbname=postgres connect_timeout=2",
            open=True,
            check=ConnectionPool.check_connection if database["checks"] else None,
            **database["pool"],
        )
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)

        postgres.stop(data, user, mode="immediate")
        lost = time.monotonic()
        # The request that finds its pooled connection dead fails; the pool starts replacing the connection.
        with pytest.raises(psycopg.OperationalError), pool.connection() as conn:
            conn.execute("SELECT 1")
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - lost)))  # the server stays down meanwhile
        postgres.start(data, port, "pool", user)

        with pool.connection(timeout=4) as conn:  # psycopg_pool's default would still be waiting for its attempt
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        if pool is not None:
            pool.close()
        postgres.stop(data, user, mode="immediate")
        shutil.rmtree(root, ignore_errors=True)
