"""The secret store: encryption, services, the API (authorization matrix) and the CLI; the value never leaks."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core import audit, secrets
from core.exceptions import Conflict, InvalidInput
from core.models import AuditEntry, Secret

URL = "/api/v1/dr/secrets"
VALUE = "postgresql://dr:Pa55-w0rd!@db.example:5432/orders"
NEW_VALUE = "an0ther-Sup3r-s3cret"


def _audit_text() -> str:
    """Everything the audit table holds that could carry a value."""
    return json.dumps(list(AuditEntry.objects.values("before", "after", "comment", "object_repr")))


def _counts() -> tuple[int, int]:
    return Secret.objects.count(), AuditEntry.objects.count()


# --- encryption ---------------------------------------------------------------------------


def test_round_trip_with_the_derived_key_and_ciphertext_is_not_the_value(monkeypatch, settings) -> None:
    monkeypatch.delenv(secrets.KEY_ENV, raising=False)
    ciphertext = secrets.encrypt(VALUE)
    assert VALUE not in ciphertext
    assert "Pa55" not in ciphertext
    assert secrets.decrypt(ciphertext) == VALUE
    assert secrets.encrypt(VALUE) != ciphertext  # random IV each time

    settings.SECRET_KEY = "a different secret key"
    with pytest.raises(InvalidInput) as error:
        secrets.decrypt(ciphertext, name="orders_dsn")
    assert error.value.message.startswith("secret 'orders_dsn' cannot be decrypted with the current key")
    assert VALUE not in error.value.message


def test_explicit_key_from_the_environment_and_rotation(monkeypatch) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv(secrets.KEY_ENV, old)
    ciphertext = secrets.encrypt(VALUE)
    assert Fernet(old.encode()).decrypt(ciphertext.encode()).decode() == VALUE

    monkeypatch.setenv(secrets.KEY_ENV, new)  # wrong key
    with pytest.raises(secrets.SecretDecryptError, match="cannot be decrypted with the current key"):
        secrets.decrypt(ciphertext)

    monkeypatch.setenv(secrets.KEY_ENV, f"{new},{old}")  # rotation: the new key encrypts, the old still decrypts
    assert secrets.decrypt(ciphertext) == VALUE
    assert Fernet(new.encode()).decrypt(secrets.encrypt("x1234").encode()) == b"x1234"


def test_a_malformed_key_is_a_configuration_error(monkeypatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv(secrets.KEY_ENV, "not-a-key")
    with pytest.raises(ImproperlyConfigured, match="DRPLAN_SECRETS_KEY key #1 is not a valid Fernet key"):
        secrets.encrypt("value")


# --- services -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_set_get_update_delete_are_audited_without_the_value(users) -> None:
    secret = secrets.set_secret("orders_dsn", VALUE, actor=users["approver"], description="Orders replica")
    assert secret.ciphertext != VALUE
    assert secrets.get_secret_value("orders_dsn") == VALUE

    secrets.set_secret("orders_dsn", NEW_VALUE, actor=users["admin"])
    assert secrets.get_secret_value("orders_dsn") == NEW_VALUE
    assert Secret.objects.get().description == "Orders replica"  # kept when not given

    secrets.delete_secret("orders_dsn", actor=users["admin"])
    assert not Secret.objects.exists()
    entries = list(AuditEntry.objects.order_by("seq"))
    assert [(e.action, e.object_type, e.object_repr, e.actor_username) for e in entries] == [
        ("create", "core.secret", "orders_dsn", "approver"),
        ("update", "core.secret", "orders_dsn", "admin"),
        ("delete", "core.secret", "orders_dsn", "admin"),
    ]
    assert entries[0].after["ciphertext"] == "***"
    assert entries[1].comment == "value replaced"
    text = _audit_text()
    assert VALUE not in text and NEW_VALUE not in text and "Pa55" not in text
    assert audit.verify_chain() is None

    with pytest.raises(InvalidInput, match="secret 'orders_dsn' is not defined"):
        secrets.get_secret_value("orders_dsn")
    with pytest.raises(InvalidInput, match="secret 'orders_dsn' is not defined"):
        secrets.delete_secret("orders_dsn")


@pytest.mark.django_db
def test_create_refuses_a_duplicate_and_bad_input_stores_nothing() -> None:
    secrets.create_secret("token", VALUE)
    before = _counts()
    with pytest.raises(Conflict, match="secret 'token' already exists"):
        secrets.create_secret("token", "other-value")
    with pytest.raises(InvalidInput, match="must contain only letters, digits, hyphens and underscores"):
        secrets.set_secret("bad name!", "value1234")
    with pytest.raises(InvalidInput, match="must be a non-empty string"):
        secrets.set_secret("empty", "")
    assert _counts() == before
    assert secrets.get_secret_value("token") == VALUE
    assert secrets.missing_secrets(["token", "nope", "also_missing"]) == ["also_missing", "nope"]


@pytest.mark.django_db
def test_a_secret_stored_under_another_key_gives_a_clear_error(settings) -> None:
    secrets.set_secret("api_token", VALUE)
    settings.SECRET_KEY = "rotated without DRPLAN_SECRETS_KEY"
    with pytest.raises(InvalidInput) as error:
        secrets.get_secret_value("api_token")
    assert error.value.code == "secret_undecryptable"
    assert "secret 'api_token' cannot be decrypted with the current key" in error.value.message


# --- Redactor -----------------------------------------------------------------------------


def test_redactor_masks_longest_first_recursively_and_ignores_short_values() -> None:
    redactor = secrets.Redactor(["s3cret", "s3cret-and-more", "ab"])
    assert redactor.redact("x s3cret-and-more y s3cret ab") == "x *** y *** ab"
    data = {"argv": ["psql", "s3cret"], "nested": {"s3cret": ("s3cret", 5, None)}, "n": 1}
    assert redactor.redact(data) == {"argv": ["psql", "***"], "nested": {"***": ["***", 5, None]}, "n": 1}
    assert data["argv"] == ["psql", "s3cret"]  # a copy, the input is untouched
    redactor.add("later-added")
    assert redactor.redact("a later-added b") == "a *** b"
    assert secrets.Redactor().redact("nothing s3cret") == "nothing s3cret"
    assert secrets.Redactor(["a.b*c"]).redact("x a.b*c axbbc") == "x *** axbbc"  # literal, not a regex


# --- API ----------------------------------------------------------------------------------


@pytest.fixture
def stored(db: None) -> Secret:
    return secrets.set_secret("orders_dsn", VALUE, description="Orders replica")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        (None, 401, 401),
        ("viewer", 403, 403),
        ("operator", 200, 403),
        ("auditor", 200, 403),
        ("approver", 200, 201),
        ("admin", 200, 201),
    ],
)
def test_authorization_matrix(api_for, stored: Secret, role: str | None, read: int, write: int) -> None:
    client = api_for(role)
    assert client.get(URL).status_code == read
    assert client.get(f"{URL}/orders_dsn").status_code == read

    before = _counts()
    created = client.post(URL, {"name": "new_token", "value": NEW_VALUE}, format="json")
    assert created.status_code == write
    changed = client.put(f"{URL}/orders_dsn", {"value": NEW_VALUE, "description": "x"}, format="json")
    patched = client.patch(f"{URL}/orders_dsn", {"description": "y"}, format="json")
    deleted = client.delete(f"{URL}/new_token")
    if write == 201:
        assert (changed.status_code, patched.status_code, deleted.status_code) == (200, 200, 204)
        assert list(Secret.objects.values_list("name", "description")) == [("orders_dsn", "y")]
        assert secrets.get_secret_value("orders_dsn") == NEW_VALUE
        assert AuditEntry.objects.count() == before[1] + 4
    else:
        assert (changed.status_code, patched.status_code, deleted.status_code) == (write, write, write)
        assert _counts() == before
        assert secrets.get_secret_value("orders_dsn") == VALUE
        assert created.json()["error"]["code"] == ("not_authenticated" if write == 401 else "permission_denied")


@pytest.mark.django_db
def test_responses_and_audit_never_contain_the_value(api_for, stored: Secret) -> None:
    client = api_for("approver")
    responses = [
        client.get(URL),
        client.get(f"{URL}/orders_dsn"),
        client.post(URL, {"name": "api_token", "value": NEW_VALUE, "description": "CDN API"}, format="json"),
        client.put(f"{URL}/api_token", {"name": "api_token", "value": NEW_VALUE + "2"}, format="json"),
        client.patch(f"{URL}/api_token", {"value": NEW_VALUE + "3"}, format="json"),
        client.post(URL, {"name": "api_token", "value": NEW_VALUE}, format="json"),  # 409
        client.post(URL, {"name": "bad name", "value": NEW_VALUE}, format="json"),  # 400
        client.get("/api/v1/dr/audit-log", {"page_size": 500}),
        api_for("admin").get("/api/v1/dr/audit-log", {"page_size": 500}),
    ]
    assert [r.status_code for r in responses] == [200, 200, 201, 200, 200, 409, 400, 403, 200]
    listing = responses[0].json()
    assert listing["count"] == 1
    assert set(listing["results"][0]) == {"name", "description", "allowed_hosts", "created_at", "updated_at"}
    assert responses[2].json()["name"] == "api_token"
    assert set(responses[2].json()) == {"name", "description", "allowed_hosts", "created_at", "updated_at"}
    assert responses[4].json()["description"] == "CDN API"
    assert responses[5].json()["error"]["message"] == "secret 'api_token' already exists"
    assert "name" in responses[6].json()["error"]["fields"]
    ciphertexts = list(Secret.objects.values_list("ciphertext", flat=True))
    for response in responses:
        body = response.content.decode()
        for value in (VALUE, NEW_VALUE, NEW_VALUE + "2", NEW_VALUE + "3", *ciphertexts):
            assert value not in body
    text = _audit_text()
    for value in (VALUE, NEW_VALUE, NEW_VALUE + "2", NEW_VALUE + "3", *ciphertexts):
        assert value not in text
    assert secrets.get_secret_value("api_token") == NEW_VALUE + "3"


@pytest.mark.django_db
def test_api_validation_names_the_field_and_stores_nothing(api_for, stored: Secret) -> None:
    client = api_for("admin")
    before = _counts()
    cases = [
        (client.post(URL, {"value": NEW_VALUE}, format="json"), "name"),
        (client.post(URL, {"name": "x_token"}, format="json"), "value"),
        (client.post(URL, {"name": "x_token", "value": ""}, format="json"), "value"),
        (client.put(f"{URL}/orders_dsn", {"description": "no value"}, format="json"), "value"),
        (client.put(f"{URL}/orders_dsn", {"name": "renamed", "value": NEW_VALUE}, format="json"), "name"),
    ]
    for response, field in cases:
        assert response.status_code == 400, response.content
        assert list(response.json()["error"]["fields"]) == [field]
    assert client.put(f"{URL}/missing", {"value": NEW_VALUE}, format="json").status_code == 404
    assert client.delete(f"{URL}/missing").status_code == 404
    assert _counts() == before
    assert secrets.get_secret_value("orders_dsn") == VALUE


@pytest.mark.django_db
def test_value_whitespace_is_kept(api_for) -> None:
    response = api_for("approver").post(URL, {"name": "pem", "value": "  line1\nline2\n"}, format="json")
    assert response.status_code == 201
    assert secrets.get_secret_value("pem") == "  line1\nline2\n"


# --- CLI ----------------------------------------------------------------------------------


def _cli(*args: str, stdin: str | None = None) -> str:
    out = StringIO()
    kwargs = {"stdin": StringIO(stdin)} if stdin is not None else {}
    call_command("secret", *args, stdout=out, **kwargs)
    return out.getvalue()


@pytest.mark.django_db
def test_cli_set_list_delete(users) -> None:
    assert _cli("set", "orders_dsn", "--description", "Orders replica", stdin=VALUE + "\n") == (
        "Created secret 'orders_dsn'\n"
    )
    assert secrets.get_secret_value("orders_dsn") == VALUE  # the trailing newline of `echo` is dropped
    assert _cli("set", "orders_dsn", "--user", "admin", stdin=NEW_VALUE) == "Updated secret 'orders_dsn'\n"
    assert secrets.get_secret_value("orders_dsn") == NEW_VALUE
    listing = _cli("list")
    assert listing.startswith("orders_dsn\t") and listing.rstrip().endswith("\tOrders replica")
    assert VALUE not in listing and NEW_VALUE not in listing
    assert _cli("delete", "orders_dsn") == "Deleted secret 'orders_dsn'\n"
    entries = list(AuditEntry.objects.order_by("seq").values_list("action", "auth_method", "actor_username"))
    assert entries == [("create", "cli", ""), ("update", "cli", "admin"), ("delete", "cli", "")]
    assert VALUE not in _audit_text() and NEW_VALUE not in _audit_text()

    with pytest.raises(CommandError, match="secret 'orders_dsn' is not defined"):
        _cli("delete", "orders_dsn")
    with pytest.raises(CommandError, match="no value given"):
        _cli("set", "empty", stdin="")
    with pytest.raises(CommandError, match="must contain only letters"):
        _cli("set", "bad name", stdin="value1234")
    assert not Secret.objects.exists()


@pytest.mark.django_db
def test_cli_prompts_on_a_terminal(monkeypatch) -> None:
    class Tty(StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter([VALUE, VALUE, "one-value", "another-value"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    out = StringIO()
    call_command("secret", "set", "tty_secret", stdin=Tty(), stdout=out)
    assert secrets.get_secret_value("tty_secret") == VALUE
    with pytest.raises(CommandError, match="the two values differ"):
        call_command("secret", "set", "tty_secret", stdin=Tty(), stdout=out)
    assert secrets.get_secret_value("tty_secret") == VALUE


# --- allowed hosts ------------------------------------------------------------------------


@pytest.mark.django_db
def test_allowed_hosts_are_normalised_stored_and_audited_without_the_value(users) -> None:
    secret = secrets.set_secret(
        "api_token",
        VALUE,
        actor=users["approver"],
        allowed_hosts=[" API.Example.com ", "*.example.net:8443", "10.0.0.7", "[::1]:8080", "api.example.com."],
    )
    assert secret.allowed_hosts == ["api.example.com", "*.example.net:8443", "10.0.0.7", "[::1]:8080"]
    secrets.set_secret("api_token", NEW_VALUE, actor=users["admin"])  # None: kept
    assert Secret.objects.get().allowed_hosts == ["api.example.com", "*.example.net:8443", "10.0.0.7", "[::1]:8080"]
    secrets.update_secret(Secret.objects.get(), allowed_hosts=[], actor=users["admin"])  # []: no restriction
    assert Secret.objects.get().allowed_hosts == []
    entries = list(AuditEntry.objects.order_by("seq"))
    assert entries[0].after["allowed_hosts"] == ["api.example.com", "*.example.net:8443", "10.0.0.7", "[::1]:8080"]
    assert (entries[2].before["allowed_hosts"], entries[2].after["allowed_hosts"]) == (
        ["api.example.com", "*.example.net:8443", "10.0.0.7", "[::1]:8080"],
        [],
    )
    assert entries[2].comment == ""
    assert VALUE not in _audit_text() and NEW_VALUE not in _audit_text()
    assert secrets.get_secret_value("api_token") == NEW_VALUE


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        (["exa mple.com"], "allowed_hosts[0]: 'exa mple.com' is not a host"),
        (["ok.example", "https://api.example.com"], "allowed_hosts[1]: 'https://api.example.com' is not a host"),
        (["*"], "allowed_hosts[0]: '*' is not a host"),
        (["api.*.example.com"], "allowed_hosts[0]: 'api.*.example.com' is not a host"),
        (["api.example.com:0"], "allowed_hosts[0]: 'api.example.com:0' is not a host"),
        (["api.example.com:70000"], "allowed_hosts[0]: 'api.example.com:70000' is not a host"),
        (["a..b"], "allowed_hosts[0]: 'a..b' is not a host"),
        (["[not-ipv6]"], "allowed_hosts[0]: '[not-ipv6]' is not a host"),
        ([""], "allowed_hosts[0]: '' is not a host"),
        ([5], "allowed_hosts[0]: 5 is not a host"),
        ("api.example.com", "allowed_hosts must be a list of host names"),
        (["h.example"] * 101, "allowed_hosts has more than 100 entries"),
    ],
)
def test_malformed_allowed_hosts_are_refused_and_nothing_is_stored(hosts, message: str) -> None:
    with pytest.raises(InvalidInput) as error:
        secrets.set_secret("api_token", VALUE, allowed_hosts=hosts)
    assert error.value.message.startswith(message)
    assert error.value.field == "allowed_hosts"
    if message.endswith("is not a host"):
        assert error.value.message.endswith("(use host, host:port, *.example.com or *.example.com:port)")
    assert not Secret.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("api.example.com", 443, True),
        ("API.EXAMPLE.COM.", 443, True),
        ("evil.example.org", 443, False),
        ("api.example.com.evil.org", 443, False),
        ("x.example.net", 8443, True),
        ("a.b.example.net", 8443, True),
        ("example.net", 8443, False),  # the wildcard is for subdomains only
        ("x.example.net", 443, False),  # the port is part of the pattern
        ("notexample.net", 8443, False),
        ("10.0.0.7", 5432, True),
        ("::1", 8080, True),
        ("0:0::1", 8080, True),
        ("::1", 8081, False),
    ],
)
def test_host_allowed(host: str, port: int, allowed: bool) -> None:
    patterns = ["api.example.com", "*.example.net:8443", "10.0.0.7", "[::1]:8080"]
    assert secrets.host_allowed(patterns, host, port) is allowed


@pytest.mark.django_db
def test_allowed_hosts_and_values_for_the_engine() -> None:
    secrets.set_secret("api_token", VALUE, allowed_hosts=["api.example.com"])
    secrets.set_secret("free", NEW_VALUE)
    assert secrets.allowed_hosts_of(["api_token", "free", "missing"]) == {"api_token": ["api.example.com"]}
    assert secrets.read_secret("api_token") == (VALUE, ["api.example.com"])
    assert secrets.read_secret("free") == (NEW_VALUE, [])
    with pytest.raises(InvalidInput, match="secret 'missing' is not defined"):
        secrets.read_secret("missing")


@pytest.mark.django_db
def test_api_reads_and_writes_allowed_hosts(api_for) -> None:
    client = api_for("approver")
    created = client.post(
        URL, {"name": "api_token", "value": VALUE, "allowed_hosts": ["API.example.com", "*.cdn.example"]}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["allowed_hosts"] == ["api.example.com", "*.cdn.example"]
    assert client.get(f"{URL}/api_token").json()["allowed_hosts"] == ["api.example.com", "*.cdn.example"]
    patched = client.patch(f"{URL}/api_token", {"allowed_hosts": ["api.example.com:443"]}, format="json")
    assert patched.status_code == 200
    assert patched.json()["allowed_hosts"] == ["api.example.com:443"]
    assert secrets.get_secret_value("api_token") == VALUE  # the value is kept
    cleared = client.put(f"{URL}/api_token", {"value": NEW_VALUE, "allowed_hosts": []}, format="json")
    assert cleared.json()["allowed_hosts"] == []
    kept = client.put(f"{URL}/api_token", {"value": VALUE}, format="json")  # not given: kept
    assert kept.json()["allowed_hosts"] == []
    for response in (created, patched, cleared, kept):
        assert VALUE not in response.content.decode() and NEW_VALUE not in response.content.decode()


@pytest.mark.django_db
def test_api_refuses_a_malformed_host_with_a_clear_400(api_for, stored: Secret) -> None:
    client = api_for("admin")
    before = _counts()
    cases = [
        client.post(URL, {"name": "t", "value": VALUE, "allowed_hosts": ["bad host"]}, format="json"),
        client.patch(f"{URL}/orders_dsn", {"allowed_hosts": ["ok.example", "http://x"]}, format="json"),
        client.patch(f"{URL}/orders_dsn", {"allowed_hosts": "ok.example"}, format="json"),
    ]
    expected = [
        ("allowed_hosts.0", "allowed_hosts.0: 'bad host' is not a host"),
        ("allowed_hosts.1", "allowed_hosts.1: 'http://x' is not a host"),
        ("allowed_hosts", "allowed_hosts"),
    ]
    for response, (field, message) in zip(cases, expected, strict=True):
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["message"].startswith(message)
        assert list(error["fields"]) == [field]
    assert _counts() == before
    assert Secret.objects.get().allowed_hosts == []


@pytest.mark.django_db
def test_cli_sets_and_lists_allowed_hosts() -> None:
    out = _cli("set", "api_token", "--allowed-host", "api.example.com", "--allowed-host", "*.cdn.example", stdin=VALUE)
    assert out == "Created secret 'api_token'\n"
    assert Secret.objects.get().allowed_hosts == ["api.example.com", "*.cdn.example"]
    assert "\tallowed hosts: api.example.com, *.cdn.example" in _cli("list")
    assert _cli("set", "api_token", "--keep-value", "--allowed-host", "other.example") == "Updated secret 'api_token'\n"
    assert Secret.objects.get().allowed_hosts == ["other.example"]
    assert secrets.get_secret_value("api_token") == VALUE
    _cli("set", "api_token", "--keep-value", "--any-host")
    assert Secret.objects.get().allowed_hosts == []
    with pytest.raises(CommandError, match="allowed_hosts\\[0\\]: 'bad host' is not a host"):
        _cli("set", "api_token", "--keep-value", "--allowed-host", "bad host")
    with pytest.raises(CommandError, match="--keep-value needs an existing secret"):
        _cli("set", "new_one", "--keep-value", "--allowed-host", "a.example")
    with pytest.raises(CommandError, match="--allowed-host and --any-host cannot be combined"):
        _cli("set", "api_token", "--keep-value", "--any-host", "--allowed-host", "a.example")
    assert VALUE not in _audit_text()


@pytest.mark.django_db
def test_admin_edits_allowed_hosts_and_the_value_audited_without_it(users) -> None:
    from django.test import Client

    client = Client()
    client.force_login(users["admin"])
    response = client.post(
        "/admin/core/secret/add/",
        {"name": "api_token", "description": "CDN", "value": VALUE, "allowed_hosts": "api.example.com\n*.cdn.example"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    secret = Secret.objects.get()
    assert secret.allowed_hosts == ["api.example.com", "*.cdn.example"]
    assert secrets.get_secret_value("api_token") == VALUE
    page = client.get(f"/admin/core/secret/{secret.pk}/change/").content.decode()
    assert "api.example.com" in page
    assert VALUE not in page and secret.ciphertext not in page
    response = client.post(
        f"/admin/core/secret/{secret.pk}/change/",
        {"name": "api_token", "description": "CDN", "value": "", "allowed_hosts": "bad host"},
    )
    assert response.status_code == 200
    assert "&#x27;bad host&#x27; is not a host" in response.content.decode()
    response = client.post(
        f"/admin/core/secret/{secret.pk}/change/",
        {"name": "api_token", "description": "CDN", "value": "", "allowed_hosts": "other.example"},
    )
    assert response.status_code == 302
    assert Secret.objects.get().allowed_hosts == ["other.example"]
    assert secrets.get_secret_value("api_token") == VALUE  # empty: kept
    client.post(
        f"/admin/core/secret/{secret.pk}/change/",
        {"name": "api_token", "description": "CDN", "value": NEW_VALUE, "allowed_hosts": "other.example"},
    )
    assert secrets.get_secret_value("api_token") == NEW_VALUE
    entries = list(AuditEntry.objects.order_by("seq").values_list("action", "auth_method", "actor_username", "comment"))
    assert entries == [
        ("create", "session", "admin", ""),
        ("update", "session", "admin", ""),
        ("update", "session", "admin", "value replaced"),
    ]
    assert VALUE not in _audit_text() and NEW_VALUE not in _audit_text()


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.from_regex(secrets.ALLOWED_HOST_PATTERN, fullmatch=True))
def test_every_entry_the_api_schema_allows_is_accepted(entry: str) -> None:
    """The API documents allowed_hosts entries with ALLOWED_HOST_PATTERN: the service takes each of them."""
    assert len(secrets.normalise_allowed_hosts([entry])) == 1
