"""Django's PostgreSQL backend, with a pooled connection checked as it leaves the pool (DRPLAN_DB_POOL_SIZE).

Django's own check (CONN_HEALTH_CHECKS with a pool) is psycopg_pool's: a broken connection is discarded and the
pool sleeps 1, 2, 4, 8 … s before it tries the next idle one. After a database restart every idle connection is
broken, so with six of them the first request of a web node waited about 30 s and failed (seen on the cluster,
drplan/tests/test_cluster.py). Here the first broken connection makes the pool check all its idle connections at
once (one round trip each; broken ones are replaced in the background) and the request takes the next connection
the pool has or opens, without a backoff (drplan/tests/test_db_pool.py).
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        pool = self.pool
        if pool is None:
            return connection
        try:
            pool.check_connection(connection)
        except Exception:
            pool.putconn(connection)  # broken: the pool discards it and opens a replacement
            pool.check()  # the other idle connections, all at once: after a restart they are broken too
            connection = pool.getconn()
        return connection
