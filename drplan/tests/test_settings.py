"""Settings come from the environment with safe defaults, and production refuses unsafe ones."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _environment(tmp_path: Path, **env: str) -> dict[str, str]:
    """This process's environment without DRPlan's settings, plus `env`: a fresh start's view."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    return {**clean, "DRPLAN_VAR_DIR": str(tmp_path), **env}


def _python(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    """Run `code` after loading the settings in a fresh interpreter with that environment."""
    prelude = "import os; os.environ['DJANGO_SETTINGS_MODULE']='drplan.settings'; from django.conf import settings; "
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=ROOT,
        env=_environment(tmp_path, **env),
        capture_output=True,
        text=True,
    )


def _load_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return _python(
        tmp_path,
        "print(settings.DATABASES['default']['ENGINE'], settings.DEBUG, settings.Q_CLUSTER.get('orm'))",
        **env,
    )


def test_production_without_secret_key_refuses_to_start(tmp_path):
    result = _load_settings(tmp_path, DRPLAN_ENV="production")
    assert result.returncode != 0
    assert "DRPLAN_SECRET_KEY must be set" in result.stderr


def test_production_with_secret_key_starts_without_debug(tmp_path):
    result = _load_settings(tmp_path, DRPLAN_ENV="production", DRPLAN_SECRET_KEY="x" * 50, DRPLAN_DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["core.dbbackends.sqlite3", "False", "default"]


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


def test_python_action_allow_list_comes_from_drplan_python_actions(tmp_path):
    def allowed(**env: str) -> list[str]:
        return _settings_of(tmp_path, ["DRPLAN_PYTHON_ACTIONS"], **env)["DRPLAN_PYTHON_ACTIONS"]

    # The same default in development and production: the DR lab uses first-class actions, no module.
    assert allowed() == ["failover.engine.extensions"]
    production = {"DRPLAN_ENV": "production", "DRPLAN_SECRET_KEY": "x" * 50}
    assert allowed(**production) == ["failover.engine.extensions"]
    listed = " acme.dr_actions , failover.engine.extensions"
    assert allowed(**production, DRPLAN_PYTHON_ACTIONS=listed) == ["acme.dr_actions", "failover.engine.extensions"]
    assert allowed(DRPLAN_PYTHON_ACTIONS="") == []


# Loads the settings with a permissive umask and records, through an audit hook, the mode the key file
# had whenever anything chmods it: a file written first and restricted afterwards shows up here.
_KEY_PROBE = """
import os, stat, sys
os.umask(0)
key_file = os.path.join(os.environ["DRPLAN_VAR_DIR"], "secret_key")
seen = []

def hook(event, args):
    if event == "os.chmod" and os.path.exists(key_file) and os.fspath(args[0]) == key_file:
        seen.append(stat.S_IMODE(os.stat(key_file).st_mode))

sys.addaudithook(hook)
os.environ["DJANGO_SETTINGS_MODULE"] = "drplan.settings"
from django.conf import settings
print(settings.SECRET_KEY, oct(stat.S_IMODE(os.stat(key_file).st_mode)), [oct(m) for m in seen])
"""


def _probe_key(tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _KEY_PROBE],
        cwd=ROOT,
        env=_environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_development_key_file_is_never_readable_by_others_even_with_a_permissive_umask(tmp_path):
    process = _probe_key(tmp_path)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    key, mode, modes_before_chmod = out.split(" ", 2)
    assert mode == "0o600"
    assert modes_before_chmod.strip() == "[]"  # created 0600, never written wider and narrowed later
    assert (tmp_path / "secret_key").read_text() == key
    assert [p.name for p in tmp_path.iterdir() if "secret" in p.name] == ["secret_key"]  # no temporary file left


def test_concurrent_first_starts_agree_on_one_key(tmp_path):
    processes = [_probe_key(tmp_path) for _ in range(6)]
    results = [process.communicate(timeout=60) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err for _, err in results]
    keys = {out.split(" ", 1)[0] for out, _ in results}
    assert keys == {(tmp_path / "secret_key").read_text()}


def _settings_of(tmp_path: Path, names: list[str], **env: str) -> dict:
    result = _python(
        tmp_path, f"import json; print(json.dumps({{name: getattr(settings, name) for name in {names!r}}}))", **env
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


TRANSPORT_SETTINGS = [
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "CSRF_TRUSTED_ORIGINS",
]


def test_development_over_plain_http_is_unchanged(tmp_path):
    assert _settings_of(tmp_path, TRANSPORT_SETTINGS) == {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "CSRF_TRUSTED_ORIGINS": [],
    }


def test_production_defaults_are_https_only(tmp_path):
    production = {"DRPLAN_ENV": "production", "DRPLAN_SECRET_KEY": secrets.token_urlsafe(50)}
    assert _settings_of(tmp_path, TRANSPORT_SETTINGS, **production) == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": None,  # only when the operator says a proxy sets it
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "CSRF_TRUSTED_ORIGINS": [],
    }
    behind_proxy = _settings_of(
        tmp_path,
        TRANSPORT_SETTINGS,
        **production,
        DRPLAN_HSTS_SECONDS="600",
        DRPLAN_SSL_REDIRECT="0",
        DRPLAN_TRUST_PROXY_TLS_HEADER="1",
        DRPLAN_CSRF_TRUSTED_ORIGINS="https://dr.example.com, https://dr2.example.com",
    )
    assert behind_proxy["SECURE_HSTS_SECONDS"] == 600
    assert behind_proxy["SECURE_SSL_REDIRECT"] is False
    assert behind_proxy["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert behind_proxy["CSRF_TRUSTED_ORIGINS"] == ["https://dr.example.com", "https://dr2.example.com"]


def test_an_unreadable_flag_is_refused(tmp_path):
    result = _load_settings(tmp_path, DRPLAN_SSL_REDIRECT="maybe")
    assert result.returncode != 0
    assert "DRPLAN_SSL_REDIRECT must be 1/0, true/false, yes/no or on/off" in result.stderr


def test_deploy_check_passes_with_production_settings(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_environment(tmp_path, DRPLAN_ENV="production", DRPLAN_SECRET_KEY=secrets.token_urlsafe(50)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().startswith("System check identified no issues"), result.stdout
    assert result.stderr == ""


def test_sign_in_lockout_is_configured_from_the_environment(tmp_path):
    names = ["AXES_FAILURE_LIMIT"]
    assert _settings_of(tmp_path, names) == {"AXES_FAILURE_LIMIT": 5}
    assert _settings_of(tmp_path, names, DRPLAN_LOGIN_FAILURE_LIMIT="3") == {"AXES_FAILURE_LIMIT": 3}
    result = _python(tmp_path, "print(settings.AXES_COOLOFF_TIME.total_seconds())", DRPLAN_LOGIN_LOCKOUT_SECONDS="60")
    assert result.stdout.strip() == "60.0", result.stderr


def test_time_zone_and_currency_of_the_pages(tmp_path):
    assert _settings_of(tmp_path, ["TIME_ZONE", "DRPLAN_CURRENCY"]) == {"TIME_ZONE": "UTC", "DRPLAN_CURRENCY": "USD"}
    chosen = _settings_of(
        tmp_path, ["TIME_ZONE", "DRPLAN_CURRENCY"], DRPLAN_TIME_ZONE="Europe/Berlin", DRPLAN_CURRENCY=" eur "
    )
    assert chosen == {"TIME_ZONE": "Europe/Berlin", "DRPLAN_CURRENCY": "EUR"}
    zone = _load_settings(tmp_path, DRPLAN_TIME_ZONE="Mars/Olympus")
    assert zone.returncode != 0 and "DRPLAN_TIME_ZONE must be an IANA time zone" in zone.stderr
    money = _load_settings(tmp_path, DRPLAN_CURRENCY="dollars")
    assert money.returncode != 0 and "DRPLAN_CURRENCY must be a three-letter ISO 4217 code" in money.stderr


def test_http_slots_default_to_one_on_sqlite_and_none_on_postgresql_and_bad_values_are_refused(tmp_path):
    show = "print(settings.HTTP_SLOTS, settings.HTTP_SLOT_HOLD_SECONDS)"
    assert _python(tmp_path, show).stdout.split() == ["1", "0.1"]
    postgres = _python(tmp_path, show, DATABASE_URL="postgres://u:p@127.0.0.1:5432/drplan")
    assert postgres.stdout.split() == ["0", "0.1"]
    tuned = _python(tmp_path, show, DRPLAN_HTTP_SLOTS="4", DRPLAN_HTTP_SLOT_HOLD_SECONDS="0.5")
    assert tuned.stdout.split() == ["4", "0.5"]
    for env, message in (
        ({"DRPLAN_HTTP_SLOTS": "-1"}, "DRPLAN_HTTP_SLOTS must be a whole number of requests (0: no limit), not '-1'"),
        ({"DRPLAN_HTTP_SLOTS": "two"}, "DRPLAN_HTTP_SLOTS must be a whole number of requests"),
        ({"DRPLAN_HTTP_SLOT_HOLD_SECONDS": "soon"}, "DRPLAN_HTTP_SLOT_HOLD_SECONDS must be a number of seconds"),
        ({"DRPLAN_HTTP_SLOT_HOLD_SECONDS": "0"}, "DRPLAN_HTTP_SLOT_HOLD_SECONDS must be more than 0"),
    ):
        refused = _python(tmp_path, show, **env)
        assert refused.returncode != 0 and message in refused.stderr, (env, refused.stderr[-500:])


def test_numeric_settings_refuse_bad_values_at_start_naming_the_variable(tmp_path):
    """A misconfigured node stops before serving, with the variable and the reason, not a ValueError traceback or
    a setting that means something else than it says (a pool timeout of 0 used to become 30 s)."""
    show = "print(settings.ENGINE_LEASE_SECONDS, settings.Q_CLUSTER['workers'], settings.AXES_FAILURE_LIMIT)"
    assert _python(tmp_path, show).stdout.split() == ["15.0", "2", "5"]
    tuned = _python(
        tmp_path, show, DRPLAN_ENGINE_LEASE_SECONDS="9.5", DRPLAN_WORKERS="4", DRPLAN_LOGIN_FAILURE_LIMIT="3"
    )
    assert tuned.stdout.split() == ["9.5", "4", "3"]
    postgres = "postgres://u:p@127.0.0.1:5432/drplan"
    for env, message in (
        (
            {"DRPLAN_ENGINE_LEASE_SECONDS": "fifteen"},
            "DRPLAN_ENGINE_LEASE_SECONDS must be a number of seconds, not 'fifteen'",
        ),
        ({"DRPLAN_ENGINE_LEASE_SECONDS": "0"}, "DRPLAN_ENGINE_LEASE_SECONDS must be more than 0 seconds"),
        (
            {"DRPLAN_ENGINE_LEASE_SECONDS": "-15"},
            "DRPLAN_ENGINE_LEASE_SECONDS must be a finite number of seconds, 0 or more",
        ),
        ({"DRPLAN_ENGINE_LEASE_SECONDS": "nan"}, "DRPLAN_ENGINE_LEASE_SECONDS must be a finite number of seconds"),
        (
            {"DRPLAN_ENGINE_LEASE_SECONDS": "15", "DRPLAN_ENGINE_LEASE_MARGIN_SECONDS": "10"},
            "DRPLAN_ENGINE_LEASE_MARGIN_SECONDS (10) must be at most half of DRPLAN_ENGINE_LEASE_SECONDS (15)",
        ),
        ({"DRPLAN_WORKERS": "0"}, "DRPLAN_WORKERS must be a whole number of worker processes, at least 1, not '0'"),
        ({"DRPLAN_WORKERS": "2.5"}, "DRPLAN_WORKERS must be a whole number of worker processes, at least 1, not '2.5'"),
        ({"DRPLAN_LOGIN_FAILURE_LIMIT": "0"}, "DRPLAN_LOGIN_FAILURE_LIMIT must be a whole number of failed sign-ins"),
        ({"DRPLAN_MAX_REQUEST_BYTES": "1MB"}, "DRPLAN_MAX_REQUEST_BYTES must be a whole number of bytes"),
        ({"DRPLAN_LIVE_POLL_SECONDS": "0"}, "DRPLAN_LIVE_POLL_SECONDS must be more than 0 seconds"),
        ({"DRPLAN_ML_TIMEOUT_SECONDS": "1s"}, "DRPLAN_ML_TIMEOUT_SECONDS must be a number of seconds, not '1s'"),
        ({"DRPLAN_ML_TIMEOUT_SECONDS": "0"}, "DRPLAN_ML_TIMEOUT_SECONDS must be more than 0 seconds"),
        (
            {"DRPLAN_ENGINE_TASK_TIMEOUT": "10"},
            "DRPLAN_ENGINE_TASK_TIMEOUT must be a whole number of seconds, at least 60",
        ),
        ({"EMAIL_PORT": "smtp"}, "EMAIL_PORT must be a whole number of a TCP port"),
        (
            {"DATABASE_URL": postgres, "DRPLAN_DB_POOL_SIZE": "six"},
            "DRPLAN_DB_POOL_SIZE must be a whole number of connections",
        ),
        (
            {"DATABASE_URL": postgres, "DRPLAN_DB_POOL_SIZE": "6", "DRPLAN_DB_POOL_TIMEOUT": "0"},
            "DRPLAN_DB_POOL_TIMEOUT must be more than 0 seconds",
        ),
    ):
        refused = _python(tmp_path, show, **env)
        assert refused.returncode != 0 and message in refused.stderr, (env, refused.stderr[-500:])
        assert "ImproperlyConfigured" in refused.stderr and "ValueError" not in refused.stderr
    pooled = _python(
        tmp_path,
        "print(settings.DATABASES['default']['OPTIONS']['pool']['timeout'])",
        DATABASE_URL=postgres,
        DRPLAN_DB_POOL_SIZE="6",
        DRPLAN_DB_POOL_TIMEOUT="4",
    )
    assert pooled.stdout.split() == ["4.0"], pooled.stderr[-500:]
