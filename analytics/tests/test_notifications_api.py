"""The notifications API: strict input (every bad input a 400 naming the field, nothing stored), the
permission matrix of every mutating endpoint, and the schema."""

from __future__ import annotations

import pytest

from analytics.notifications import services
from analytics.notifications.models import AlertRule, Delivery, NotificationChannel, Subscription
from analytics.tests.factories import make_target
from core.models import AuditEntry
from plans.tests.factories import make_app, make_plan

pytestmark = pytest.mark.django_db

API = "/api/v1/dr"


@pytest.fixture
def world():
    app = make_app("orders-db")
    make_target(app)
    plan = make_plan("shop-dr", applications=[app])
    hook = NotificationChannel.objects.create(name="ops-webhook", kind="webhook", url="http://127.0.0.1:9/h")
    services.save_channel_secret(hook, "a-secret-of-sixteen-chars")
    return {"app": app, "plan": plan, "hook": hook}


def rule_body(**extra):
    body = {
        "name": "orders RPO",
        "metric": "rpo_seconds",
        "scope": "application",
        "application": "orders-db",
        "threshold": 300,
        "window_seconds": 120,
        "repeat_interval_seconds": 600,
        "severity": "critical",
        "channels": ["ops-webhook"],
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not ...}


def stored() -> tuple:
    return (
        list(AlertRule.objects.values_list("pk", "name", "threshold")),
        list(NotificationChannel.objects.values_list("pk", "name", "url")),
        list(Subscription.objects.values_list("pk", "event_kinds")),
        AuditEntry.objects.count(),
    )


def test_a_taken_channel_name_is_a_409(world, api_for):
    before = stored()
    response = api_for("approver").post(f"{API}/notifications/channels/", {"name": "ops-webhook", "kind": "email"})
    assert response.status_code == 409, response.content
    assert "name" in response.json()["error"]["fields"]
    assert stored() == before


