"""The what-if scenarios take their recovery estimates from the real ML service when it is up
(analytics/impact/estimates.py, installed by drplan/wiring.py as mlservice.client.estimate_recovery_time)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from drplan import wiring
from drplan.management.commands.seed_demo import Seeder, load_demo_data
from mlservice import client
from mlservice.tests.test_service import call, env, service, service_log  # noqa: F401 - the live service fixtures

pytestmark = [pytest.mark.realsystem, pytest.mark.django_db]


def test_the_what_if_uses_the_ml_estimate_when_the_service_is_up(service, api_for, monkeypatch) -> None:  # noqa: F811
    Seeder(load_demo_data(), timezone.localdate(), reports=False).run()
    wiring.connect()
    monkeypatch.setenv("DRPLAN_ML_URL", service)
    monkeypatch.setenv("DRPLAN_ML_TIMEOUT_SECONDS", "60")  # a loaded machine: slow is not down
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
