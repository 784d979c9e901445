"""The main application's client of the ML service (127.0.0.1:8045 by default; DRPLAN_ML_URL). A short
timeout (DRPLAN_ML_TIMEOUT_SECONDS, 1 s): when the service is down, slow or refuses, the answer is
"prediction unavailable" with the reason, and the page or API that asked works as before."""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)
UNAVAILABLE = "prediction unavailable"


def base_url() -> str:
    url = os.environ.get("DRPLAN_ML_URL", "http://127.0.0.1:8045").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError("DRPLAN_ML_URL must be an http:// or https:// URL")
    return url


def timeout() -> float:
    """settings.ML_TIMEOUT_SECONDS (DRPLAN_ML_TIMEOUT_SECONDS, checked at start: a number of seconds above 0)."""
    return float(settings.ML_TIMEOUT_SECONDS)


def unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "message": UNAVAILABLE, "reason": reason}


def post(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    """The service's JSON answer with "available": True, or unavailable(reason); never raises."""
    try:
        url = f"{base_url()}/{endpoint}"
    except ValueError as exc:
        return unavailable(str(exc))
    request = urllib.request.Request(  # noqa: S310 - base_url() allows http(s) only
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout()) as response:  # noqa: S310 - http(s) only
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            reason = json.loads(error.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            reason = f"the ML service answered {error.code}"
        return unavailable(reason)
    except (OSError, ValueError) as exc:  # refused, timed out, reset, not JSON
        log.info("ML service %s unavailable: %s", endpoint, exc)
        return unavailable(f"the ML service did not answer ({type(exc).__name__})")
    if not isinstance(answer, dict):
        return unavailable("the ML service answered something that is not a JSON object")
    return {"available": True, **answer}


def predict_plan_rto(plan: Any) -> dict[str, Any]:
    """Predicted RTO P50/P90 of a plan and the probability of meeting its target (the plan API's field)."""
    answer = post("predict-rto", {"plan": plan.plan_id})
    if not answer["available"]:
        return answer
    keys = ("p50_seconds", "p90_seconds", "probability_meet_rto", "rto_seconds", "training_data", "model_version")
    return {"available": True, **{k: answer.get(k) for k in keys}}


def estimate_body(plan_id: str, applications: list[str]) -> dict[str, Any]:
    """A fixed seed: the same scenario gets the same estimate (a what-if is compared with another)."""
    return {"plan": plan_id, "applications": applications, "simulations": 2000, "seed": 1}


def estimate_recovery_time(plan: Any, applications: list[str]) -> dict[str, Any]:
    """P50/P90 seconds until the plan's steps that recover `applications` are done (the what-if estimator)."""
    answer = post("estimate-recovery-time", estimate_body(plan.plan_id, applications))
    if not answer["available"]:
        return answer
    return {"available": True, **{k: answer.get(k) for k in ("p50_seconds", "p90_seconds", "model_version")}}


def estimate_remaining_recovery(body: dict[str, Any]) -> dict[str, Any]:
    """The recovery-time estimate of a running execution's remaining steps (the console's projection)."""
    return post("estimate-recovery-time", body)
