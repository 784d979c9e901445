"""The Monte Carlo's tail next to real cloud incidents (../shared/data/outages/, read only when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlservice import outages


def test_without_the_shared_data_there_is_no_comparison(tmp_path: Path) -> None:
    assert outages.incident_minutes(tmp_path) is None
    assert outages.compare({"x": np.ones(10)}, tmp_path) is None


def test_the_incidents_tail_is_heavier_than_a_simulated_plans() -> None:
    incidents = outages.incident_minutes()
    if incidents is None:
        pytest.skip("../shared/data/outages/ is not there")
    every = np.concatenate(list(incidents.values()))
    assert set(incidents) == {"AWS", "Azure", "GCP"}
    assert every.min() > 0 and every.size > 1000  # the source's non-positive durations are left out
    shape = outages.tail_shape(every)
    assert shape["p99_over_p50"] > 10 and shape["sigma_log"] > 1
    simulated = np.random.default_rng(0).lognormal(np.log(1000), 0.36, 20_000)
    report = outages.compare({"plan": simulated})
    assert report["simulated_plans"]["plan"]["p99_over_p50"] < shape["p99_over_p50"] / 4
