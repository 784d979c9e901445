"""GET /api/v1/dr/runbook-templates (list, detail) and POST …/{slug}/use, and the catalogue page."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from core.models import AuditEntry
from core.secrets import set_secret
from failover.models import FailoverExecution
from plans.tests.factories import make_app
from runbooks import library
from runbooks.models import Runbook, RunbookImport, RunbookStep, RunbookVersion

pytestmark = pytest.mark.django_db

BASE = "/api/v1/dr/runbook-templates/"
USE = f"{BASE}postgres-active-passive/use/"
MAPPING = {"pg_primary": "orders-primary-dsn", "pg_standby": "orders-standby-dsn"}


@pytest.fixture
def my_secrets() -> None:
    set_secret("orders-primary-dsn", "postgresql://u:pw@db1:5432/orders")
    set_secret("orders-standby-dsn", "postgresql://u:pw@db2:5432/orders")


def _stored() -> tuple[int, int, int]:
    return Runbook.objects.count(), RunbookVersion.objects.count(), RunbookImport.objects.count()


def test_the_list_says_what_each_template_ran_against(api_for) -> None:
    response = api_for("viewer").get(BASE)
    assert response.status_code == 200
    found = {item["slug"]: item for item in response.json()}
    assert set(found) == {t.slug for t in library.all_templates()}
    item = found["postgres-backup-restore"]
    assert item["strategy"] == "backup_restore" and item["strategy_label"] == "Backup and restore"
    assert item["systems"] == ["PostgreSQL 16"]
    assert item["run_against"].startswith("PostgreSQL 16 (pgserver)")
    assert item["dry_run_only"] is False
    assert item["tested_by"] == (
        "runbooks/tests/test_template_runs.py::test_template_runs_against_real_servers[postgres-backup-restore]"
    )
    assert item["secrets"] == [{"name": "pg_dr", "description": library.get_template(item["slug"]).secrets["pg_dr"]}]
    assert item["steps"] == 7 and item["category"] == "restore"
    assert [p["name"] for p in item["parameters"]][:2] == ["backup_dir", "data_dir"]
    assert item["last_run"] is None
    shipped = json.loads(library.RECORD_FILE.read_text())["postgres-backup-restore"]
    assert item["shipped_record"] == shipped and shipped["rto_seconds"] > 0  # bench/templates.py's reference run
    assert found["orders-db-failover"]["dry_run_only"] is True and found["orders-db-failover"]["shipped_record"] is None
    assert {i["strategy"] for i in found.values()} >= {"backup_restore", "pilot_light", "active_passive", "replication"}


def test_detail_has_the_document_without_the_block_and_unknown_is_404(api_for) -> None:
    client = api_for("viewer")
    response = client.get(f"{BASE}postgres-pilot-light/")
    assert response.status_code == 200
    body = response.json()
    assert "template" not in body["document"]
    assert body["document"]["slug"] == "postgres-pilot-light" and body["steps"] == 5
    assert client.get(f"{BASE}no-such-template/").status_code == 404
    assert api_for(None).get(BASE).status_code == 401


def test_use_makes_a_draft_bound_to_my_secrets_with_provenance(api_for, my_secrets) -> None:
    make_app("orders-db")
    response = api_for("approver").post(
        USE, {"slug": "orders-ap", "application": "orders-db", "secrets": MAPPING}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["version"] == "1.0.0"
    assert body["provenance"]["format"] == "template"
    assert body["provenance"]["report"]["notes"][0].startswith("Created from template postgres-active-passive 1.0.0")
    version = RunbookVersion.objects.get(runbook__slug="orders-ap")
    assert version.application.slug == "orders-db"
    params = {s.step_id: s.params for s in RunbookStep.objects.filter(version=version)}
    assert params["fence-primary"]["dsn_secret"] == "orders-primary-dsn"
    assert params["promote-standby"]["dsn_secret"] == "orders-standby-dsn"
    assert "pg_standby" not in repr(params) and "pg_primary" not in repr(params)
    record = RunbookImport.objects.get(version=version)
    assert record.report["template"] == {
        "slug": "postgres-active-passive",
        "version": "1.0.0",
        "strategy": "active_passive",
    }
    assert record.report["secrets"] == MAPPING
    assert record.original == (library.TEMPLATES_DIR / "postgres-active-passive.yaml").read_text()
    assert library.provenance(version) == record.report["template"]
    entry = AuditEntry.objects.filter(action="create", comment="from template postgres-active-passive").get()
    assert entry.actor_username == "approver"


def test_secrets_in_templated_strings_are_rebound_too() -> None:
    doc = {
        "steps": [
            {"id": "a", "action": "http", "with": {"headers": {"Authorization": "Bearer {{ secrets.tok }}"}}},
            {"id": "b", "action": "http", "with": {"body": {"x": "{{ secrets['tok'] }}"}}},
        ]
    }
    assert library.secret_references(doc) == {"tok"}
    rebound = library.rebind_secrets(doc, {"tok": "my-token"})
    assert rebound["steps"][0]["with"]["headers"]["Authorization"] == "Bearer {{ secrets['my-token'] }}"
    assert rebound["steps"][1]["with"]["body"]["x"] == "{{ secrets['my-token'] }}"
    assert library.rebind_secrets(doc, {"tok": "other"})["steps"][0]["with"]["headers"]["Authorization"] == (
        "Bearer {{ secrets.other }}"
    )
    assert doc["steps"][0]["with"]["headers"]["Authorization"] == "Bearer {{ secrets.tok }}"  # not changed


@pytest.mark.parametrize("role", [None, "viewer", "operator", "auditor"])
def test_only_runbook_authors_may_use_a_template(api_for, my_secrets, role) -> None:
    response = api_for(role).post(USE, {"slug": "orders-ap", "secrets": MAPPING}, format="json")
    assert response.status_code == (401 if role is None else 403)
    assert _stored() == (0, 0, 0)


def test_admin_may_use_a_template_as_the_readme_shows(api_for, my_secrets) -> None:
    response = api_for("admin").post(USE.rstrip("/"), {"slug": "orders-ap", "secrets": MAPPING}, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("url", "body", "code", "field"),
    [
        (f"{BASE}no-such-template/use/", {"slug": "x", "secrets": {}}, 404, None),
        (USE, {"slug": "taken", "secrets": MAPPING}, 409, "slug"),
        (USE, {"slug": "orders-ap", "application": "nope", "secrets": MAPPING}, 400, "application"),
        (USE, {"slug": "orders-ap", "secrets": {**MAPPING, "pg_standby": "missing"}}, 400, "secrets.pg_standby"),
        (USE, {"slug": "orders-ap", "secrets": {"pg_primary": "orders-primary-dsn"}}, 400, "secrets.pg_standby"),
        (USE, {"slug": "orders-ap", "secrets": {**MAPPING, "extra": "orders-primary-dsn"}}, 400, "secrets.extra"),
        (USE, {"slug": "Not A Slug!", "secrets": MAPPING}, 400, "slug"),
        (USE, {"slug": 5, "secrets": MAPPING}, 400, "slug"),
        (USE, {"slug": "orders-ap", "secrets": ["pg_primary"]}, 400, "secrets"),
        (USE, {"slug": "orders-ap", "secrets": {**MAPPING, "pg_primary": 7}}, 400, "secrets.pg_primary"),
        (USE, {"slug": "orders-ap", "application": 3, "secrets": MAPPING}, 400, "application"),
        (USE, {"secrets": MAPPING}, 400, "slug"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    api_for, my_secrets, url: str, body: dict[str, Any], code: int, field: str | None
) -> None:
    client = api_for("approver")
    if code == 409:
        assert client.post(USE, {"slug": "taken", "secrets": MAPPING}, format="json").status_code == 201
    before = _stored()
    response = client.post(url, body, format="json")
    assert response.status_code == code, response.content
    if field is not None:
        fields = response.json()["error"].get("fields") or {}
        assert any(name == field or name.startswith(f"{field}") for name in fields), response.json()
    assert _stored() == before


def test_last_run_is_the_latest_completed_real_execution(api_for, my_secrets, users) -> None:
    version = library.use_template(
        "postgres-active-passive", runbook_slug="orders-ap", secrets=MAPPING, actor=users["approver"]
    )
    now = timezone.now()

    def execution(**fields: Any) -> FailoverExecution:
        values = {"execution_type": "runbook", "status": "completed", "triggered_at": now - timedelta(minutes=5)}
        return FailoverExecution.objects.create(runbook_version=version, **{**values, **fields})

    execution(actual_rto_seconds=30.0, finished_at=now - timedelta(minutes=3))
    wanted = execution(actual_rto_seconds=12.5, finished_at=now - timedelta(minutes=2))
    execution(actual_rto_seconds=1.0, finished_at=now - timedelta(minutes=1), dry_run=True)
    execution(status="failed", finished_at=now)
    body = api_for("viewer").get(f"{BASE}postgres-active-passive/").json()
    assert body["last_run"]["rto_seconds"] == 12.5 and body["last_run"]["execution"] == wanted.pk
    assert api_for("viewer").get(f"{BASE}postgres-pilot-light/").json()["last_run"] is None


def test_a_bad_block_is_refused_naming_the_file_and_key(tmp_path) -> None:
    source = (library.TEMPLATES_DIR / "postgres-pilot-light.yaml").read_text()
    cases = {
        "strategy: pilot_light": ("strategy: warm_standby", "template.strategy"),
        "  systems: [PostgreSQL 16]\n": ("  systems: []\n", "template.systems"),
        "    pg_primary: ": ("    pg_other: ", "template.secrets"),
        "  strategy: pilot_light\n": ("  strategy: pilot_light\n  colour: blue\n", "template.colour"),
    }
    for old, (new, key) in cases.items():
        path = tmp_path / "broken.yaml"
        path.write_text(source.replace(old, new, 1))
        with pytest.raises(library.TemplateError) as caught:
            library.load(path)
        assert caught.value.field == f"broken.yaml: {key}", caught.value.message
        assert caught.value.message.startswith(f"broken.yaml: {key}: ")
    (tmp_path / "none.yaml").write_text(library.document_text(library.TEMPLATES_DIR / "postgres-pilot-light.yaml"))
    with pytest.raises(library.TemplateError, match=r"none.yaml: no `template:` block"):
        library.load(tmp_path / "none.yaml")


def test_the_catalogue_page_lists_the_templates(client, users) -> None:
    client.force_login(users["approver"])
    response = client.get("/runbooks/templates/")
    assert response.status_code == 200
    html = response.content.decode()
    for template in library.all_templates():
        assert template.name in html
    assert "Backup and restore" in html and "dry run only" in html and "Reference run (shipped)" in html
    assert 'action="/runbooks/templates/postgres-pilot-light/use/"' in html
    client.force_login(users["viewer"])
    html = client.get("/runbooks/templates/").content.decode()
    assert "<summary>Use template</summary>" not in html and '/use/"' not in html  # reads, does not author


def test_the_use_button_makes_a_draft_and_opens_it_in_the_builder(client, users, my_secrets) -> None:
    client.force_login(users["approver"])
    form = {"slug": "orders-ap", "secret-pg_primary": "orders-primary-dsn", "secret-pg_standby": "missing"}
    response = client.post("/runbooks/templates/postgres-active-passive/use/", form)
    assert response.status_code == 400
    assert "secrets.pg_standby" in response.content.decode() and "no secret named" in response.content.decode()
    assert _stored() == (0, 0, 0)
    form["secret-pg_standby"] = "orders-standby-dsn"
    response = client.post("/runbooks/templates/postgres-active-passive/use/", form)
    assert response.status_code == 302 and response["Location"] == "/builder/runbooks/orders-ap/"
    assert RunbookVersion.objects.get(runbook__slug="orders-ap").status == "draft"
    page = client.get("/builder/runbooks/orders-ap/").content.decode()
    assert "Imported from template" in page and "postgres-active-passive.yaml" in page
    client.force_login(users["viewer"])
    form["slug"] = "other"
    assert client.post("/runbooks/templates/postgres-active-passive/use/", form).status_code == 403
    assert client.get("/runbooks/templates/postgres-active-passive/use/").status_code == 405
    assert _stored() == (1, 1, 1)
