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
