"""The ML service over HTTP: a fresh database with the demo data, `ml train --quick` (small real models, seconds),
then scripts/ml_serve.py on a free 127.0.0.1 port, every endpoint called, the server stopped by its pid."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# realsystem: it starts a real server (the ML service), so `make test` runs it once, in the SQLite pass, not
# spread over xdist workers (each would start its own). django_db on every test: pytest-django runs database
# tests first, so the module's tests stay together and the live service is started once.
pytestmark = [pytest.mark.realsystem, pytest.mark.django_db]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, body: object | bytes | None = None, method: str | None = None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method=method or ("POST" if data else "GET")
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    with log.open("w") as stream:
        return subprocess.Popen(
            [sys.executable, "scripts/ml_serve.py", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen, log: Path) -> str:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)
    return log.read_text()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, django_db_setup: None, django_db_blocker) -> dict[str, str]:
    """A var dir whose database is a copy of the session's migrated test database (SQLite's backup API: no
    second `migrate`), with the demo data and quickly trained models."""
    import sqlite3

    from django.db import connection

    if os.environ.get("DATABASE_URL"):
        pytest.skip("the live ML service check runs on the embedded default database")
    var = tmp_path_factory.mktemp("ml") / "var"
    var.mkdir()
    with django_db_blocker.unblock():
        source = sqlite3.connect(connection.settings_dict["NAME"])
        target = sqlite3.connect(var / "drplan.sqlite3")
        source.backup(target)
        source.close()
        target.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    env["DRPLAN_VAR_DIR"] = str(var)
    for command in (["seed_demo"], ["ml", "train", "--quick"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
    return env


@pytest.fixture(scope="module")
def service_log(env: dict[str, str]) -> Path:
    return Path(env["DRPLAN_VAR_DIR"]) / "ml-service.log"


@pytest.fixture(scope="module")
def service(env: dict[str, str], service_log: Path) -> Iterator[str]:
    port = free_port()
    proc = start(env, port, service_log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if call(f"{base}/health")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            pass
        assert proc.poll() is None, stop(proc, service_log)
        assert time.monotonic() < deadline, "the ML service did not answer within 60 s"
        time.sleep(0.2)
    yield base
    stop(proc, service_log)
    assert proc.returncode is not None


def test_every_prediction_is_logged_with_its_model_version_and_latency(service: str, service_log: Path) -> None:
    status, answer = call(f"{service}/predict-rto", {"plan": "core-commerce"})
    assert status == 200
    deadline = time.monotonic() + 10
    line = f"prediction /predict-rto model=rto version={answer['model_version']} latency_ms="
    while line not in service_log.read_text():
        assert time.monotonic() < deadline, service_log.read_text()
        time.sleep(0.1)


def test_health_and_models_describe_every_model(service: str) -> None:
    status, health = call(f"{service}/health")
    assert status == 200 and health["status"] == "ok"
    assert set(health["models"]) == {"rto", "recovery_time", "failure_risk", "impact"}
    status, body = call(f"{service}/models")
    assert status == 200
    cards = {card["name"]: card for card in body["models"]}
    for name, card in cards.items():
        assert card["version"] == health["models"][name] and card["trained_at"] and card["features"]
        assert card["data_provenance"] and card["metrics"]
    assert cards["rto"]["data_provenance"]["source"] == "generator"
    assert cards["rto"]["metrics"]["plans_in_both_train_and_test"] == 0
    assert cards["failure_risk"]["metrics"]["drives_in_both_train_and_test"] == 0
    assert "Backblaze" in cards["failure_risk"]["data_provenance"]["citation"]


def test_predict_rto_for_a_plan_and_for_features(service: str) -> None:
    status, answer = call(f"{service}/predict-rto", {"plan": "core-commerce", "data_volume_gb": 50})
    assert status == 200, answer
    assert 0 < answer["p50_seconds"] <= answer["p90_seconds"]
    assert 0 <= answer["probability_meet_rto"] <= 1 and answer["rto_seconds"] > 0
    assert answer["training_data"] == "generator" and answer["model_version"].startswith("rto-")
    assert answer["unknown_conditions"] == ["replication_lag_seconds", "network_latency_ms"]
    features = answer["features"]
    status, again = call(f"{service}/predict-rto", {"features": features, "rto_seconds": answer["rto_seconds"]})
    assert status == 200
    assert (again["p50_seconds"], again["p90_seconds"]) == (answer["p50_seconds"], answer["p90_seconds"])


def test_estimate_recovery_time_of_a_plan_a_scenario_and_given_steps(service: str) -> None:
    status, whole = call(f"{service}/estimate-recovery-time", {"plan": "core-commerce", "seed": 1})
    assert status == 200, whole
    assert whole["simulations"] == 10_000 and whole["p50_seconds"] <= whole["p90_seconds"] <= whole["p99_seconds"]
    assert sum(whole["duration_sources"].values()) == whole["steps"]
    apps = sorted({key.split(".")[0] for key in whole["last_to_finish"]})
    status, part = call(
        f"{service}/estimate-recovery-time", {"plan": "core-commerce", "applications": apps[:1], "seed": 1}
    )
    assert status == 200 and part["steps"] <= whole["steps"]
    chain = [
        {"key": f"s{i}", "needs": [f"s{i - 1}"] if i else [], "duration": {"type": "fixed", "value": 10}}
        for i in range(3)
    ]
    status, fixed = call(f"{service}/estimate-recovery-time", {"steps": chain, "rto_seconds": 30, "simulations": 100})
    assert (
        status == 200 and fixed["p50_seconds"] == fixed["p99_seconds"] == 30.0 and fixed["probability_meet_rto"] == 1.0
    )


def test_analyze_failure_risk_names_the_attributes(service: str) -> None:
    _, models = call(f"{service}/models")
    features = next(c for c in models["models"] if c["name"] == "failure_risk")["features"]
    smart = dict.fromkeys(features, 0.0) | {"smart_5_raw": 400.0, "smart_197_raw": 16.0, "smart_196_raw": 30.0}
    status, answer = call(f"{service}/analyze-failure-risk", {"serial_number": "X1", "smart": smart})
    assert status == 200, answer
    assert answer["at_risk"] is True and answer["serial_number"] == "X1"
    assert {d["attribute"] for d in answer["drivers"]} & {"smart_5_raw", "smart_197_raw", "smart_196_raw"}
    assert answer["citation"].startswith("Source: Backblaze Drive Stats")


def test_score_impact_scores_and_orders(service: str, env: dict[str, str]) -> None:
    bia = {
        "revenue_per_hour": 50_000, "downtime_cost_24h": 2_000_000, "recovery_cost": 100_000,
        "affected_processes": ["orders", "billing"], "critical_processes": ["orders"], "affected_employees": 300,
        "affected_customers": 200_000, "customer_sentiment": "negative", "media_exposure": "high",
        "brand_damage": "medium", "customer_churn_percent": 2.5, "estimated_fines": 250_000,
        "potential_violations": ["PCI DSS 12.10"], "regulatory_frameworks": ["pci_dss", "sox"],
    }  # fmt: skip
    apps = [
        {"id": "db", "recovery_seconds": 600, "cost_per_hour": 1000},
        {"id": "api", "recovery_seconds": 300, "cost_per_hour": 20_000, "depends_on": ["db"]},
        {"id": "reports", "recovery_seconds": 60, "cost_per_hour": 100},
    ]
    status, answer = call(f"{service}/score-impact", {"bia": bia, "applications": apps, "parallelism": 1})
    assert status == 200, answer
    assert 0 <= answer["scores"]["overall"]["score"] <= 100 and answer["scores"]["overall"]["level"] in {
        "low", "medium", "high", "critical"
    }  # fmt: skip
    assert answer["recovery_order"]["order"] == ["db", "api", "reports"] and answer["recovery_order"]["optimal"]
    import sqlite3

    with sqlite3.connect(Path(env["DRPLAN_VAR_DIR"]) / "drplan.sqlite3") as db:
        (first,) = db.execute("SELECT min(id) FROM analytics_impactanalysis").fetchone()
    status, stored = call(f"{service}/score-impact", {"impact_analysis": first})
    assert status == 200, stored
    assert stored["impact_analysis"] == first and stored["scores"]["overall"]["level"] in {
        "low",
        "medium",
        "high",
        "critical",
    }


BAD = [
    ("predict-rto", {"plan": "no-such-plan"}, 404, "plan"),
    ("predict-rto", {}, 400, "body"),
    ("predict-rto", {"features": {"step_count": 3}}, 400, "features.manual_steps"),
    ("predict-rto", {"plan": "core-commerce", "colour": "red"}, 400, "colour"),
    ("predict-rto", {"plan": "core-commerce", "replication_lag_seconds": -5}, 400, "replication_lag_seconds"),
    ("predict-rto", b'{"plan": "core-commerce", "network_latency_ms": NaN}', 400, "network_latency_ms"),
    ("predict-rto", b'{"plan": "core-commerce", "data_volume_gb": Infinity}', 400, "data_volume_gb"),
    ("estimate-recovery-time", {"plan": "no-such-plan"}, 404, "plan"),
    ("estimate-recovery-time", {"plan": "core-commerce", "applications": ["nope"]}, 400, "applications[0]"),
    (
        "estimate-recovery-time",
        {"steps": [{"key": "a", "duration": {"type": "fixed", "value": -1}}]},
        400,
        "steps[0].duration.value",
    ),
    (
        "estimate-recovery-time",
        {"steps": [{"key": k, "needs": [n], "duration": {"type": "fixed", "value": 1}} for k, n in ("ab", "ba")]},
        400,
        "steps",
    ),
    ("analyze-failure-risk", {"smart": {"smart_5_raw": 1}}, 400, "smart.smart_3_raw"),
    ("analyze-failure-risk", {"smart": {"smart_9_raw": 1}}, 400, "smart.smart_3_raw"),
    (
        "score-impact",
        {"applications": [{"id": "a", "recovery_seconds": 1, "cost_per_hour": 1, "depends_on": ["a"]}]},
        400,
        "applications[0].depends_on[0]",
    ),
    ("score-impact", {"parallelism": 2}, 400, "body"),
    ("score-impact", {"impact_analysis": 999999}, 404, "impact_analysis"),
]


@pytest.mark.parametrize(("endpoint", "body", "status", "field"), BAD)
def test_bad_input_is_a_4xx_naming_the_field(
    service: str, endpoint: str, body: object, status: int, field: str
) -> None:
    got, answer = call(f"{service}/{endpoint}", body)
    assert got == status, answer
    assert field in answer["error"]["fields"], answer
    assert "p50_seconds" not in answer and "failure_probability" not in answer


def test_an_extra_smart_attribute_and_an_oversized_body_are_refused(service: str) -> None:
    _, models = call(f"{service}/models")
    features = next(c for c in models["models"] if c["name"] == "failure_risk")["features"]
    status, answer = call(f"{service}/analyze-failure-risk", {"smart": dict.fromkeys([*features, "smart_9_raw"], 1)})
    assert status == 400 and "smart.smart_9_raw" in answer["error"]["fields"]
    status, answer = call(f"{service}/predict-rto", json.dumps({"plan": "x" * (1024 * 1024)}).encode())
    assert status == 413 and answer["error"]["code"] == "payload_too_large"


def test_the_schema_documents_every_endpoint(service: str) -> None:
    with urllib.request.urlopen(f"{service}/schema/?format=json", timeout=30) as response:
        schema = json.loads(response.read())
    assert schema["info"]["title"] == "DRPlan ML service"
    assert set(schema["paths"]) == {
        "/predict-rto", "/estimate-recovery-time", "/analyze-failure-risk", "/score-impact", "/models", "/health"
    }  # fmt: skip
    for path in ("/predict-rto", "/estimate-recovery-time"):
        responses = schema["paths"][path]["post"]["responses"]
        assert {"200", "400", "404", "413"} <= set(responses)


def test_the_schema_is_valid_openapi() -> None:
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.settings import patched_settings
    from drf_spectacular.validation import validate_schema

    from drplan.ml_urls import SCHEMA_SETTINGS

    with patched_settings(SCHEMA_SETTINGS):
        schema = SchemaGenerator(urlconf="drplan.ml_urls").get_schema(request=None, public=True)
    validate_schema(schema)
    body = schema["paths"]["/predict-rto"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["data_volume_gb"] == {"type": "number", "nullable": True, "minimum": 0}


def test_a_missing_or_corrupt_model_file_stops_the_start_naming_it(env: dict[str, str], tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(Path(env["DRPLAN_VAR_DIR"]) / "ml", models)
    raw = bytearray((models / "rto.ubj").read_bytes())
    raw[100] ^= 0xFF
    (models / "rto.ubj").write_bytes(bytes(raw))
    log = tmp_path / "service.log"
    proc = start(dict(env, DRPLAN_ML_MODEL_DIR=str(models)), free_port(), log)
    try:
        proc.wait(timeout=60)
    finally:
        out = stop(proc, log)
    assert proc.returncode != 0
    assert f"ML service cannot start: model file {models / 'rto.ubj'}: corrupt" in out
    card = json.loads((models / "rto.json").read_text())
    (models / "rto.json").write_text(json.dumps(card | {"features": card["features"][:-1]}))
    stale = subprocess.run(
        [sys.executable, "manage.py", "ml", "check", "--dir", str(models)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert stale.returncode != 0 and "rto.json: was trained on other features than this code's" in stale.stderr
    (models / "failure_risk.json").unlink()
    status = subprocess.run(
        [sys.executable, "manage.py", "ml", "check", "--dir", str(models)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert status.returncode != 0 and "failure_risk.json: missing" in status.stderr


def test_the_client_reads_a_prediction_and_degrades_when_the_service_is_down(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from mlservice import client

    monkeypatch.setenv("DRPLAN_ML_URL", service)
    answer = client.predict_plan_rto(SimpleNamespace(plan_id="core-commerce"))
    assert answer["available"] is True and 0 < answer["p50_seconds"] <= answer["p90_seconds"]
    assert set(answer) == {"available", "p50_seconds", "p90_seconds", "probability_meet_rto", "rto_seconds",
                           "training_data", "model_version"}  # fmt: skip
    refused = client.predict_plan_rto(SimpleNamespace(plan_id="no-such-plan"))
    assert refused == {
        "available": False,
        "message": "prediction unavailable",
        "reason": "plan 'no-such-plan' does not exist",
    }
    monkeypatch.setenv("DRPLAN_ML_URL", f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    down = client.predict_plan_rto(SimpleNamespace(plan_id="core-commerce"))
    assert down["available"] is False and down["message"] == "prediction unavailable"
    assert time.monotonic() - started < 2


def test_the_plan_api_shows_the_prediction_next_to_the_target_or_says_unavailable(
    service: str, api_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plans.models import DRPlan

    DRPlan.objects.create(plan_id="core-commerce", name="Core commerce", rto_seconds=900, rpo_seconds=60)
    monkeypatch.setenv("DRPLAN_ML_URL", service)
    body = api_for("viewer").get("/api/v1/dr/plans/core-commerce").json()
    assert body["rto_seconds"] == 900
    predicted = body["predicted_rto"]
    assert predicted["available"] is True and predicted["p50_seconds"] <= predicted["p90_seconds"]
    assert 0 <= predicted["probability_meet_rto"] <= 1
    monkeypatch.setenv("DRPLAN_ML_URL", f"http://127.0.0.1:{free_port()}")
    response = api_for("viewer").get("/api/v1/dr/plans/core-commerce")
    assert response.status_code == 200
    assert response.json()["predicted_rto"]["message"] == "prediction unavailable"
    listed = api_for("viewer").get("/api/v1/dr/plans").json()
    assert "predicted_rto" not in listed["results"][0]  # the list stays cheap: no call per plan


def test_the_plan_page_shows_the_prediction_next_to_the_target_or_says_unavailable(
    service: str, client, users, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    from plans.models import DRPlan

    DRPlan.objects.create(plan_id="core-commerce", name="Core commerce", rto_seconds=900, rpo_seconds=60)
    client.force_login(users["viewer"])
    monkeypatch.setenv("DRPLAN_ML_URL", service)
    row = re.search(r'<dd id="predicted-rto">(.*?)</dd>', client.get("/plans/core-commerce/").content.decode(), re.S)
    assert row is not None and re.match(r"P50 \S.* · P90 \S.* · \d+ % chance of meeting the target", row.group(1))
    monkeypatch.setenv("DRPLAN_ML_URL", f"http://127.0.0.1:{free_port()}")
    page = client.get("/plans/core-commerce/")
    assert page.status_code == 200
    assert re.search(
        r'<dd id="predicted-rto"><span class="muted">prediction unavailable</span></dd>', page.content.decode()
    )


def test_the_console_projects_with_the_estimator_when_the_service_is_up_and_the_critical_path_when_down(
    service: str, client, users, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running failover whose next step is manual: the critical path counts only the step's estimate, the
    estimator also the wait until someone picks it up (its prior), so the two projections differ visibly."""
    import re
    from datetime import timedelta

    from django.utils import timezone

    from failover import estimates
    from failover.tests.engine_support import make_execution
    from plans.tests.factories import make_plan

    now = timezone.now()
    execution = make_execution(
        [
            {"key": "drill.declare", "action": "manual", "status": "succeeded",
             "started_at": now - timedelta(seconds=40), "finished_at": now - timedelta(seconds=30)},
            {"key": "drill.promote", "action": "manual", "needs": ["drill.declare"], "estimated_duration_seconds": 60},
        ],
        plan=make_plan("drill", rto_seconds=600),
        execution_type="planned",
        status="running",
        triggered_at=now - timedelta(seconds=45),
    )  # fmt: skip
    client.force_login(users["viewer"])

    def clock() -> tuple[dict, str]:
        html = client.get(f"/console/executions/{execution.pk}/").content.decode()
        config = json.loads(re.search(r'id="console-config" type="application/json">(.*?)</script>', html).group(1))
        shown = re.search(r'<p class="muted small" id="projection-source" data-source="(\w+)">(.*?)</p>', html)
        assert shown is not None and shown.group(1) == config["state"]["clock"]["projection_source"]
        return config["state"]["clock"], shown.group(2)

    monkeypatch.setenv("DRPLAN_ML_URL", service)
    estimates.reset()
    up, text = clock()
    assert up["projection_source"] == "estimator", up
    estimate = up["estimate"]
    assert up["projected_total_seconds"] == estimate["p50_seconds"] <= estimate["p90_seconds"]
    assert estimate["simulations"] == 2000 and 0 <= estimate["probability_meet_rto"] <= 1
    assert text.startswith("Projected by the ML recovery-time estimator: the median of 2000 simulations")
    # Seeded by the execution: a refresh draws the same durations, only the clock has moved on.
    again = clock()[0]["estimate"]
    moved = again["p50_seconds"] - estimate["p50_seconds"]
    assert 0 <= moved < 30 and again["p90_seconds"] - estimate["p90_seconds"] == pytest.approx(moved, abs=0.01)

    monkeypatch.setenv("DRPLAN_ML_URL", f"http://127.0.0.1:{free_port()}")
    estimates.reset()
    down, text = clock()
    assert down["projection_source"] == "critical_path" and down["estimate"] is None
    assert 104 <= down["projected_total_seconds"] <= 110  # 45 s elapsed + the 60 s estimate (plus the test's time)
    assert text.startswith("Projected along the critical path") and "the ML estimator is unavailable" in text
    assert up["projected_total_seconds"] > down["projected_total_seconds"] + 60  # the pick-up wait of a manual step


