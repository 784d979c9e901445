"""Per-step duration distributions: history first, then the estimate with the priors, then the default."""

from __future__ import annotations

import math

import pytest

from mlservice.durations import DEFAULT_SECONDS, MIN_SAMPLES, Priors, calibrate, fit_step


def test_five_runs_or_more_give_a_lognormal_fitted_on_them() -> None:
    samples = [10.0, 20.0, 40.0, 20.0, 20.0]
    work, wait, source = fit_step("shell", 999, samples, Priors())
    assert source == "history"
    assert work.kind == "lognormal" and work.median == pytest.approx(20.0)
    logs = [math.log(s) for s in samples]
    mean = sum(logs) / 5
    assert work.sigma == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in logs) / 4))
    assert wait.kind == "fixed" and wait.value == 0


def test_without_history_the_estimate_and_the_kind_decide() -> None:
    priors = Priors()
    work, wait, source = fit_step("http", 60, [], priors)
    assert (source, work.median, work.sigma, wait.value) == ("estimate", 60.0, priors.automated_sigma, 0)
    work, wait, source = fit_step("manual", 60, [], priors)
    assert (source, work.median, wait.median) == ("estimate", 60.0, priors.manual_pickup_median)
    work, wait, source = fit_step("wait", 30, [], priors, gate=True)
    assert work.sigma == priors.wait_sigma and wait.median == priors.approval_median
    work, _, source = fit_step("shell", None, [], priors)
    assert (source, work.median) == ("default", DEFAULT_SECONDS)


def test_a_manual_step_behind_a_gate_keeps_the_mean_of_both_waits() -> None:
    priors = Priors()
    _, wait, _ = fit_step("manual", 60, [], priors, gate=True)
    expected = priors.manual_pickup_median * math.exp(priors.manual_pickup_sigma**2 / 2) + (
        priors.approval_median * math.exp(priors.approval_sigma**2 / 2)
    )
    assert wait.expected() == pytest.approx(expected)


def test_calibration_replaces_a_prior_only_with_enough_measurements() -> None:
    few = calibrate([("shell", 10, 20)] * (MIN_SAMPLES - 1))
    assert few.automated_bias == 1.0 and few.sources["automated"].startswith("prior")
    rows = [("shell", 10, 20 * (1.1 if i % 2 else 0.9)) for i in range(MIN_SAMPLES)]
    fitted = calibrate(rows)
    assert fitted.automated_bias == pytest.approx(2.0, rel=0.1)
    assert fitted.sources["automated"] == f"fitted on {MIN_SAMPLES} measured steps"
    assert Priors.from_dict(fitted.as_dict()).automated_bias == pytest.approx(fitted.automated_bias, abs=1e-4)
