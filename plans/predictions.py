"""A plan's predicted RTO, as the plan API shows it: a seam that the project fills at start-up
(drplan/wiring.py installs mlservice.client.predict_plan_rto). Plans import nothing above them; without a
provider, or when the ML service is down, the answer says "prediction unavailable" and nothing else fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

UNAVAILABLE = "prediction unavailable"

Provider = Callable[[Any], dict[str, Any]]
_provider: Provider | None = None


def install(provider: Provider | None) -> None:
    global _provider
    _provider = provider


def unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "message": UNAVAILABLE, "reason": reason}


def predicted_rto(plan: Any) -> dict[str, Any]:
    """{"available": True, "p50_seconds", "p90_seconds", "probability_meet_rto", …} or unavailable(reason)."""
    if _provider is None:
        return unavailable("no prediction service is configured")
    return _provider(plan)