def test_post_rto_rpo_alert_creates_a_rule_listed_under_alerts(world, api_for):
    created = api_for("approver").post(f"{API}/rto-rpo/alert/", rule_body(), format="json")
    assert created.status_code == 201, created.content
    rule = created.json()
    assert (rule["application"], rule["channels"], rule["states"]) == ("orders-db", ["ops-webhook"], [])
    listed = api_for("viewer").get(f"{API}/rto-rpo/alerts/", {"metric": "rpo_seconds"}).json()
    assert [r["id"] for r in listed["results"]] == [rule["id"]]
    patched = api_for("approver").patch(f"{API}/rto-rpo/alerts/{rule['id']}", {"threshold": 600.5}, format="json")
    assert patched.status_code == 200 and patched.json()["threshold"] == 600.5
    assert api_for("approver").delete(f"{API}/rto-rpo/alerts/{rule['id']}").status_code == 204


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (rule_body(threshold="300"), "threshold", "Expected a number, got a string"),
        (rule_body(window_seconds=0), "window_seconds", "greater than or equal to 1"),
        (rule_body(metric="latency"), "metric", "is not a valid choice"),
        (rule_body(application="no-such-app"), "application", "does not exist"),
        (rule_body(scope="plan", application=None, plan="no-such-plan"), "plan", "does not exist"),
        (rule_body(scope="plan", application=None), "plan", "Scope plan needs the plan"),
        (rule_body(channels=[]), "channels", "may not be empty"),
        (rule_body(channels=["nope"]), "channels", "does not exist"),
        (rule_body(repeat_interval_seconds=10), "repeat_interval_seconds", "greater than or equal to 60"),
        (rule_body(metric="availability_percent", threshold=120), "threshold", "percent"),
        (rule_body(threshold=True), "threshold", "Expected a number, got a boolean"),
        (rule_body(name=...), "name", "required"),
    ],
)
def test_a_bad_alert_rule_is_a_400_naming_the_field_and_stores_nothing(world, api_for, body, field, words):
    before = stored()
    response = api_for("approver").post(f"{API}/rto-rpo/alert/", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert list(error["fields"]) == [field], error
    assert words in " ".join(error["fields"][field])
    assert stored() == before


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": "h", "kind": "webhook", "url": "ftp://example.com/x", "secret": "x" * 16}, "url", "http"),
        ({"name": "h", "kind": "webhook", "url": "file:///etc/passwd", "secret": "x" * 16}, "url", "http"),
        ({"name": "h", "kind": "webhook", "url": "example.com/x", "secret": "x" * 16}, "url", "http"),
        ({"name": "h", "kind": "webhook", "url": "https://u:p@example.com/", "secret": "x" * 16}, "url", "credentials"),
        (
            {"name": "h", "kind": "webhook", "url": "http://169.254.169.254/latest/", "secret": "x" * 16},
            "url",
            "metadata",
        ),
        (
            {"name": "h", "kind": "webhook", "url": "http://[::ffff:169.254.169.254]/", "secret": "x" * 16},
            "url",
            "link",
        ),
        ({"name": "h", "kind": "webhook", "url": "http://0.0.0.0:8080/", "secret": "x" * 16}, "url", "unspecified"),
        ({"name": "h", "kind": "webhook", "url": "https://example.com/"}, "secret", "needs a signing secret"),
        ({"name": "h", "kind": "webhook", "url": "https://example.com/", "secret": "short"}, "secret", "16"),
        ({"name": "h", "kind": "webhook", "secret": "x" * 16}, "url", "needs its http(s) URL"),
        ({"name": "12345", "kind": "email"}, "name", "all digits"),
        ({"name": "m", "kind": "email", "recipients": ["not-an-address"]}, "recipients", "valid email"),
        ({"name": "m", "kind": "sms"}, "kind", "is not a valid choice"),
        ({"name": "m", "kind": "email", "timeout_seconds": 0}, "timeout_seconds", "greater than or equal to 1"),
    ],
)
def test_a_bad_channel_is_a_400_naming_the_field_and_stores_nothing(world, api_for, body, field, words):
    before = stored()
    response = api_for("approver").post(f"{API}/notifications/channels/", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert [name.split(".")[0] for name in error["fields"]] == [field], error  # recipients.0: the item
    assert words in " ".join(str(m) for messages in error["fields"].values() for m in messages)
    assert stored() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_kinds": ["approval_waiting"], "channel": "ops-webhook", "plan": "nope"}, "plan"),
        ({"event_kinds": ["coffee_break"], "channel": "ops-webhook"}, "event_kinds"),
        ({"event_kinds": [], "channel": "ops-webhook"}, "event_kinds"),
        ({"event_kinds": ["approval_waiting"], "channel": "ops-webhook", "role": "boss"}, "role"),
        (
            {"event_kinds": ["execution_failed"], "channel": "ops-webhook", "role": "approver", "email": "a@b.io"},
            "email",
        ),
        ({"event_kinds": ["approval_waiting"], "channel": "nope"}, "channel"),
        ({"event_kinds": ["approval_waiting"], "channel": "ops-webhook", "user": "ghost"}, "user"),
    ],
)
def test_a_bad_subscription_is_a_400_naming_the_field(world, api_for, body, field):
    before = stored()
    response = api_for("approver").post(f"{API}/notifications/subscriptions/", body, format="json")
    assert response.status_code == 400, response.content
    assert [name.split(".")[0] for name in response.json()["error"]["fields"]] == [field], response.content
    assert stored() == before


def test_a_change_that_names_a_recipient_replaces_the_stored_one(world, api_for):
    subscription = Subscription.objects.create(event_kinds=["execution_failed"], channel=world["hook"], email="a@b.io")
    url = f"{API}/notifications/subscriptions/{subscription.pk}"
    response = api_for("approver").patch(url, {"role": "auditor", "enabled": False}, format="json")
    assert response.status_code == 200, response.content
    subscription.refresh_from_db()
    assert (subscription.role, subscription.email, subscription.user, subscription.enabled) == (
        "auditor",
        "",
        None,
        False,
    )
    # naming two at once is still refused, and changes nothing
    response = api_for("approver").patch(url, {"email": "c@d.io", "role": "viewer"}, format="json")
    assert response.status_code == 400 and "not several" in response.content.decode()
    subscription.refresh_from_db()
    assert (subscription.role, subscription.email) == ("auditor", "")


