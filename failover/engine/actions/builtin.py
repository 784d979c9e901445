"""Import every built-in executor so each registers itself."""

from failover.engine.actions import (  # noqa: F401
    ansible,
    aws,
    basic,
    haproxy,
    http,
    mariadb,
    postgres,
    python_call,
    redis_replication,
    shell,
    sql,
    ssh,
    tcp,
)
