"""Per-step duration distributions: fitted from a step's history, else from its estimate and the priors.

Kinds of step (from the runbook action): `automated` (shell, http, sql, postgres.*, redis.*, aws.*, ssh.run,
python …), `wait` (the `wait` action: its duration is what it says), `manual` (a person does it and
confirms) and, on any step, an approval gate (a person approves before it runs).

Priors (used where a step has no history; `ml train` replaces a prior by a fit when the platform has at
least MIN_SAMPLES measured steps of that kind with an estimate). Their values are assumptions, stated here:
- automated: duration = estimate x lognormal(median 1.0, sigma 0.35);
- wait: its estimate, sigma 0.02;
- manual: the work (estimate, sigma 0.5) plus the time until someone picks it up: lognormal median 120 s,
  sigma 1.0 (a heavy tail: sometimes nobody answers for half an hour);
- approval gate or go/no-go level: lognormal median 300 s, sigma 1.0;
- a step with neither history nor estimate: lognormal median 30 s (failover/projection.py's default), sigma 1.0.

With history: 5 or more successful runs of the step (same step_key, not dry runs) → lognormal with the
median and log-spread of those runs (spread at least 0.05); 1-4 runs → their median with the kind's prior
spread. A manual step's history already includes the wait for a person (the step runs until confirmed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlservice.simulation import ZERO, Distribution

MIN_SAMPLES = 20
DEFAULT_SECONDS = 30.0


@dataclass
class Priors:
    automated_bias: float = 1.0  # median of actual / estimate
    automated_sigma: float = 0.35
    wait_sigma: float = 0.02
    manual_work_sigma: float = 0.5
    manual_pickup_median: float = 120.0
    manual_pickup_sigma: float = 1.0
    approval_median: float = 300.0
    approval_sigma: float = 1.0
    default_sigma: float = 1.0
    sources: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Priors:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def kind_of(action: str) -> str:
    if action == "manual":
        return "manual"
    if action == "wait":
        return "wait"
    return "automated"


def lognormal(median: float, sigma: float) -> Distribution:
    return Distribution("lognormal", median=max(median, 1e-3), sigma=sigma)


def fit_step(
    action: str, estimate: float | None, samples: Sequence[float], priors: Priors, gate: bool = False
) -> tuple[Distribution, Distribution, str]:
    """(work distribution, wait distribution, source) of one step."""
    kind = kind_of(action)
    gate_wait = lognormal(priors.approval_median, priors.approval_sigma) if gate else ZERO
    clean = [float(s) for s in samples if s is not None and math.isfinite(s) and s >= 0]
    if len(clean) >= 5:
        logs = np.log(np.maximum(clean, 1e-3))
        return lognormal(float(np.exp(np.median(logs))), max(0.05, float(np.std(logs, ddof=1)))), gate_wait, "history"
    if clean:
        sigma = {
            "automated": priors.automated_sigma,
            "wait": priors.wait_sigma,
            "manual": max(priors.manual_pickup_sigma, priors.manual_work_sigma),
        }[kind]
        return lognormal(float(np.median(clean)), sigma), gate_wait, "history"
    if estimate:
        if kind == "manual":
            pickup = lognormal(priors.manual_pickup_median, priors.manual_pickup_sigma)
            wait = pickup if not gate else _sum_of(pickup, gate_wait)
            return lognormal(float(estimate), priors.manual_work_sigma), wait, "estimate"
        if kind == "wait":
            return lognormal(float(estimate), priors.wait_sigma), gate_wait, "estimate"
        return lognormal(float(estimate) * priors.automated_bias, priors.automated_sigma), gate_wait, "estimate"
    return lognormal(DEFAULT_SECONDS, priors.default_sigma), gate_wait, "default"


def _sum_of(a: Distribution, b: Distribution) -> Distribution:
    """A lognormal with the mean and variance of a + b (Fenton-Wilkinson): a manual step behind a gate."""

    def moments(d: Distribution) -> tuple[float, float]:
        m = d.median * math.exp(d.sigma**2 / 2)
        return m, (math.exp(d.sigma**2) - 1) * m**2

    (m1, v1), (m2, v2) = moments(a), moments(b)
    mean, var = m1 + m2, v1 + v2
    sigma2 = math.log(1 + var / mean**2)
    return lognormal(mean / math.exp(sigma2 / 2), math.sqrt(sigma2))


def calibrate(rows: Sequence[tuple[str, float, float]], base: Priors | None = None) -> Priors:
    """Priors fitted from measured steps: rows of (action, estimate, measured duration). A kind's prior is
    replaced only with at least MIN_SAMPLES rows of it; `sources` says which."""
    priors = Priors(**{k: v for k, v in (base or Priors()).__dict__.items() if k != "sources"})
    priors.sources = {}
    by_kind: dict[str, list[float]] = {"automated": [], "manual": [], "wait": []}
    for action, estimate, seconds in rows:
        if estimate and estimate > 0 and seconds is not None and seconds > 0:
            by_kind[kind_of(action)].append(math.log(seconds / estimate))
    auto = by_kind["automated"]
    if len(auto) >= MIN_SAMPLES:
        priors.automated_bias = float(math.exp(np.median(auto)))
        priors.automated_sigma = max(0.05, float(np.std(auto, ddof=1)))
        priors.sources["automated"] = f"fitted on {len(auto)} measured steps"
    else:
        priors.sources["automated"] = f"prior (only {len(auto)} measured steps with an estimate; {MIN_SAMPLES} needed)"
    manual = by_kind["manual"]
    if len(manual) >= MIN_SAMPLES:
        priors.manual_pickup_sigma = max(0.05, float(np.std(manual, ddof=1)))
        priors.sources["manual"] = f"spread fitted on {len(manual)} measured manual steps"
    else:
        priors.sources["manual"] = f"prior (only {len(manual)} measured manual steps; {MIN_SAMPLES} needed)"
    priors.sources["approval"] = "prior (no measurements of approval waits are kept apart from the step)"
    return priors
