"""DRPlan settings, read from environment variables with safe defaults.

Environment:
    DRPLAN_ENV          "development" (default) or "production".
    DRPLAN_SECRET_KEY   required in production; in development a random key is
                        generated once and kept in var/secret_key.
    DRPLAN_DEBUG        "1" to enable Django's debug pages (development only).
    DATABASE_URL        e.g. postgres://user:pass@host:5432/db; default is the
                        embedded SQLite database var/drplan.sqlite3 (WAL mode).
    REDIS_URL           when set, django-q2, Channels and Django's cache use Redis.
    DRPLAN_CLUSTER      "1": this node is one of several (README, "A cluster"); it refuses to start without
                        REDIS_URL, a PostgreSQL DATABASE_URL, DRPLAN_SECRET_KEY and the signing key and cert.
    DRPLAN_LIVE_POLL_SECONDS  how often a web process reads new execution events for live viewers
                        (default 0.05 s; 1 s with Redis, where it is only a safety net).
    DRPLAN_LIVE_AUTH_RECHECK_SECONDS  how often an open websocket re-checks its viewer's access (default 5 s).
    DRPLAN_ALLOWED_HOSTS comma-separated; default 127.0.0.1,localhost.
    DRPLAN_SSL_REDIRECT, DRPLAN_HSTS_SECONDS, DRPLAN_HSTS_INCLUDE_SUBDOMAINS, DRPLAN_HSTS_PRELOAD,
    DRPLAN_TRUST_PROXY_TLS_HEADER, DRPLAN_CSRF_TRUSTED_ORIGINS   HTTPS in production (README, Configuration).
    DRPLAN_VAR_DIR      where runtime files live; default ./var.
    DRPLAN_PYTHON_ACTIONS  module prefixes the runbook `python` action may call (comma-separated).
    DRPLAN_ORGANISATION  the organisation named on compliance reports.
    DRPLAN_SIGNING_KEY, DRPLAN_SIGNING_CERT  the organisation's signing key and certificate (PEM files) that sign
                        compliance reports and audit checkpoints; DRPLAN_SIGNING_KEY_PASSWORD if the key is
                        encrypted, DRPLAN_SIGNING_CHAIN for intermediate certificates. Unset: a self-signed pair
                        is generated on first use in var/signing/ (0600).
    DRPLAN_TRUST_ROOTS  comma-separated PEM files of the certificates a verified report may chain to; default:
                        the signing certificate itself.
    DRPLAN_CHECKPOINT_FILE  where signed audit checkpoints are appended; default var/audit-checkpoints.jsonl.
    DRPLAN_CHECKPOINT_INTERVAL_SECONDS  how often the scheduler signs a checkpoint (default 3600).
    EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS, EMAIL_USE_SSL, EMAIL_TIMEOUT,
    DEFAULT_FROM_EMAIL, EMAIL_BACKEND  the mail server of e-mail notifications (Django's settings).
    DRPLAN_DB_POOL_SIZE  PostgreSQL: a pool of at most this many connections per process (default: none, one
                        persistent connection per thread).
    DRPLAN_DB_CONNECT_TIMEOUT (5 s), DRPLAN_DB_STATEMENT_TIMEOUT (60 s), DRPLAN_DB_IDLE_IN_TRANSACTION_TIMEOUT
                        (30 s), DRPLAN_DB_NETWORK_TIMEOUT (10 s: keepalives and tcp_user_timeout)  PostgreSQL:
                        how long a connection attempt, a statement, an idle open transaction and a silent network
                        may last; 0 turns one off (the connect timeout is at least 1 s).
    DRPLAN_NOTIFY_BACKOFF_SECONDS  a failed notification delivery's first retry delay (doubling; default 30 s).
    DRPLAN_NOTIFY_SEND_FROM_PROCESS  1 (default): a delivery's first attempt is made at once by the process that
                                   created it, beside the queued task; 0: only by the django-q workers.
    DRPLAN_AUDIT_CHECKPOINT_WEBHOOK_URL  also POST every signed checkpoint (its JSON) to this receiver, outside the
                        machine; DRPLAN_AUDIT_CHECKPOINT_WEBHOOK_TOKEN (sent as "Authorization: Bearer …"),
                        _TIMEOUT_SECONDS (5), _ATTEMPTS (3), _BACKOFF_SECONDS (1, doubled per retry).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import zoneinfo
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DRPLAN_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DRPLAN_ENV = os.environ.get("DRPLAN_ENV", "development")
if DRPLAN_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("DRPLAN_ENV must be 'development' or 'production'")
PRODUCTION = DRPLAN_ENV == "production"

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _flag(name: str, default: bool) -> bool:
    """A yes/no environment variable; anything unreadable stops the start rather than guess."""
    value = os.environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be 1/0, true/false, yes/no or on/off, not {value!r}")


def _list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _development_secret_key() -> str:
    """The key in var/secret_key, made on first start.

    Written to a private temporary file created 0600 (O_CREAT|O_EXCL: never readable by others, whatever
    the umask), then published with os.link, which never replaces an existing file: of two processes
    starting at once, the second keeps the first one's key, and nobody reads a half-written file."""
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        temporary = VAR_DIR / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as stream:
                stream.write(secrets.token_urlsafe(50))
            with contextlib.suppress(FileExistsError):
                os.link(temporary, key_file)
        finally:
            temporary.unlink(missing_ok=True)
    return key_file.read_text().strip()


