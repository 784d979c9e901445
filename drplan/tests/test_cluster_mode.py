"""A node started in cluster mode without what every node must share refuses to start, naming each gap."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _check(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    env.update(DRPLAN_VAR_DIR=str(tmp_path), DRPLAN_CLUSTER="1", **extra)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_cluster_mode_on_the_embedded_defaults_names_every_missing_shared_setting(tmp_path: Path) -> None:
    result = _check(tmp_path)
    assert result.returncode != 0
    assert "cluster mode (DRPLAN_CLUSTER=1): REDIS_URL is not set" in result.stderr
    for gap in ("DATABASE_URL must name a PostgreSQL server", "DRPLAN_SECRET_KEY is not set", "DRPLAN_SIGNING_KEY"):
        assert gap in result.stderr


def test_cluster_mode_with_everything_shared_starts(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    key.write_text("unused by check")
    cert.write_text("unused by check")
    result = _check(
        tmp_path,
        DATABASE_URL="postgres://u:p@127.0.0.1:1/db",
        REDIS_URL="redis://127.0.0.1:1/0",
        DRPLAN_SECRET_KEY="x" * 50,
        DRPLAN_SIGNING_KEY=str(key),
        DRPLAN_SIGNING_CERT=str(cert),
    )
    assert "cluster mode" not in result.stderr


def _settings_of(tmp_path: Path, expression: str, **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    env.update(DRPLAN_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="drplan.settings", **extra)
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_pooled_node_keeps_at_most_its_pool_of_postgresql_connections(tmp_path: Path) -> None:
    """Under ASGI each request thread would keep its own persistent connection; a pool bounds them per process."""
    url = "postgres://u:p@127.0.0.1:1/db"
    database = "[settings.DATABASES['default'][key] for key in ('ENGINE', 'CONN_MAX_AGE')], " + (
        "settings.DATABASES['default']['OPTIONS'].get('pool')"
    )
    assert _settings_of(tmp_path, database, DATABASE_URL=url, DRPLAN_DB_POOL_SIZE="6") == (
        "['core.dbbackends.postgresql', 0] {'min_size': 1, 'max_size': 6, 'timeout': 30.0, 'reconnect_timeout': 5}"
    )
    assert _settings_of(tmp_path, database, DATABASE_URL=url) == "['django.db.backends.postgresql', 60] None"


def test_the_redis_channel_layer_is_publish_subscribe_and_waits_longer_than_a_blocking_read(tmp_path: Path) -> None:
    layer = _settings_of(tmp_path, "settings.CHANNEL_LAYERS['default']", REDIS_URL="redis://127.0.0.1:1/0")
    assert layer == (
        "{'BACKEND': 'channels_redis.pubsub.RedisPubSubChannelLayer', "
        "'CONFIG': {'hosts': [{'address': 'redis://127.0.0.1:1/0', 'socket_timeout': 15}]}}"
    )