def test_estimate_recovery_time_of_a_running_execution(service: str) -> None:
    steps = [
        {"key": "a", "action": "wait", "estimate": 30, "done_at": 30},
        {"key": "b", "action": "wait", "estimate": 100, "needs": ["a"], "started_at": 30},
        {"key": "c", "duration": {"type": "fixed", "value": 10}, "needs": ["b"]},
    ]
    status, answer = call(
        f"{service}/estimate-recovery-time", {"steps": steps, "now_offset": 80, "seed": 3, "simulations": 1000}
    )
    assert status == 200, answer
    # b has run 50 s of its ~100 (a `wait`: sigma 0.02), then c's fixed 10 s: about 30 + 100 + 10.
    assert 134 <= answer["p50_seconds"] <= 146 and answer["duration_sources"] == {"estimate": 2, "given": 1}
    for body, field in (
        ({"steps": [{**steps[0], "done_at": 90}], "now_offset": 80}, "steps[0].done_at"),
        ({"steps": [{"key": "x", "estimate": 5, "duration": {"type": "fixed", "value": 1}}]}, "steps[0].action"),
        ({"steps": [{"key": "x"}]}, "steps[0]"),
        ({"plan": "core-commerce", "now_offset": 5}, "steps"),  # a running execution gives its steps
    ):
        status, error = call(f"{service}/estimate-recovery-time", body)
        assert status == 400 and error["error"]["fields"].keys() == {field}, (body, error)


