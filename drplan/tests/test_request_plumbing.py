"""Request plumbing every API client relies on: request ids, size limit, error shape."""

import pytest
from django.test import override_settings


@pytest.mark.django_db
def test_health_is_public_and_echoes_a_request_id(client):
    response = client.get("/api/v1/dr/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_safe_client_request_id_is_kept_and_unsafe_one_replaced(client):
    assert client.get("/api/v1/dr/health", HTTP_X_REQUEST_ID="trace-42.a_b")["X-Request-ID"] == "trace-42.a_b"
    replaced = client.get("/api/v1/dr/health", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-ID"]
    assert replaced != "bad id\nwith newline"
    assert len(replaced) == 32


@pytest.mark.django_db
@override_settings(DRPLAN_MAX_REQUEST_BYTES=100)
def test_oversized_body_is_refused_with_413_before_parsing(client):
    response = client.post("/api/v1/dr/health", data="x" * 101, content_type="application/json")
    assert response.status_code == 413
    body = response.json()
    assert body["error"]["code"] == "payload_too_large"
    assert "limit is 100 bytes" in body["error"]["message"]


@pytest.mark.django_db
def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/dr/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "DRPlan API"
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_token_is_issued_for_valid_credentials_only(client, users):
    from conftest import TEST_PASSWORD

    good = client.post("/api/v1/dr/auth/token", {"username": "approver", "password": TEST_PASSWORD})
    assert good.status_code == 200
    token = good.json()["token"]
    assert client.get("/api/v1/dr/health", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200

    bad = client.post("/api/v1/dr/auth/token", {"username": "approver", "password": "wrong"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation_error"


@pytest.mark.django_db
def test_home_page_links_admin_and_api_docs(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b'href="/admin/"' in response.content
    assert b'href="/api/docs/"' in response.content


@pytest.mark.django_db
def test_a_taken_unique_value_is_409_but_mixed_with_other_errors_400(api_for):
    client = api_for("approver")
    assert client.post("/api/v1/dr/sites", {"code": "ams1", "name": "Amsterdam"}, format="json").status_code == 201
    taken = client.post("/api/v1/dr/sites", {"code": "ams1", "name": "Amsterdam again"}, format="json")
    assert taken.status_code == 409
    assert taken.json()["error"] == {
        "code": "conflict",
        "message": "code: site with this code already exists.",
        "fields": {"code": ["site with this code already exists."]},
    }
    both = client.post("/api/v1/dr/sites", {"code": "ams1", "name": ""}, format="json")
    assert both.status_code == 400
    assert both.json()["error"]["code"] == "validation_error"
