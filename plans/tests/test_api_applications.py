"""Applications and the dependency map; sites."""

from __future__ import annotations

import pytest

from core.models import AuditEntry
from plans import services
from plans.models import Application, ApplicationDependency, Site
from plans.tests.factories import make_app, make_plan, make_site

APPS = "/api/v1/dr/applications"
SITES = "/api/v1/dr/sites"


def test_create_application_with_dependencies(api_for, db):
    make_site("fra1")
    make_app("orders-db")
    make_app("queue")
    data = {
        "slug": "orders-api",
        "name": "Orders API",
        "tier": 1,
        "owner": "Team Orders",
        "owner_email": "orders@example.com",
        "description": "REST API",
        "site": "fra1",
        "depends_on": ["orders-db", "queue"],
    }

    response = api_for("approver").post(APPS, data, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    app = Application.objects.get(slug="orders-api")
    assert body == {
        **data,
        "id": app.pk,
        "dependents": [],
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert sorted(app.depends_on.values_list("slug", flat=True)) == ["orders-db", "queue"]
    entry = AuditEntry.objects.get(object_type="plans.application", action="create")
    assert entry.after["depends_on"] == ["orders-db", "queue"]
    assert entry.after["slug"] == "orders-api"


def test_lookup_by_slug_and_dependents(api_for, db):
    db_app = make_app("orders-db")
    make_app("orders-api", depends_on=(db_app,))
    body = api_for("viewer").get(f"{APPS}/orders-db").json()
    assert body["id"] == db_app.pk
    assert body["dependents"] == ["orders-api"]
    assert body["depends_on"] == []


def test_update_dependencies_replaces_them_and_audits(api_for, db):
    a, b, c = make_app("a"), make_app("b"), make_app("c")
    app = make_app("api", depends_on=(a, b))

    response = api_for("admin").patch(f"{APPS}/{app.pk}", {"depends_on": ["b", "c"]}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["depends_on"] == ["b", "c"]
    assert sorted(app.depends_on.values_list("slug", flat=True)) == ["b", "c"]
    entry = AuditEntry.objects.get(object_type="plans.application", action="update")
    assert entry.before["depends_on"] == ["a", "b"]
    assert entry.after["depends_on"] == ["b", "c"]
    assert c.pk  # c exists; a's link was removed
    assert not ApplicationDependency.objects.filter(application=app, depends_on=a).exists()


def test_patch_without_depends_on_keeps_them(api_for, db):
    dep = make_app("orders-db")
    app = make_app("orders-api", depends_on=(dep,))
    response = api_for("admin").patch(f"{APPS}/{app.pk}", {"name": "Orders"}, format="json")
    assert response.status_code == 200
    assert response.json()["depends_on"] == ["orders-db"]


def test_dependency_cycle_is_400_naming_the_cycle_and_changes_nothing(api_for, db):
    api = make_app("orders-api")
    make_app("orders-db", depends_on=(api,))
    rows, audits = ApplicationDependency.objects.count(), AuditEntry.objects.count()

    response = api_for("approver").patch(f"{APPS}/{api.pk}", {"depends_on": ["orders-db"]}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "dependency_cycle",
            "message": "cycle: orders-api -> orders-db -> orders-api",
            "fields": {"depends_on": ["cycle: orders-api -> orders-db -> orders-api"]},
        }
    }
    assert ApplicationDependency.objects.count() == rows
    assert AuditEntry.objects.count() == audits


def test_long_cycle_and_put_rollback_keep_other_fields(api_for, db):
    a = make_app("a")
    b = make_app("b", depends_on=(a,))
    c = make_app("c", depends_on=(b,))
    data = {"slug": "a", "name": "Renamed", "tier": 2, "depends_on": ["c"]}

    response = api_for("approver").put(f"{APPS}/{a.pk}", data, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "cycle: a -> c -> b -> a"
    a.refresh_from_db()
    assert a.name == "A"  # the application update was rolled back with the rejected dependencies
    assert c.depends_on.get() == b


def test_self_dependency_is_rejected(api_for, db):
    app = make_app("orders-api")
    response = api_for("approver").patch(f"{APPS}/{app.pk}", {"depends_on": ["orders-api"]}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["fields"] == {
        "depends_on": ["an application cannot depend on itself (cycle: orders-api -> orders-api)"]
    }
    assert ApplicationDependency.objects.count() == 0


def test_set_dependencies_service_audits_by_default(users, db):
    a, b = make_app("a"), make_app("b")
    services.set_dependencies(a, [b], actor=users["approver"])
    entry = AuditEntry.objects.get()
    assert (entry.before, entry.after, entry.actor_username) == ({"depends_on": []}, {"depends_on": ["b"]}, "approver")


def test_recovery_order_endpoint(api_for, db):
    storage = make_app("storage")
    db_app = make_app("orders-db", depends_on=(storage,))
    queue = make_app("queue")
    api = make_app("orders-api", depends_on=(db_app, queue))
    response = api_for("operator").get(f"{APPS}/{api.pk}/dependencies")
    assert response.status_code == 200
    assert [a["slug"] for a in response.json()] == ["storage", "orders-db", "queue"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"slug": "x", "name": "X", "depends_on": ["ghost"]}, "depends_on"),
        ({"slug": "x", "name": "X", "tier": 9}, "tier"),
        ({"slug": "x", "name": "X", "tier": "one"}, "tier"),
        ({"slug": "x", "name": "X", "site": "nowhere"}, "site"),
        ({"slug": "x", "name": "X", "owner_email": "not-an-email"}, "owner_email"),
        ({"slug": "x", "name": "X", "depends_on": "orders-db"}, "depends_on"),
        ({"name": "X"}, "slug"),
    ],
)
def test_application_bad_input(api_for, db, data, field):
    make_app("orders-db")
    response = api_for("approver").post(APPS, data, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert Application.objects.count() == 1


def test_a_taken_slug_is_409(api_for, db):
    make_app("orders-db")
    response = api_for("approver").post(APPS, {"slug": "orders-db", "name": "Dup"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {"slug": ["application with this slug already exists."]}
    assert Application.objects.count() == 1


def test_list_applications_filters(api_for, db):
    make_site("fra1")
    db_app = make_app("orders-db", tier=1, site=Site.objects.get())
    make_app("orders-api", tier=2, depends_on=(db_app,))
    make_app("reports", tier=3)
    client = api_for("viewer")

    def slugs(query: str) -> list[str]:
        return [a["slug"] for a in client.get(f"{APPS}?{query}").json()["results"]]

    assert slugs("") == ["orders-db", "orders-api", "reports"]
    assert slugs("tier=1&tier=3") == ["orders-db", "reports"]
    assert slugs("site=fra1") == ["orders-db"]
    assert slugs("depends_on=orders-db") == ["orders-api"]
    assert slugs("search=report") == ["reports"]


def test_site_crud(api_for, db):
    client = api_for("approver")
    data = {"code": "fra1", "name": "Frankfurt 1", "kind": "cloud_region", "location": "Frankfurt", "description": ""}
    created = client.post(SITES, data, format="json")
    assert created.status_code == 201, created.content
    site = Site.objects.get()
    assert created.json() == {
        **data,
        "id": site.pk,
        "created_at": created.json()["created_at"],
        "updated_at": created.json()["updated_at"],
    }
    assert client.get(f"{SITES}/fra1").json()["id"] == site.pk
    updated = client.put(f"{SITES}/{site.pk}", {**data, "name": "FRA-1"}, format="json")
    assert updated.status_code == 200 and updated.json()["name"] == "FRA-1"
    assert client.patch(f"{SITES}/{site.pk}", {"kind": "moon"}, format="json").status_code == 400
    assert client.delete(f"{SITES}/{site.pk}").status_code == 204
    assert not Site.objects.exists()
    assert list(
        AuditEntry.objects.filter(object_type="plans.site").order_by("seq").values_list("action", flat=True)
    ) == [
        "create",
        "update",
        "delete",
    ]


def test_site_used_as_primary_site_cannot_be_deleted(api_for, db):
    site = make_site("fra1")
    make_plan("orders-dr", primary_site=site)
    response = api_for("admin").delete(f"{SITES}/{site.pk}")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert Site.objects.filter(pk=site.pk).exists()


def test_site_bad_input(api_for, db):
    make_site("fra1")
    client = api_for("approver")
    assert client.post(SITES, {"code": "fra1", "name": "dup"}, format="json").status_code == 409  # taken
    assert client.post(SITES, {"code": "bad code", "name": "x"}, format="json").status_code == 400
    response = client.post(SITES, {"code": "ams1"}, format="json")
    assert response.json()["error"]["fields"] == {"name": ["This field is required."]}
    assert Site.objects.count() == 1
