"""Fixtures shared by every app's tests: one user per role, API clients that authenticate with real
tokens, and the executions handed to the queue."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from pytest_django.fixtures import SettingsWrapper
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.roles import ADMIN, ROLES, setup_roles
from failover import common

TEST_PASSWORD = "correct-horse-battery"


def pytest_report_header(config: pytest.Config) -> str:
    from django.conf import settings

    return f"database: {settings.DATABASES['default']['ENGINE']}"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: SettingsWrapper) -> None:
    """PBKDF2 costs ~0.3 s per user; tests create many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def _signing_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("signing")


@pytest.fixture(autouse=True)
def _test_signing_files(settings: SettingsWrapper, _signing_dir: Path) -> None:
    """Tests never write to var/: the embedded default signing pair is generated once per session in a temporary
    folder, and each test appends audit checkpoints to a file of its own."""
    settings.SIGNING_KEY_FILE = settings.SIGNING_CERT_FILE = ""
    settings.TRUST_ROOT_FILES = []
    settings.SIGNING_DIR = _signing_dir / "default"
    settings.CHECKPOINT_FILE = _signing_dir / f"checkpoints-{uuid.uuid4().hex}.jsonl"
    settings.CHECKPOINT_WEBHOOK_URL = ""


@pytest.fixture(autouse=True)
def _notifications_only_through_the_queue(settings: SettingsWrapper) -> None:
    """Deliveries go only through the queue, which the outbox tests drive step by step; the tests of the
    immediate in-process attempt (analytics/tests/test_notifications_worker.py) turn it back on."""
    settings.NOTIFY_SEND_FROM_PROCESS = False


@pytest.fixture(autouse=True)
def _no_clock_checks_in_the_test_process(settings: SettingsWrapper) -> None:
    """No clock measurement (core/dbtime.py) starts on its own in the test process, where it would write to the test
    database beside the test (an ASGI request, a worker start-up hook); core/tests/test_dbtime.py turns it on."""
    settings.CLOCK_CHECK_SECONDS = 0


@pytest.fixture(autouse=True)
def _no_ml_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach an ML service someone runs on the default port 8045 (a projection or prediction would
    then depend on it): port 9 refuses. A test that wants the service sets DRPLAN_ML_URL itself."""
    from failover import estimates

    monkeypatch.setenv("DRPLAN_ML_URL", "http://127.0.0.1:9")
    estimates.reset()


@pytest.fixture
def roles(db: None) -> None:
    setup_roles()


@pytest.fixture
def make_user(roles: None) -> Callable[..., User]:
    def _make(username: str, role: str | None = None, **extra: object) -> User:
        user = User.objects.create_user(username=username, password=TEST_PASSWORD, is_staff=True, **extra)
        if role == ADMIN:
            user.is_superuser = True
            user.save(update_fields=["is_superuser"])
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return _make


@pytest.fixture
def users(make_user: Callable[..., User]) -> dict[str, User]:
    """One user per role, named after it: users["viewer"], users["operator"] …"""
    return {role: make_user(role, role) for role in ROLES}


@pytest.fixture
def api_for(users: dict[str, User]) -> Callable[[str | None], APIClient]:
    """api_for("viewer") → a client authenticated by that role's token; api_for(None) → anonymous."""

    def _client(role: str | None) -> APIClient:
        client = APIClient()
        if role is not None:
            token, _ = Token.objects.get_or_create(user=users[role])
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return _client


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Executions handed to the queue (on commit), instead of django-q2."""
    calls: list[int] = []
    monkeypatch.setattr(common, "_enqueue", calls.append)
    return calls


@pytest.fixture(scope="session")
def pg_pair() -> Iterator:
    """A real PostgreSQL 16 primary + streaming standby (failover/tests/pg_pair.py), shared by the session
    (the postgres actions' tests and the monitoring probes');
    each test calls reset() first. Only in the SQLite pass: the PostgreSQL pass would start it again."""
    if os.environ.get("DATABASE_URL"):
        pytest.skip("the PostgreSQL pair runs once, in the SQLite pass")
    pytest.importorskip("pgserver")
    from failover.tests.pg_pair import PgPair

    pair = PgPair(Path(settings.VAR_DIR) / f"pg-pair-{os.getpid()}")
    try:
        pair.up()
        yield pair
    finally:
        pair.close()
