"""An application's expected recovery time for the what-if scenarios: the ML service's estimate when it is
up, else the history of the plan that recovers it, else the plan's estimates. Every answer names its source.

The ML estimator is a seam (analytics may not import mlservice): drplan/wiring.py installs
mlservice.client.estimate_recovery_time. It answers {"available": bool, "p50_seconds", "p90_seconds", ...}.

Sources, first that has figures wins (P50 / P90, seconds from the start of the plan's recovery until the
application is up):
- ml: the service's Monte Carlo estimate for the plan's steps that recover the application.
- history: the plan's measured recoveries: DR test results' actual RTO and completed failovers' measured
  RTO (the HISTORY_SAMPLES most recent): median and 90th percentile (linear interpolation).
- strategy: the sum of the plan's failover strategy step estimates; P90 = P50 x estimate_p90_factor.
- target: the application's current RTO (RTO target record), else its target, else the plan's RTO;
  P90 = P50 x estimate_p90_factor.
- unplanned: no plan recovers it: unplanned_recovery_hours (a rebuild), P90 likewise scaled.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from analytics.models import DRTestResult
from failover.choices import ExecutionStatus
from failover.models import FailoverExecution
from plans.choices import StrategyKind

HISTORY_SAMPLES = 20

Provider = Callable[[Any, list[str]], dict[str, Any]]
_provider: Provider | None = None


def install(provider: Provider | None) -> None:
    global _provider
    _provider = provider


@dataclass(frozen=True)
class Estimate:
    p50: float
    p90: float
    source: str  # ml | history | strategy | target | unplanned
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"p50_seconds": self.p50, "p90_seconds": self.p90, "source": self.source, "detail": self.detail}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


class Estimator:
    """Estimates for one scenario: the ML service is asked until it first fails, plan figures are cached."""

    def __init__(self, figures: dict[str, Any]) -> None:
        self.figures = figures
        self.ml_up = _provider is not None
        self._history: dict[int, list[float]] = {}
        self.ml_reason = "no estimator is configured" if _provider is None else ""

    def plan_history(self, plan: Any) -> list[float]:
        if plan.pk not in self._history:
            tests = list(
                DRTestResult.objects.filter(plan=plan, actual_rto_seconds__isnull=False)
                .order_by("-test_date", "-pk")
                .values_list("actual_rto_seconds", flat=True)[:HISTORY_SAMPLES]
            )
            runs = list(
                FailoverExecution.objects.filter(
                    plan=plan,
                    status=ExecutionStatus.COMPLETED,
                    dry_run=False,
                    actual_rto_seconds__isnull=False,
                    test_result__isnull=True,  # a test with a result is counted once, above
                )
                .order_by("-triggered_at", "-pk")
                .values_list("actual_rto_seconds", flat=True)[:HISTORY_SAMPLES]
            )
            self._history[plan.pk] = [float(v) for v in tests + runs]
        return self._history[plan.pk]

    def estimate(self, application: Any, plan: Any, target_seconds: float | None) -> Estimate:
        factor = float(self.figures.get("estimate_p90_factor", 1.5))
        if plan is None:
            hours = float(self.figures.get("unplanned_recovery_hours", 72))
            return Estimate(hours * 3600, hours * 3600 * factor, "unplanned", "no DR plan recovers it: a rebuild")
        if self.ml_up and _provider is not None:
            answer = _provider(plan, [application.slug])
            if answer.get("available") and answer.get("p50_seconds") is not None:
                p50, p90 = float(answer["p50_seconds"]), float(answer["p90_seconds"])
                return Estimate(p50, max(p50, p90), "ml", f"ML service estimate for plan {plan.plan_id}")
            self.ml_up = False  # down or refusing: do not wait on it for every application
            self.ml_reason = str(answer.get("reason", "unavailable"))
        samples = self.plan_history(plan)
        if samples:
            return Estimate(
                float(statistics.median(samples)),
                percentile(samples, 0.9),
                "history",
                f"{len(samples)} measured recoveries of plan {plan.plan_id}",
            )
        steps = 0
        for strategy in plan.recovery_strategies.all():
            if strategy.kind == StrategyKind.FAILOVER:
                steps = sum(s.estimated_duration_seconds for s in strategy.steps.all())
                if steps:
                    return Estimate(
                        float(steps),
                        steps * factor,
                        "strategy",
                        f"step estimates of '{strategy.name}' ({plan.plan_id})",
                    )
        if target_seconds:
            return Estimate(
                float(target_seconds), target_seconds * factor, "target", f"{application.slug}'s RTO target record"
            )
        return Estimate(float(plan.rto_seconds), plan.rto_seconds * factor, "target", f"the RTO of plan {plan.plan_id}")
