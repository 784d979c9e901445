from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core import audit
from core.choices import AuditAction, AuthMethod
from core.models import AuditEntry
from plans.models import Site

URL = "/api/v1/dr/audit-log"


@pytest.fixture
def entries(users: dict) -> list[AuditEntry]:
    fra = Site.objects.create(code="fra1", name="Frankfurt")
    ams = Site.objects.create(code="ams1", name="Amsterdam")
    return [
        audit.record(AuditAction.CREATE, fra, actor=users["approver"], auth_method=AuthMethod.TOKEN),
        audit.record(AuditAction.UPDATE, fra, actor=users["approver"], before={"name": "F"}, after={"name": "Fra"}),
        audit.record(AuditAction.CREATE, ams, actor=users["admin"], auth_method=AuthMethod.SESSION),
        audit.record(AuditAction.APPROVE, object_type="runbooks.runbookversion", object_id="9", object_repr="db@1"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"),
    [(None, 401), ("viewer", 403), ("operator", 403), ("approver", 403), ("auditor", 200), ("admin", 200)],
)
def test_permission_matrix(api_for, entries: list[AuditEntry], role: str | None, status: int) -> None:
    client = api_for(role)
    list_response = client.get(URL)
    detail_response = client.get(f"{URL}/{entries[0].seq}")
    assert (list_response.status_code, detail_response.status_code) == (status, status)
    if status == 401:
        assert list_response.json()["error"]["code"] == "not_authenticated"
    if status == 403:
        assert list_response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_read_only_even_for_admin(api_for, entries: list[AuditEntry], method: str, role: str) -> None:
    client = api_for(role)
    url = URL if method == "post" else f"{URL}/{entries[0].seq}"
    response = getattr(client, method)(url, {"comment": "x"}, format="json")
    assert response.status_code in (403, 405)
    assert AuditEntry.objects.count() == len(entries)
    assert AuditEntry.objects.get(seq=entries[0].seq).comment == ""
    assert audit.verify_chain() is None


@pytest.mark.django_db
def test_list_newest_first_with_entry_fields(api_for, entries: list[AuditEntry]) -> None:
    body = api_for("auditor").get(URL).json()
    assert body["count"] == 4
    assert [row["seq"] for row in body["results"]] == [4, 3, 2, 1]
    second = body["results"][2]
    assert second["actor_username"] == "approver"
    assert second["action"] == "update"
    assert second["object_type"] == "plans.site"
    assert second["before"] == {"name": "F"}
    assert second["after"] == {"name": "Fra"}
    assert second["prev_hash"] == entries[0].hash
    assert second["hash"] == entries[1].hash


@pytest.mark.django_db
def test_retrieve_by_seq(api_for, entries: list[AuditEntry]) -> None:
    client = api_for("auditor")
    body = client.get(f"{URL}/3").json()
    assert (body["seq"], body["actor_username"], body["object_repr"]) == (3, "admin", "Amsterdam (ams1)")
    assert client.get(f"{URL}/99").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "seqs"),
    [
        ("actor_username=approver", [2, 1]),
        ("action=create", [3, 1]),
        ("object_type=runbooks.runbookversion", [4]),
        ("auth_method=session", [3]),
        ("ordering=seq", [1, 2, 3, 4]),
        ("seq__gte=2&seq__lte=3", [3, 2]),
    ],
)
def test_filters(api_for, entries: list[AuditEntry], query: str, seqs: list[int]) -> None:
    body = api_for("auditor").get(f"{URL}?{query}").json()
    assert [row["seq"] for row in body["results"]] == seqs


@pytest.mark.django_db
def test_filter_by_object_id_and_date_range(api_for, entries: list[AuditEntry]) -> None:
    client = api_for("auditor")
    fra_id = entries[0].object_id
    body = client.get(URL, {"object_type": "plans.site", "object_id": fra_id}).json()
    assert [row["seq"] for row in body["results"]] == [2, 1]

    now = timezone.now()
    future = (now + dt.timedelta(days=1)).isoformat()
    past = (now - dt.timedelta(days=1)).isoformat()
    assert client.get(URL, {"at__gte": future}).json()["count"] == 0
    assert client.get(URL, {"at__gte": past, "at__lte": future}).json()["count"] == 4
    assert client.get(URL, {"at__lte": entries[1].at.isoformat()}).json()["count"] == 2


@pytest.mark.django_db
def test_bad_filter_is_a_400_naming_the_field(api_for, entries: list[AuditEntry]) -> None:
    response = api_for("auditor").get(URL, {"at__gte": "yesterday-ish", "action": "nope"})
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"at__gte", "action"}


@pytest.mark.django_db
def test_secrets_never_exposed(api_for, users: dict) -> None:
    audit.record(AuditAction.UPDATE, users["viewer"], after=audit.snapshot(users["viewer"]))
    body = api_for("auditor").get(URL).json()
    assert body["results"][0]["after"]["password"] == "***"
    assert users["viewer"].password not in str(body)
