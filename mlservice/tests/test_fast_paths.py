"""The per-request fast paths of the ML service (bench/ml.py measures them): the RTO model's trees walked in
NumPy give XGBoost's own predictions, and the quick request check never accepts what jsonschema refuses."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import xgboost as xgb
from jsonschema import Draft202012Validator

from mlservice import rto, trees
from mlservice.api import requests
from mlservice.durations import Priors
from mlservice.failure_risk import FEATURES as SMART


def _quantile_booster(seed: int) -> xgb.Booster:
    rng = np.random.default_rng(seed)
    x = rng.lognormal(3, 1.5, size=(600, 6))
    x[rng.random(x.shape) < 0.1] = np.nan
    y = np.log1p(np.nan_to_num(x[:, 0]) * 2 + np.nan_to_num(x[:, 3]) + rng.lognormal(2, 0.5, 600))
    params = {"objective": "reg:quantileerror", "quantile_alpha": [0.5, 0.9], "max_depth": 5, "nthread": 1}
    return xgb.train({**params, "seed": seed}, xgb.QuantileDMatrix(x, label=y), num_boost_round=40)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_trees_walked_in_numpy_predict_what_xgboost_predicts(seed: int) -> None:
    booster = _quantile_booster(seed)
    compiled = trees.compile_booster(booster, 6, seed=seed)
    assert compiled is not None and compiled.depth == 5
    rng = np.random.default_rng(100 + seed)
    rows = rng.lognormal(3, 2, size=(300, 6))
    rows[rng.random(rows.shape) < 0.2] = np.nan
    rows[:50] = compiled.threshold[rng.integers(0, len(compiled.threshold), size=(50, 6))]  # on split values
    expected = booster.inplace_predict(rows).reshape(len(rows), 2)
    np.testing.assert_allclose(compiled.predict(rows), expected, rtol=1e-5, atol=1e-5)
    # what the service answers: P50 and P90 in seconds, the same through either (XGBoost adds the leaves in
    # float32, this in float64: a millionth apart)
    np.testing.assert_allclose(
        rto.predict_quantiles(compiled, rows[:5], 0.1), rto.predict_quantiles(booster, rows[:5], 0.1), rtol=1e-5
    )


def test_the_service_rto_model_is_compiled_and_a_model_it_cannot_walk_is_not() -> None:
    booster, *_ = rto.train(Priors(), plans=40, runs_per_plan=6, rounds=30, seed=3)
    compiled = trees.compile_booster(booster, len(rto.FEATURES))
    assert compiled is not None
    classifier = xgb.train(
        {"objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(np.arange(40.0).reshape(20, 2), label=np.arange(20) % 2),
        num_boost_round=3,
    )
    assert trees.compile_booster(classifier, 2) is None  # a sigmoid on top: left to XGBoost


def _variants(body: dict) -> list:
    """The body, and bodies broken or bent in the ways a client gets them wrong."""
    out = [body]
    for key, value in body.items():
        out.append({k: v for k, v in body.items() if k != key})  # missing
        for bad in (None, True, "7", -1, -0.5, 1.5, 0, [], {}, [1], {"x": 1}, "", "a" * 300):
            out.append({**body, key: bad})
        if isinstance(value, dict):
            for inner in list(value)[:4]:
                for bad in (None, True, -1, "x", 2.5):
                    out.append({**body, key: {**value, inner: bad}})
                out.append({**body, key: {k: v for k, v in value.items() if k != inner}})
            out.append({**body, key: {**value, "extra": 1}})
        if isinstance(value, list) and value:
            first = value[0]
            out.append({**body, key: value * 3})
            if isinstance(first, dict):
                for inner in first:
                    out.append({**body, key: [{k: v for k, v in first.items() if k != inner}]})
                    out.append({**body, key: [{**first, inner: -3}]})
    out.append({**body, "unknown": 1})
    return out


BODIES = [
    (requests.PREDICT_RTO, {"plan": "core-commerce", "data_volume_gb": 50}),
    (requests.PREDICT_RTO, {"features": {f: 1.0 for f in rto.FEATURES}, "rto_seconds": 900}),
    (requests.PREDICT_RTO, {"features": {f: None if f in rto.CONDITIONS else 2 for f in rto.FEATURES}}),
    (requests.ESTIMATE, {"plan": "core-commerce", "applications": ["orders-db"], "seed": 1, "simulations": 1000}),
    (
        requests.ESTIMATE,
        {
            "steps": [
                {"key": "a", "action": "manual", "estimate": 60, "gate": True, "done_at": 5},
                {"key": "b", "needs": ["a"], "duration": {"type": "lognormal", "median": 5, "sigma": 0.3}},
            ],
            "now_offset": 10,
            "parallelism": 2,
            "approval_levels": 1,
        },
    ),
    (requests.ANALYZE_FAILURE_RISK, {"serial_number": "X1", "smart": dict.fromkeys(SMART, 1.0)}),
    (requests.SCORE_IMPACT, {"impact_analysis": 1, "parallelism": 2}),
]


@pytest.mark.parametrize(("schema", "body"), BODIES)
def test_the_quick_check_accepts_only_what_jsonschema_accepts(schema: dict, body: dict) -> None:
    validator = Draft202012Validator(schema)
    accepted = 0
    for variant in _variants(copy.deepcopy(body)):
        quick = requests._check(schema, variant)
        valid = validator.is_valid(variant)
        assert quick is not True or valid, variant  # never accepts what jsonschema refuses
        if quick is not None:
            assert quick == valid, variant  # when it decides, it decides as jsonschema does
        accepted += quick is True
    assert requests._check(schema, body) is True  # the common valid body takes the fast path
    assert accepted >= 1


def test_a_refused_body_still_names_its_field() -> None:
    body = {"features": dict.fromkeys(rto.FEATURES, 1.0) | {"step_count": -1}}
    with pytest.raises(Exception, match=r"features\.step_count: must not be negative"):
        requests.validate(requests.PREDICT_RTO, body)
