"""Secrets through the whole path: runbook import refuses a transformed secret; the coordinator refuses it
too (also in a dry run) and passes each step the allow-lists of the secrets it used; the value appears
nowhere in the execution's events, step rows or errors.

A real coordinator, real actions, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml

from core.secrets import set_secret
from failover.engine.actions import ActionResult, StepContext, executor
from failover.engine.runner import run_execution
from failover.models import ExecutionEvent, FailoverExecution, StepRun
from failover.tests.engine_support import make_execution, steps_of
from runbooks.models import Runbook

pytestmark = pytest.mark.django_db(transaction=True)

VALUE = "tok-9d1e-never-shown"
RULE = (
    "secrets.api_token can only be used whole, as {{ secrets.api_token }}: "
    "filters, slicing and expressions on secrets are not allowed"
)


def _stored(execution: FailoverExecution) -> str:
    """Everything the execution left in the database that could carry a value."""
    return repr(
        [
            *ExecutionEvent.objects.filter(execution=execution).values_list("message", "data"),
            *StepRun.objects.filter(execution=execution).values_list("params", "rendered", "output", "error"),
            *FailoverExecution.objects.filter(pk=execution.pk).values_list("error", "parameters"),
        ]
    )


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        _Recorder.seen.append(dict(self.headers.items()))
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    _Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


LEAK = "{{ secrets.api_token | reverse }}"


def _http_step(url: str, header: str, key: str = "call") -> dict[str, Any]:
    return {"key": key, "action": "http", "with": {"url": url, "headers": {"Authorization": header}}}


def test_a_transformed_secret_is_refused_at_import_and_by_the_engine(api_for, server: str) -> None:
    set_secret("api_token", VALUE)
    doc = {
        "name": "Leaky",
        "slug": "leaky",
        "version": "1.0.0",
        "steps": [{"id": "call", "action": "http", "with": {"url": server, "headers": {"Authorization": LEAK}}}],
    }
    response = api_for("approver").post(
        "/api/v1/dr/runbooks/import/", data=yaml.safe_dump(doc), content_type="application/yaml"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["message"] == f"steps[0] (call).with.headers.Authorization: {RULE}"
    assert list(error["fields"]) == ["steps[0] (call).with.headers.Authorization"]
    assert not Runbook.objects.exists()

    # Forced into the database behind the import's back: the engine refuses it the same way.
    execution = make_execution([_http_step(server, LEAK)])
    assert run_execution(execution.pk) == "failed"
    step = steps_of(execution)["call"]
    assert step.status == "failed"
    assert step.error == f"parameters: headers.Authorization: {RULE}"
    execution.refresh_from_db()
    assert execution.error.startswith(f"step 'call' failed: parameters: headers.Authorization: {RULE}")
    assert _Recorder.seen == []
    stored = _stored(execution)
    assert VALUE not in stored and VALUE[::-1] not in stored

    dry = make_execution([_http_step(server, "Bearer {{ secrets.api_token[:6] }}")], dry_run=True)
    assert run_execution(dry.pk) == "failed"
    dry.refresh_from_db()
    assert dry.error == (
        "dry run found 1 problem(s): call: parameters: headers.Authorization: "
        "secrets.api_token can only be used whole, as {{ secrets.api_token }}: "
        "filters, slicing and expressions on secrets are not allowed"
    )
    assert VALUE[:6] not in _stored(dry)


def test_a_secret_is_only_sent_to_its_allowed_hosts(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    set_secret("api_token", VALUE, allowed_hosts=["api.example.com"])
    execution = make_execution(
        [
            {**_http_step(server, "Bearer {{ secrets.api_token }}", key="refused"), "continue_on_failure": True},
            {**_http_step(server, "none", key="unrelated"), "needs": ["refused"]},
        ]
    )
    assert run_execution(execution.pk) == "completed"
    steps = steps_of(execution)
    assert steps["refused"].status == "failed"
    assert steps["refused"].error == (
        f"GET {server}: secret 'api_token' may not be sent to 127.0.0.1:{port} (allowed hosts: api.example.com)"
    )
    assert steps["refused"].rendered["headers"] == {"Authorization": "Bearer ***"}
    assert steps["unrelated"].status == "succeeded"  # a step without the secret is not restricted
    assert [h.get("Authorization") for h in _Recorder.seen] == ["none"]
    assert VALUE not in _stored(execution)

    set_secret("api_token", VALUE, allowed_hosts=["api.example.com", f"127.0.0.1:{port}"])
    allowed = make_execution([_http_step(server, "Bearer {{ secrets.api_token }}")])
    assert run_execution(allowed.pk) == "completed"
    assert _Recorder.seen[-1]["Authorization"] == f"Bearer {VALUE}"
    assert VALUE not in _stored(allowed)


@executor("test-secret-by-name")
def _reads_a_secret(params: dict, ctx: StepContext) -> ActionResult:
    """An action that takes a secret by name, like sql's dsn_secret: what does its context know?"""
    value = ctx.secret(params["name"]) if ctx.secret else ""
    return ActionResult(
        True,
        output={
            "knows_value": value in ctx.secret_values,
            "allowed_hosts": ctx.allowed_hosts,
            "to_local": ctx.refuse_host("127.0.0.1", 5432),
            "to_db": ctx.refuse_host("db.example.internal", 5432),
        },
    )


def test_secrets_read_by_name_and_templated_ones_reach_the_step_context() -> None:
    set_secret("orders_dsn", VALUE, allowed_hosts=["db.example.internal:5432"])
    set_secret("api_token", "another-value-1", allowed_hosts=["*.example.internal"])
    execution = make_execution(
        [
            {"key": "by-name", "action": "test-secret-by-name", "with": {"name": "orders_dsn"}},
            {
                "key": "both",
                "action": "test-secret-by-name",
                "with": {"name": "orders_dsn", "token": "{{ secrets.api_token }}"},
            },
        ]
    )
    assert run_execution(execution.pk) == "completed"
    steps = steps_of(execution)
    assert steps["by-name"].output == {
        "knows_value": True,
        "allowed_hosts": {"orders_dsn": ["db.example.internal:5432"]},
        "to_local": "secret 'orders_dsn' may not be sent to 127.0.0.1:5432 (allowed hosts: db.example.internal:5432)",
        "to_db": "",
    }
    assert steps["both"].output == {  # every list applies: the host must be in each
        "knows_value": True,
        "allowed_hosts": {"api_token": ["*.example.internal"], "orders_dsn": ["db.example.internal:5432"]},
        "to_local": "secret 'api_token' may not be sent to 127.0.0.1:5432 (allowed hosts: *.example.internal)",
        "to_db": "",
    }
    assert VALUE not in _stored(execution)


def test_a_too_large_template_fails_the_step_not_the_engine() -> None:
    execution = make_execution([{"key": "big", "action": "noop", "with": {"message": "{{ 'x' | center(30000000) }}"}}])
    assert run_execution(execution.pk) == "failed"
    assert steps_of(execution)["big"].error == (
        "parameters: message: too large: the result of filter 'center' exceeds 1048576 characters (1 MiB), "
        "the limit for a value built by a template"
    )