def _mutations(world) -> list[tuple[str, str, dict | None, int]]:
    rule = AlertRule.objects.create(
        name="r", metric="rpo_seconds", scope="all", threshold=1, window_seconds=1, repeat_interval_seconds=60
    )
    rule.channels.set([world["hook"]])
    subscription = Subscription.objects.create(event_kinds=["execution_failed"], channel=world["hook"])
    return [
        ("post", f"{API}/rto-rpo/alert/", rule_body(), 201),
        ("post", f"{API}/rto-rpo/alerts/", rule_body(), 201),
        ("patch", f"{API}/rto-rpo/alerts/{rule.pk}", {"threshold": 5}, 200),
        ("post", f"{API}/notifications/channels/", {"name": "mail", "kind": "email"}, 201),
        ("patch", f"{API}/notifications/channels/ops-webhook", {"timeout_seconds": 3}, 200),
        ("post", f"{API}/notifications/channels/ops-webhook/test/", None, 202),
        ("post", f"{API}/notifications/subscriptions/", {"event_kinds": ["execution_failed"], "channel": "mail"}, 400),
        ("patch", f"{API}/notifications/subscriptions/{subscription.pk}", {"enabled": False}, 200),
        ("delete", f"{API}/notifications/subscriptions/{subscription.pk}", None, 204),
        ("delete", f"{API}/rto-rpo/alerts/{rule.pk}", None, 204),
        ("delete", f"{API}/notifications/channels/ops-webhook", None, 204),
    ]


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(None, 401), ("viewer", 403), ("operator", 403), ("auditor", 403), ("approver", True), ("admin", True)],
)
def test_permission_matrix_of_the_mutating_endpoints(world, api_for, role, allowed):
    client = api_for(role)
    for method, url, body, success in _mutations(world):
        before = stored()
        response = getattr(client, method)(url, body, format="json")
        if allowed is True:
            assert response.status_code == success, (method, url, response.content)
        else:
            assert response.status_code == allowed, (method, url, response.content)
            assert stored() == before


def test_deliveries_are_read_only_and_readable_by_every_role(world, api_for):
    services.send_test_message(world["hook"], None)
    for role in ("viewer", "operator", "auditor", "approver"):
        assert api_for(role).get(f"{API}/notifications/deliveries").json()["count"] == 1
    assert api_for(None).get(f"{API}/notifications/deliveries").status_code == 401
    delivery = api_for("admin").get(f"{API}/notifications/deliveries").json()["results"][0]
    assert api_for("admin").delete(f"{API}/notifications/deliveries/{delivery['id']}").status_code == 405


def test_the_schema_documents_the_endpoints(api_for):
    schema = api_for("viewer").get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/dr/rto-rpo/alert/",
        "/api/v1/dr/rto-rpo/alerts/",
        "/api/v1/dr/rto-rpo/alerts/{id}/",
        "/api/v1/dr/notifications/channels/",
        "/api/v1/dr/notifications/channels/{id}/test/",
        "/api/v1/dr/notifications/subscriptions/",
        "/api/v1/dr/notifications/deliveries/",
    ):
        assert path in paths, path
    assert "400" in paths["/api/v1/dr/rto-rpo/alert/"]["post"]["responses"]
    components = schema["components"]["schemas"]
    assert "secret" not in components["Channel"]["properties"]  # never in a response
    assert "secret" in components["ChannelRequest"]["properties"]


def test_a_test_message_to_a_disabled_channel_or_one_without_recipients_is_a_409(world, api_for):
    NotificationChannel.objects.create(name="empty-mail", kind="email")
    NotificationChannel.objects.filter(pk=world["hook"].pk).update(enabled=False)
    for name, code in (("empty-mail", "conflict"), ("ops-webhook", "channel_disabled")):
        response = api_for("approver").post(f"{API}/notifications/channels/{name}/test")
        assert response.status_code == 409, response.content
        assert response.json()["error"]["code"] == code
    assert not Delivery.objects.exists()
