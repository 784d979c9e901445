"""Authorization matrix shared by the plan and analytics API tests.

Authors (approver, admin) may write; viewer, operator and auditor get 403 and anonymous 401,
and a denied request changes no row and writes no audit entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import models

from core import audit
from core.models import AuditEntry

ROLE_EXPECTATIONS = [
    (None, 401),
    ("viewer", 403),
    ("operator", 403),
    ("auditor", 403),
    ("approver", None),
    ("admin", None),
]
READ_EXPECTATIONS = [
    (None, 401),
    ("viewer", 200),
    ("operator", 200),
    ("approver", 200),
    ("auditor", 200),
    ("admin", 200),
]
SUCCESS = {"post": 201, "put": 200, "patch": 200, "delete": 204}
METHODS = list(SUCCESS)


@dataclass
class Resource:
    url: str
    make: Callable[[], models.Model]
    create: Callable[[models.Model], dict[str, Any]]
    put: Callable[[models.Model], dict[str, Any]]
    patch: dict[str, Any]
    counted: list[type[models.Model]] = field(default_factory=list)


def _state(resource: Resource, obj: models.Model) -> tuple[Any, ...]:
    counts = tuple(model.objects.count() for model in resource.counted)
    current = type(obj).objects.filter(pk=obj.pk).first()
    return counts, audit.snapshot(current) if current else None, AuditEntry.objects.count()


def check_write(client: Any, resource: Resource, method: str, expected: int | None) -> None:
    obj = resource.make()
    url = resource.url if method == "post" else f"{resource.url}/{obj.pk}"
    data = {"post": resource.create, "put": resource.put, "patch": lambda _: resource.patch}.get(method)
    before = _state(resource, obj)

    body = None if method == "delete" else data(obj)
    response = getattr(client, method)(url, body, format="json")

    after = _state(resource, obj)
    if expected is not None:
        assert response.status_code == expected, response.content
        assert response.json()["error"]["code"] in {"not_authenticated", "permission_denied"}
        assert after == before, "a denied request changed something"
        return
    assert response.status_code == SUCCESS[method], response.content
    assert after[2] == before[2] + 1, "exactly one audit entry per write"
    if method == "post":
        assert after[0][0] == before[0][0] + 1
    elif method == "delete":
        assert after[1] is None
    else:
        assert after[1] != before[1]


def check_read(client: Any, resource: Resource, expected: int) -> None:
    obj = resource.make()
    for url in (resource.url, f"{resource.url}/{obj.pk}"):
        response = client.get(url)
        assert response.status_code == expected, (url, response.content)


def check_body_rejections(client: Any, resource: Resource) -> None:
    """Malformed JSON is a 400 and a body over DRPLAN_MAX_REQUEST_BYTES a 413, on create and update alike."""
    from django.conf import settings

    obj = resource.make()
    before = _state(resource, obj)
    for method, url in (("POST", resource.url), ("PUT", f"{resource.url}/{obj.pk}")):
        bad = client.generic(method, url, '{"name": ', content_type="application/json")
        assert bad.status_code == 400, bad.content
        assert bad.json()["error"]["code"] == "malformed_request"
        padding = "x" * (settings.DRPLAN_MAX_REQUEST_BYTES + 1)
        big = client.generic(method, url, f'{{"description": "{padding}"}}', content_type="application/json")
        assert big.status_code == 413
        assert big.json()["error"]["code"] == "payload_too_large"
    assert _state(resource, obj) == before
