"""Parameter schemas of the infrastructure actions, one module per family (imported by runbooks.actions,
which registers them): PostgreSQL, Redis, MariaDB, HAProxy, SSH and AWS. The executors live in
failover/engine/actions/."""

from runbooks.action_schemas import ansible, aws, haproxy, mariadb, postgres, redis_replication, ssh  # noqa: F401
