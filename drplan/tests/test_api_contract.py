"""The API keeps its OpenAPI contract: schemathesis over every operation of /api/schema/.

Runs in process (WSGI) against pytest-django's test database with the demo organisation loaded
(`seed_demo`, so natural keys such as plan `core-commerce` exist) and two dry-run executions, as two
roles with real DRF tokens: admin (everything is allowed) and operator (most writes are 403, which
must be documented too). Every check (schemathesis.toml turns none off), a bounded number of examples
per operation, deterministic generation. Positive examples get real references from the demo data
(drplan/tests/contract.py says why and how); negative ones are sent as generated. Each request runs
in a savepoint that is rolled back, so every example sees the same data whatever ran before it.
The longer run, against a live server, is bench/api_fuzz.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from schemathesis.checks import CHECKS, load_all_checks

from drplan.tests import contract

pytestmark = [pytest.mark.contract, pytest.mark.django_db]

DEMO_PASSWORDS = {"admin": "admin-demo-pw", "operator": "operator-demo-pw"}  # drplan/demo/organisation.yaml
CONFIG = Path(__file__).resolve().parents[2] / "schemathesis.toml"


@contextmanager
def _connection_kept() -> Iterator[None]:
    """Django closes "old" connections around each request; inside the test's transaction that would
    close it. The test client disconnects the same handlers; a bare WSGI call needs it done here."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db: None) -> Iterator[schemathesis.BaseSchema]:
    call_command("seed_demo", stdout=StringIO())
    contract.add_executions()
    with _connection_kept():
        yield schemathesis.openapi.from_wsgi(
            "/api/schema/", get_wsgi_application(), config=schemathesis.Config.from_path(CONFIG)
        )


def _as(role: str) -> str:
    """Use the demo user of that role: its real DRF token, and its credentials for POST /auth/token."""
    contract.use(contract.catalogue(role, DEMO_PASSWORDS[role]))
    token, _ = Token.objects.get_or_create(user=User.objects.get(username=role))
    return token.key


@pytest.fixture
def admin_token(api_schema: schemathesis.BaseSchema) -> str:
    return _as("admin")


@pytest.fixture
def operator_token(api_schema: schemathesis.BaseSchema) -> str:
    return _as("operator")


def _call_and_validate(case: schemathesis.Case, token: str) -> None:
    with transaction.atomic():
        case.call_and_validate(headers={"Authorization": f"Token {token}"})
        transaction.set_rollback(True)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_admin_gets_what_the_schema_promises(case: schemathesis.Case, admin_token: str) -> None:
    _call_and_validate(case, admin_token)


@schema.parametrize()
def test_operator_gets_what_the_schema_promises(case: schemathesis.Case, operator_token: str) -> None:
    """Most writes are 403 for an operator: documented like every other answer."""
    _call_and_validate(case, operator_token)


def test_every_check_is_on_for_every_operation_and_the_run_is_bounded():
    """What "zero failures" above means: no check is switched off in schemathesis.toml, for any
    operation or phase, and each operation gets a bounded, reproducible number of examples."""
    load_all_checks()
    config = schemathesis.Config.from_path(CONFIG)
    loaded = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True), config=config)
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) >= 93  # PUT/PATCH /runbooks/{id} are not operations: a runbook changes by version
    names = sorted(check.__name__ for check in CHECKS.get_all())
    assert len(names) >= 14
    for operation in operations:
        for phase in ("examples", "fuzzing"):
            checks = loaded.config.checks_config_for(operation=operation, phase=phase)
            assert [name for name in names if not getattr(checks, name).enabled] == [], operation.label
    generation = loaded.config.generation_for(operation=operations[0])
    assert generation.deterministic
    assert 10 <= generation.max_examples <= 50
