"""Settings come from the environment with safe defaults, and production refuses unsafe ones."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    clean.update({"DRPLAN_VAR_DIR": str(tmp_path), **env})
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='drplan.settings'; "
        "from django.conf import settings; "
        "print(settings.DATABASES['default']['ENGINE'], settings.DEBUG, settings.Q_CLUSTER.get('orm'))"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)


def test_production_without_secret_key_refuses_to_start(tmp_path):
    result = _load_settings(tmp_path, DRPLAN_ENV="production")
    assert result.returncode != 0
    assert "DRPLAN_SECRET_KEY must be set" in result.stderr


def test_production_with_secret_key_starts_without_debug(tmp_path):
    result = _load_settings(tmp_path, DRPLAN_ENV="production", DRPLAN_SECRET_KEY="x" * 50, DRPLAN_DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "False", "default"]


def test_development_generates_and_keeps_a_private_secret_key(tmp_path):
    assert _load_settings(tmp_path).returncode == 0
    key_file = tmp_path / "secret_key"
    first = key_file.read_text()
    assert len(first) >= 50
    assert key_file.stat().st_mode & 0o077 == 0
    assert _load_settings(tmp_path).returncode == 0
    assert key_file.read_text() == first


def test_database_url_selects_postgresql(tmp_path):
    result = _load_settings(tmp_path, DATABASE_URL="postgres://u:p@127.0.0.1:5432/drplan")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "django.db.backends.postgresql"


def _python_actions(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    clean.update({"DRPLAN_VAR_DIR": str(tmp_path), **env})
    code = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE']='drplan.settings'; "
        "from django.conf import settings; print(','.join(settings.DRPLAN_PYTHON_ACTIONS))"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)


def test_python_action_allow_list_comes_from_drplan_python_actions_and_never_allows_the_lab_in_production(tmp_path):
    development = _python_actions(tmp_path)
    assert development.stdout.strip() == "failover.engine.extensions,failover.lab.actions"
    production = {"DRPLAN_ENV": "production", "DRPLAN_SECRET_KEY": "x" * 50}
    assert _python_actions(tmp_path, **production).stdout.strip() == "failover.engine.extensions"
    allowed = " acme.dr_actions , failover.engine.extensions"
    custom = _python_actions(tmp_path, **production, DRPLAN_PYTHON_ACTIONS=allowed)
    assert custom.stdout.strip() == "acme.dr_actions,failover.engine.extensions"
    refused = _python_actions(tmp_path, **production, DRPLAN_PYTHON_ACTIONS="acme.dr,failover.lab.actions")
    assert refused.returncode != 0
    assert "DRPLAN_PYTHON_ACTIONS names the DR lab" in refused.stderr
    assert _python_actions(tmp_path, DRPLAN_PYTHON_ACTIONS="").stdout.strip() == ""
