"""The console's recovery-time estimate: a seam that the project fills at start-up (drplan/wiring.py installs
mlservice.client.estimate_remaining_recovery, an HTTP call to the ML service's POST /estimate-recovery-time with a
short timeout). Failover imports nothing above it; without a provider, or when the service is down, slow or
refuses, the answer says why and the console shows the critical-path projection instead.

After an unavailable answer the estimator is not asked again for RETRY_AFTER_SECONDS in this process, so a
service that hangs costs one timeout per interval, not one per console refresh."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Provider = Callable[[dict[str, Any]], dict[str, Any]]
RETRY_AFTER_SECONDS = 15.0
_provider: Provider | None = None
_lock = threading.Lock()
_down_until = 0.0
_down_reason = ""


def install(provider: Provider | None) -> None:
    global _provider
    _provider = provider
    reset()


def reset() -> None:
    """Forget a failure: the next call asks the estimator again."""
    global _down_until, _down_reason
    with _lock:
        _down_until, _down_reason = 0.0, ""


def unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


def estimate(body: dict[str, Any]) -> dict[str, Any]:
    """The estimator's answer with "available": True (p50_seconds, p90_seconds, probability_meet_rto …), or
    unavailable(reason). Never raises."""
    global _down_until, _down_reason
    if _provider is None:
        return unavailable("no recovery-time estimator is configured")
    with _lock:
        if time.monotonic() < _down_until:
            return unavailable(_down_reason)
    try:
        answer = _provider(body)
    except Exception as exc:  # a provider's bug must not break the console
        answer = unavailable(f"the estimator failed ({type(exc).__name__})")
    if not answer.get("available"):
        with _lock:
            _down_until = time.monotonic() + RETRY_AFTER_SECONDS
            _down_reason = str(answer.get("reason") or "the estimator did not answer")
    return answer