def test_the_what_if_uses_the_ml_estimate_when_the_service_is_up(service: str, api_for, monkeypatch, settings) -> None:
    """The what-if scenarios take their recovery estimates from the live service when it is up
    (analytics/impact/estimates.py, installed by drplan/wiring.py as mlservice.client.estimate_recovery_time)."""
    from django.utils import timezone

    from drplan import wiring
    from drplan.management.commands.seed_demo import Seeder, load_demo_data
    from mlservice import client

    Seeder(load_demo_data(), timezone.localdate(), reports=False).run()
    wiring.connect()
    monkeypatch.setenv("DRPLAN_ML_URL", service)
    settings.ML_TIMEOUT_SECONDS = 60  # a loaded machine: slow is not down
    body = (
        api_for("viewer")
        .post("/api/v1/dr/impact-analysis/scenario", {"applications": ["cache-redis"]}, format="json")
        .json()
    )
    assert body["estimator"] == {"ml_available": True, "ml_reason": ""}
    cache = next(r for r in body["applications"] if r["application"] == "cache-redis")
    status, direct = call(f"{service}/estimate-recovery-time", client.estimate_body("core-commerce", ["cache-redis"]))
    assert status == 200
    assert cache["estimate"] == {
        "p50_seconds": direct["p50_seconds"],
        "p90_seconds": direct["p90_seconds"],
        "source": "ml",
        "detail": "ML service estimate for plan core-commerce",
    }
    # without the service the history decides, and the answer says why
    monkeypatch.setenv("DRPLAN_ML_URL", "http://127.0.0.1:9")
    again = (
        api_for("viewer")
        .post("/api/v1/dr/impact-analysis/scenario", {"applications": ["cache-redis"]}, format="json")
        .json()
    )
    assert again["estimator"]["ml_available"] is False and again["estimator"]["ml_reason"]
    assert (
        next(r for r in again["applications"] if r["application"] == "cache-redis")["estimate"]["source"] == "history"
    )