SECRET_KEY = os.environ.get("DRPLAN_SECRET_KEY") or ""
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("DRPLAN_SECRET_KEY must be set when DRPLAN_ENV=production")
    SECRET_KEY = _development_secret_key()

DEBUG = os.environ.get("DRPLAN_DEBUG") == "1" and not PRODUCTION
ALLOWED_HOSTS = _list("DRPLAN_ALLOWED_HOSTS", "127.0.0.1,localhost")

INSTALLED_APPS = [
    "drplan.apps.DaphneRunserverConfig",  # daphne's runserver, without loading Twisted everywhere
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "channels",
    "django_q",
    "axes",
    "core",
    "plans",
    "runbooks",
    "failover",
    "analytics",
    "compliance",
    "mlservice",
    "lab",
    "drplan",  # last: its ready() wires the seams between the apps above (drplan/wiring.py)
]

MIDDLEWARE = [
    "core.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a locked-out sign-in (flagged by the backend below) into core.signin.lockout_response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "drplan.urls"
ASGI_APPLICATION = "drplan.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
TEST_DB_DIR = VAR_DIR / "test-db"


def _remove_stale_test_databases() -> None:
    """Test SQLite files (and their -wal/-shm) of test runs whose process is gone."""
    if not TEST_DB_DIR.is_dir():
        return
    for path in TEST_DB_DIR.glob("test-*.sqlite3*"):
        pid = path.name.removeprefix("test-").split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except PermissionError:
            pass


def _seconds(name: str, default: float, *, positive: bool = False) -> float:
    """A duration in seconds from the environment; refuses a non-numeric or negative value, and 0 when `positive`
    (where 0 has no sensible meaning; elsewhere 0 turns the thing off, as each setting's comment says)."""
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw.strip() else float(default)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number of seconds, not {raw!r}") from None
    if value < 0 or value != value or value == float("inf"):
        raise ImproperlyConfigured(f"{name} must be a finite number of seconds, 0 or more, not {raw!r}")
    if positive and value == 0:
        raise ImproperlyConfigured(f"{name} must be more than 0 seconds")
    return value


def _whole(name: str, default: int, *, unit: str, minimum: int = 0) -> int:
    """A whole number from the environment; refuses anything else and values below `minimum`, naming the variable:
    a misconfigured node stops at start with the reason, not with a traceback or a surprise later."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:
        at_least = f", at least {minimum}" if minimum else ""
        raise ImproperlyConfigured(f"{name} must be a whole number of {unit}{at_least}, not {raw!r}")
    return int(raw)


# DRPLAN_DB_POOL_SIZE=N (PostgreSQL): each process keeps a pool of at most N connections (psycopg_pool through
# Django's "pool" option) instead of one persistent connection per thread: under ASGI every request thread would
# hold its own, and a few busy web nodes exhaust the server's max_connections. scripts/cluster.py sets it.
DB_POOL_SIZE = _whole("DRPLAN_DB_POOL_SIZE", 0, unit="connections (0: no pool)")
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
    _postgresql = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    if DB_POOL_SIZE and _postgresql:
        # Django's, with each connection checked as it leaves the pool (a broken one makes the pool check all its
        # idle connections at once: after a database restart they are all broken, and psycopg_pool's own check
        # waited 1, 2, 4, 8 … s between them).
        DATABASES["default"]["ENGINE"] = "core.dbbackends.postgresql"
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections; Django requires 0 with it
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DB_POOL_SIZE,
            # A request waits this long for a free connection, then fails (a 5xx, logged).
            "timeout": _seconds("DRPLAN_DB_POOL_TIMEOUT", 30, positive=True),
            # psycopg_pool replaces a lost connection with attempts 1, 2, 4, 8, 16 … s apart for up to 5 min: after
            # a database outage of ~15 s a node waited ~15 s more for its next attempt while the server was back
            # (health checks failed, requests hung). Giving up after 5 s lets the next request that finds the
            # pool empty open a connection at once (drplan/tests/test_db_pool.py).
            "reconnect_timeout": 5,
        }
    if _postgresql:
        # How long a PostgreSQL call can hang (issue 15, fencing: a coordinator must not wait on a dead
        # connection past its fence): connecting, a statement, a transaction left idle (the server ends such a
        # session and frees its locks, e.g. the execution row of a coordinator cut off mid-turn), and the network
        # (TCP keepalives, and tcp_user_timeout for data sent but never acknowledged). README, "A cluster".
        _statement = _seconds("DRPLAN_DB_STATEMENT_TIMEOUT", 60)
        _idle = _seconds("DRPLAN_DB_IDLE_IN_TRANSACTION_TIMEOUT", 30)
        _network = _seconds("DRPLAN_DB_NETWORK_TIMEOUT", 10)
        _options = DATABASES["default"].setdefault("OPTIONS", {})
        _options.setdefault("connect_timeout", max(1, round(_seconds("DRPLAN_DB_CONNECT_TIMEOUT", 5))))
        if _network:
            _options.update(
                keepalives=1,
                keepalives_idle=max(1, round(_network / 2)),
                keepalives_interval=max(1, round(_network / 4)),
                keepalives_count=2,
                tcp_user_timeout=round(_network * 1000),
            )
        _server = (
            f"-c statement_timeout={round(_statement * 1000)}"
            f" -c idle_in_transaction_session_timeout={round(_idle * 1000)}"
        )
        _options["options"] = f"{_options.get('options', '')} {_server}".strip()
else:
    DATABASES = {
        "default": {
            "ENGINE": "core.dbbackends.sqlite3",  # Django's, its connections reused across threads
            "NAME": os.environ.get("DRPLAN_SQLITE_PATH", str(VAR_DIR / "drplan.sqlite3")),
            "OPTIONS": {
                # WAL lets the web server read while a worker writes; IMMEDIATE
                # transactions take the write lock up front, so two writers wait
                # for each other instead of failing with "database is locked".
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            # A file, not memory, so worker processes started by tests see the test database
            # (DRPLAN_SQLITE_PATH=<this file> in their environment). One file per test run.
            "TEST": {"NAME": str(TEST_DB_DIR / f"test-{os.getpid()}.sqlite3")},
        }
    }
    TEST_DB_DIR.mkdir(exist_ok=True)
    _remove_stale_test_databases()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
# Pages show times in this zone, with its name (core/formatting.py); stored times are UTC either way.
TIME_ZONE = os.environ.get("DRPLAN_TIME_ZONE", "UTC")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"DRPLAN_TIME_ZONE must be an IANA time zone such as Europe/Berlin, not {TIME_ZONE!r}"
    ) from None
# ISO 4217 code of the plans' costs (downtime per hour, DR infrastructure), shown with every amount.
DRPLAN_CURRENCY = os.environ.get("DRPLAN_CURRENCY", "USD").strip().upper()
if not (len(DRPLAN_CURRENCY) == 3 and DRPLAN_CURRENCY.isalpha()):
    raise ImproperlyConfigured(f"DRPLAN_CURRENCY must be a three-letter ISO 4217 code, not {DRPLAN_CURRENCY!r}")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "/admin/login/"

# --- Brute-force protection of password sign-in (django-axes) -----------------------------------------
# Every password check goes through django.contrib.auth.authenticate: the sign-in page (/admin/login/, also
# /api-auth/login/) and POST /api/v1/dr/auth/token. After LIMIT failures for one username from one address,
# that pair is refused, even with the right password, for LOCKOUT seconds after its last counted failure;
# attempts while locked are not counted (they do not extend the lockout). A success resets the count.
AUTHENTICATION_BACKENDS = ["core.signin.LockoutBackend", "core.roles.RoleBackend"]
AXES_FAILURE_LIMIT = _whole("DRPLAN_LOGIN_FAILURE_LIMIT", 5, unit="failed sign-ins", minimum=1)
AXES_COOLOFF_TIME = timedelta(seconds=_whole("DRPLAN_LOGIN_LOCKOUT_SECONDS", 15 * 60, unit="seconds", minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "core.signin.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # a row per successful sign-in, read by nothing; the failures are kept
AXES_VERBOSE = False

# Requests larger than this are refused with 413 before any parsing.
DRPLAN_MAX_REQUEST_BYTES = _whole("DRPLAN_MAX_REQUEST_BYTES", 1024 * 1024, unit="bytes", minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = DRPLAN_MAX_REQUEST_BYTES

# The organisation named on compliance reports.
ORGANISATION_NAME = os.environ.get("DRPLAN_ORGANISATION", "") or "DRPlan"

# --- Signing: compliance reports and audit checkpoints (core/signing.py, core/checkpoints.py) ---------
SIGNING_KEY_FILE = os.environ.get("DRPLAN_SIGNING_KEY", "")
SIGNING_CERT_FILE = os.environ.get("DRPLAN_SIGNING_CERT", "")
SIGNING_KEY_PASSWORD = os.environ.get("DRPLAN_SIGNING_KEY_PASSWORD", "")
SIGNING_CHAIN_FILES = _list("DRPLAN_SIGNING_CHAIN", "")
SIGNING_DIR = VAR_DIR / "signing"
TRUST_ROOT_FILES = _list("DRPLAN_TRUST_ROOTS", "")
CHECKPOINT_FILE = Path(os.environ.get("DRPLAN_CHECKPOINT_FILE", VAR_DIR / "audit-checkpoints.jsonl"))
CHECKPOINT_INTERVAL_SECONDS = _whole("DRPLAN_CHECKPOINT_INTERVAL_SECONDS", 3600, unit="seconds", minimum=1)
CHECKPOINT_WEBHOOK_URL = os.environ.get("DRPLAN_AUDIT_CHECKPOINT_WEBHOOK_URL", "")
if CHECKPOINT_WEBHOOK_URL and not CHECKPOINT_WEBHOOK_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured("DRPLAN_AUDIT_CHECKPOINT_WEBHOOK_URL must be an http:// or https:// URL")
CHECKPOINT_WEBHOOK_TOKEN = os.environ.get("DRPLAN_AUDIT_CHECKPOINT_WEBHOOK_TOKEN", "")
CHECKPOINT_WEBHOOK_TIMEOUT_SECONDS = _seconds("DRPLAN_AUDIT_CHECKPOINT_WEBHOOK_TIMEOUT_SECONDS", 5, positive=True)
CHECKPOINT_WEBHOOK_ATTEMPTS = _whole("DRPLAN_AUDIT_CHECKPOINT_WEBHOOK_ATTEMPTS", 3, unit="attempts", minimum=1)
CHECKPOINT_WEBHOOK_BACKOFF_SECONDS = _seconds("DRPLAN_AUDIT_CHECKPOINT_WEBHOOK_BACKOFF_SECONDS", 1)

# --- HTTPS (production) ------------------------------------------------------------
# Development (`make run`, plain HTTP on 127.0.0.1) keeps Django's defaults: no redirect, no HSTS, cookies
# over HTTP. Production is HTTPS only; `manage.py check --deploy` reports nothing with its defaults.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PRODUCTION
SECURE_SSL_REDIRECT = _flag("DRPLAN_SSL_REDIRECT", PRODUCTION)
# Load balancers probe the health endpoint over plain HTTP; it says nothing but "ok".
SECURE_REDIRECT_EXEMPT = [r"^api/v1/dr/health/?$"]
SECURE_HSTS_SECONDS = _whole("DRPLAN_HSTS_SECONDS", 365 * 24 * 3600 if PRODUCTION else 0, unit="seconds")
SECURE_HSTS_INCLUDE_SUBDOMAINS = _flag("DRPLAN_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
# Asking browsers to preload the domain binds every subdomain for months: the domain owner opts in.
SECURE_HSTS_PRELOAD = _flag("DRPLAN_HSTS_PRELOAD", False)
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS = ["security.W021"]  # "SECURE_HSTS_PRELOAD is not True": a choice, see above
# Trust X-Forwarded-Proto only when a proxy that sets it (and strips a client's) is in front: otherwise any
# client could claim HTTPS.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if _flag("DRPLAN_TRUST_PROXY_TLS_HEADER", False) else None
# Origins allowed to POST with a session (e.g. https://dr.example.com when a proxy serves another host name).
CSRF_TRUSTED_ORIGINS = _list("DRPLAN_CSRF_TRUSTED_ORIGINS")

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so an anonymous request gets 401 with a WWW-Authenticate header.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.permissions.RolePermissions"],
    # DRF's JSON parser with a bound on nesting depth (core/jsondepth.py: 64 levels), then DRF's others.
    "DEFAULT_PARSER_CLASSES": [
        "core.api.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    # Adds the standard error responses (400/401/403/404/409/413/415/429) to every operation that can answer them.
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "DRPlan API",
    "DESCRIPTION": (
        "Disaster-recovery plans, runbooks, executions, tests and compliance.\n\n"
        'Every error is `{"error": {"code", "message", "fields"}}` (the `Error` schema). '
        "Request bodies are JSON taken as they are: a value of another type is 400, not converted. "
        "Text may not contain a NUL character (400). An empty query parameter is the same as leaving it out."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Request bodies are documented as JSON (the document endpoints also list YAML). The form parsers
    # DRF also accepts serve the browsable API only: form encoding cannot carry null, nesting or lists.
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    # Several models share choice names (status, severity …); name each enum after its choices class.
    "ENUM_NAME_OVERRIDES": {
        "ComplianceFrameworkEnum": "plans.choices.ComplianceFramework",
        "PlanStatusEnum": "plans.choices.PlanStatus",
        "SeverityEnum": "plans.choices.Severity",
        "LevelEnum": "analytics.choices.Level",
        "ActionItemStatusEnum": "analytics.choices.ActionItemStatus",
        "ExecutionStatusEnum": "failover.choices.ExecutionStatus",
        "StepStatusEnum": "failover.choices.StepStatus",
        "CheckStatusEnum": "failover.choices.CheckStatus",
        "RequirementStatusEnum": "compliance.choices.RequirementStatus",
        "OverallStatusEnum": "compliance.choices.OverallStatus",
        "VersionStatusEnum": "runbooks.choices.VersionStatus",
        "RunbookCategoryEnum": "runbooks.choices.RunbookCategory",
        "ImportFormatEnum": "runbooks.choices.ImportFormat",
        "HealthStatusEnum": "analytics.monitoring.choices.HealthStatus",
    },
}

# --- Runbook actions ------------------------------------------------------------
# Module prefixes whose functions the `python` action may call (comma-separated).
DRPLAN_PYTHON_ACTIONS = [
    prefix.strip()
    for prefix in os.environ.get("DRPLAN_PYTHON_ACTIONS", "failover.engine.extensions").split(",")
    if prefix.strip()
]

# --- Tasks and live updates -------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")

# Cluster mode (README, "A cluster"): several web and worker nodes share one PostgreSQL and one Redis.
# Nothing a node keeps locally may be shared state, so a node refuses to start in cluster mode without
# them, or with a secret key or signing key of its own making (each node would generate a different one).
CLUSTER_MODE = _flag("DRPLAN_CLUSTER", False)
if CLUSTER_MODE:
    _cluster_problems = []
    if not REDIS_URL:
        _cluster_problems.append("REDIS_URL is not set (the broker, channel layer and cache every node shares)")
    if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        _cluster_problems.append("DATABASE_URL must name a PostgreSQL server (SQLite is a file on one machine)")
    if not os.environ.get("DRPLAN_SECRET_KEY"):
        _cluster_problems.append("DRPLAN_SECRET_KEY is not set (every node must sign sessions and tokens alike)")
    if not (os.environ.get("DRPLAN_SIGNING_KEY") and os.environ.get("DRPLAN_SIGNING_CERT")):
        _cluster_problems.append("DRPLAN_SIGNING_KEY and DRPLAN_SIGNING_CERT are not set (one organisation key)")
    if _cluster_problems:
        raise ImproperlyConfigured("cluster mode (DRPLAN_CLUSTER=1): " + "; ".join(_cluster_problems))

# Shared by the web processes (the double-submit guard of the operations pages, DRF throttles): with Redis,
# every process and node sees the same; without it, each process has its own (one web process: make run).
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# The execution engine (failover/engine/runner.py): a coordinator holds a lease on its
# execution and renews it every lease/3 seconds; the reaper re-enqueues an execution whose
# lease expired (its worker died). A coordinator may wait hours for a person (manual step,
# approval gate), so a task's timeout is long; before it runs out, an idle coordinator hands
# its execution over to a fresh task. Only the reaper decides about re-running, never the broker.
ENGINE_LEASE_SECONDS = _seconds("DRPLAN_ENGINE_LEASE_SECONDS", 15, positive=True)
# A coordinator that cannot renew stops this long before its lease can expire (by default lease/5); a node
# whose clock differs from the database server's by more is reported (README, "A cluster").
ENGINE_LEASE_MARGIN_SECONDS = _seconds("DRPLAN_ENGINE_LEASE_MARGIN_SECONDS", 0) or None
if ENGINE_LEASE_MARGIN_SECONDS and ENGINE_LEASE_MARGIN_SECONDS > ENGINE_LEASE_SECONDS / 2:
    # Renewals come every third of the lease: a larger margin would fence a healthy coordinator between two.
    raise ImproperlyConfigured(
        f"DRPLAN_ENGINE_LEASE_MARGIN_SECONDS ({ENGINE_LEASE_MARGIN_SECONDS:g}) must be at most half of "
        f"DRPLAN_ENGINE_LEASE_SECONDS ({ENGINE_LEASE_SECONDS:g})"
    )
# How often each worker process looks for an execution whose lease has lapsed (one indexed query; 0: only the
# 30 s reap schedule and worker start look): a node lost with its coordinators is taken over within this many
# seconds of the lease's end, not at the schedule's next pass (failover/engine/reaper.py, watch_leases).
ENGINE_LEASE_WATCH_SECONDS = _seconds("DRPLAN_ENGINE_LEASE_WATCH_SECONDS", 2)
# This node's name in the cluster's clock report (core/dbtime.py); by default the host name.
NODE_NAME = os.environ.get("DRPLAN_NODE_NAME", "") or socket.gethostname()
# How often each worker node measures its clock against the database server's (0: never).
CLOCK_CHECK_SECONDS = _seconds("DRPLAN_CLOCK_CHECK_SECONDS", 60)
ENGINE_TASK_TIMEOUT = _whole("DRPLAN_ENGINE_TASK_TIMEOUT", 7 * 24 * 3600, unit="seconds", minimum=60)


# A web process lets DRPLAN_HTTP_SLOTS requests into Django at once, each for at most DRPLAN_HTTP_SLOT_HOLD_SECONDS
# (core/requestgate.py); the rest wait in the event loop instead of contending for the interpreter lock. 0: no gate.
# Default: 1 on SQLite, whose work is this process's CPU (nothing to overlap); none on PostgreSQL, where one
# request's wait for the server is another's time to run (bench/api.py measured both, bench/RESULTS.md).
HTTP_SLOTS = _whole(
    "DRPLAN_HTTP_SLOTS", 1 if DATABASES["default"]["ENGINE"].endswith("sqlite3") else 0, unit="requests (0: no limit)"
)
HTTP_SLOT_HOLD_SECONDS = _seconds("DRPLAN_HTTP_SLOT_HOLD_SECONDS", 0.1)
if HTTP_SLOTS and not HTTP_SLOT_HOLD_SECONDS:
    raise ImproperlyConfigured("DRPLAN_HTTP_SLOT_HOLD_SECONDS must be more than 0 while DRPLAN_HTTP_SLOTS is set")

Q_CLUSTER = {
    "name": "drplan",
    "workers": _whole("DRPLAN_WORKERS", 2, unit="worker processes", minimum=1),
    "timeout": ENGINE_TASK_TIMEOUT,
    "retry": ENGINE_TASK_TIMEOUT + 600,  # the ORM broker redelivers an unacknowledged task only after this
    "max_attempts": 1,
    "catch_up": False,
    "label": "Tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    # The ORM broker whose idle workers an enqueue wakes (failover/tasks.py); the poll is only a safety net.
    Q_CLUSTER["broker_class"] = "failover.tasks.WakingORM"
    Q_CLUSTER["poll"] = 0.2

if REDIS_URL:
    # Redis publish/subscribe (channels_redis' pub/sub layer): a group send is one PUBLISH, whatever the number of
    # web nodes watching, where the list-based layer paid a script per member on the coordinator's process (0.49 ms
    # of CPU with one member against 0.15). Nothing is kept for a node that is not listening, which the live feed
    # covers: it backfills by sequence number and polls the table as a safety net (failover/live/feed.py).
    # The socket waits 15 s, longer than any blocking read: on a loaded node redis-py's 5 s default gave up first.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Live console (failover/live/feed.py): each web process polls the new events of the executions watched
# there this often; it is how events cross processes without Redis, and a safety net with it.
LIVE_POLL_SECONDS = _seconds("DRPLAN_LIVE_POLL_SECONDS", 1.0 if REDIS_URL else 0.05, positive=True)
# An open websocket re-checks its viewer's session, account and permission this often, and is closed (4401/4403)
# once they are gone: a revoked viewer stops receiving within this many seconds.
LIVE_AUTH_RECHECK_SECONDS = _seconds("DRPLAN_LIVE_AUTH_RECHECK_SECONDS", 5.0, positive=True)

# The ML service's client (mlservice/client.py): how long a page or the engine waits for its answer before
# "prediction unavailable". (Its address, DRPLAN_ML_URL, the client reads per call and checks itself.)
ML_TIMEOUT_SECONDS = _seconds("DRPLAN_ML_TIMEOUT_SECONDS", 1.0, positive=True)

# E-mail (alerts and notifications, analytics/notifications/): Django's mail settings from the environment.
# Without EMAIL_HOST, messages go to the console backend (printed by the worker), never to a guessed server.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = _whole("EMAIL_PORT", 25, unit="a TCP port", minimum=1)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _flag("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _flag("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = _whole("EMAIL_TIMEOUT", 10, unit="seconds", minimum=1)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "drplan@localhost")
# Deliveries: a failed attempt is retried after NOTIFY_BACKOFF_SECONDS, then twice that, … (at most an hour).
NOTIFY_BACKOFF_SECONDS = _whole("DRPLAN_NOTIFY_BACKOFF_SECONDS", 30, unit="seconds", minimum=1)
# The first attempt of a delivery is made at once from the process that created it (analytics/notifications/
# delivery.py: send_soon), not only by a django-q worker, which a running failover may hold.
NOTIFY_SEND_FROM_PROCESS = _flag("DRPLAN_NOTIFY_SEND_FROM_PROCESS", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DRPLAN_LOG_LEVEL", "INFO")},
    # django-axes logs every successful sign-in at INFO; failures and lockouts (WARNING) are what matter.
    # botocore logs request headers (with the access key id of the aws actions' secret) at DEBUG.
    "loggers": {"axes": {"level": "WARNING"}, "botocore": {"level": "WARNING"}, "boto3": {"level": "WARNING"}},
}
