"""Authorization matrix of the HTML pages and the live websocket, like the API's (plans/tests/matrix.py).

For every page (drplan/urls.py, the URL modules it includes, and the admin) and the websocket, and for
anonymous, a signed-in user without a role ("norole"), viewer, operator, approver, auditor and admin: who gets
it (200), who is sent to sign in, who gets 403. Which action buttons each role sees on the pages with
role-aware actions is in failover/tests/test_console_page.py (console), runbooks/tests/test_builder.py
(builder), plans/tests/test_web_pages.py (operations) and failover/tests/test_web_pages.py (inbox,
schedules); the server checks every action again (the API matrices).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.test import Client

from core.roles import ROLES
from failover.models import FailoverExecution
from failover.tests.engine_support import make_execution
from failover.tests.factories import add_events
from failover.tests.live_support import open_stream, read_events, session_cookie
from plans.tests.factories import make_plan
from runbooks import services
from runbooks.tests.factories import BASE_DOC

WHO = [None, "norole", *ROLES]
OK, SIGN_IN, FORBIDDEN = 200, "sign in", 403


def to(location: str) -> str:
    return f"redirect to {location}"


ANYONE_SIGNED_IN = {"norole": OK, **dict.fromkeys(ROLES, OK)}
EVERY_ROLE = {"norole": FORBIDDEN, **dict.fromkeys(ROLES, OK)}


POST_ONLY = {"norole": 405, **dict.fromkeys(ROLES, 405)}


def only(*roles: str) -> dict[str | None, object]:
    return {"norole": FORBIDDEN, **{role: OK if role in roles else FORBIDDEN for role in ROLES}}


# page → (path, {who: expected}); anonymous is sent to sign in unless listed.
PAGES: dict[str, tuple[str, dict[str | None, object]]] = {
    "landing": ("/", {None: OK, "norole": to("/dashboard/"), **dict.fromkeys(ROLES, to("/dashboard/"))}),
    "dashboard": ("/dashboard/", ANYONE_SIGNED_IN),
    "execution console": ("/console/executions/{execution}/", EVERY_ROLE),
    "execution console state": ("/console/executions/{execution}/state/", EVERY_ROLE),
    "runbook builder, new": ("/builder/runbooks/new/", only("approver", "admin")),
    "runbook builder, edit": ("/builder/runbooks/test-failover/", EVERY_ROLE),
    "runbook templates": ("/runbooks/templates/", EVERY_ROLE),
    "use a runbook template (POST only)": ("/runbooks/templates/test-failover/use/", POST_ONLY),
    "plans": ("/plans/", EVERY_ROLE),
    "plan": ("/plans/{plan}/", EVERY_ROLE),
    "plan operation (confirmation)": ("/plans/{plan}/run/{operation}/", EVERY_ROLE),
    "executions": ("/executions/", EVERY_ROLE),
    "approvals inbox": ("/approvals/", ANYONE_SIGNED_IN),  # says so to whom nothing can wait
    "approve an execution (POST only)": ("/approvals/executions/{execution}/", POST_ONLY),
    "approve a runbook version (POST only)": ("/approvals/runbook-versions/{execution}/", POST_ONLY),
    "schedules": ("/schedules/", EVERY_ROLE),
    "what-if": ("/what-if/", EVERY_ROLE),
    "pause, resume, delete a schedule (POST only)": ("/schedules/{plan}/{schedule_action}/", POST_ONLY),
    "admin index": ("/admin/", ANYONE_SIGNED_IN),
    "admin sign-in": ("/admin/login/", {None: OK, "norole": to("/admin/"), **dict.fromkeys(ROLES, to("/admin/"))}),
    "admin: plans": ("/admin/plans/drplan/", EVERY_ROLE),
    "admin: runbook versions": ("/admin/runbooks/runbookversion/", EVERY_ROLE),
    "admin: executions": ("/admin/failover/failoverexecution/", EVERY_ROLE),
    "admin: business processes": ("/admin/analytics/businessprocess/", EVERY_ROLE),
    "admin: audit log": ("/admin/core/auditentry/", only("auditor", "admin")),
    "admin: users": ("/admin/auth/user/", only("auditor", "admin")),
    "admin: sign-in lockouts": ("/admin/axes/accessattempt/", only("admin")),
    "API docs": ("/api/docs/", {None: OK, **ANYONE_SIGNED_IN}),
    "API sign-in (browsable API)": ("/api-auth/login/", {None: OK, **ANYONE_SIGNED_IN}),
}


@pytest.fixture
def world(make_user: Callable[..., User], users: dict[str, User]) -> dict[str, object]:
    make_user("norole")
    execution = make_execution([{"key": "promote"}], status="running")
    services.import_runbook_document(copy.deepcopy(BASE_DOC), actor=make_user("author", "approver"))
    make_plan("shop-dr", status="active")
    return {"execution": execution.pk, "plan": "shop-dr", "operation": "test", "schedule_action": "pause"}


def client_for(who: str | None) -> Client:
    client = Client()
    if who is not None:
        client.force_login(User.objects.get(username=who))
    return client


def outcome(response) -> object:
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith("/admin/login/?next="):
            return SIGN_IN
        return to(location)
    return response.status_code


@pytest.mark.django_db
@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("who", WHO, ids=[str(w) for w in WHO])
def test_page_matrix(world: dict[str, object], page: str, who: str | None) -> None:
    template, expected = PAGES[page]
    path = template.format(**world)
    response = client_for(who).get(path)
    assert outcome(response) == expected.get(who, SIGN_IN), f"{page} for {who}"
    if response.status_code == 302 and outcome(response) == SIGN_IN:
        assert response["Location"] == f"/admin/login/?next={quote(path)}"


def test_the_matrix_covers_every_page_of_the_site() -> None:
    """A new page must join the matrix: every URL pattern outside the API is listed above."""
    from django.urls import URLResolver, get_resolver

    listed = {template for template, _ in PAGES.values()}
    placeholders = {
        "<int:pk>": "{execution}",
        "<slug:slug>": "test-failover",
        "<str:plan_id>": "{plan}",
        "<slug:key>": "{operation}",
        "<slug:action>": "{schedule_action}",
    }

    def routes(patterns: list, prefix: str) -> list[tuple[object, str]]:
        found = []
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver) and str(pattern.pattern) == "":  # include("…urls") at the root
                found += routes(pattern.url_patterns, route)
            else:
                found.append((pattern, route))
        return found

    missing = []
    for pattern, route in routes(get_resolver().url_patterns, "/"):
        if route.startswith(("/api/v1/", "/api/schema/")):
            continue  # the API: its own matrices
        if isinstance(pattern, URLResolver):  # admin/, api-auth/: at least one page of each
            found = any(template.startswith(route) for template in listed)
        else:
            for name, value in placeholders.items():
                route = route.replace(name, value)
            found = route in listed
        if not found:
            missing.append(route)
    assert missing == []


# --- the websocket --------------------------------------------------------------------------------------

# who → close code (None: the stream is open and sends the execution's events)
WEBSOCKET = {None: 4401, "norole": 4403, **dict.fromkeys(ROLES, None)}


@pytest.mark.django_db(transaction=True)  # the consumer reads on threads of its own
@pytest.mark.parametrize("who", WHO, ids=[str(w) for w in WHO])
def test_websocket_matrix(settings, make_user: Callable[..., User], users: dict[str, User], who: str | None) -> None:
    settings.REDIS_URL = ""
    settings.LIVE_POLL_SECONDS = 0.02
    make_user("norole")
    execution: FailoverExecution = make_execution([], status="running")
    add_events(execution, 2)
    cookie = session_cookie(User.objects.get(username=who)) if who else None
    expected = WEBSOCKET[who]

    async def scenario() -> None:
        communicator, connected = await open_stream(execution.pk, cookie=cookie)
        assert connected
        if expected is None:
            assert [event["seq"] for event in await read_events(communicator, 2)] == [1, 2]
        else:
            message = await communicator.receive_json_from(timeout=5)
            assert message["type"] == "error"
            assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": expected}
        await communicator.disconnect()

    async_to_sync(scenario)()
