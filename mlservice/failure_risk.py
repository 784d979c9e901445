"""Drive failure risk from SMART telemetry. Source: Backblaze Drive Stats (mlservice/data/backblaze/SOURCE.md).

Data: 534 TOSHIBA MQ01ABF050 drives observed in 2019, 78 of which failed; one row per drive on its last
observed day (the failure day, or 31 December for a drive still running) and, separately, each drive's last
ten days. The label is per drive: did it fail.

Features: the SMART raw values that describe the drive's condition, not how long it was watched. Left out:
power-on hours (9), head-flying hours (222), load cycles (193), start/stop count (4) and power cycles (12).
They grow with time, and a running drive is seen on 31 December while a failed one is seen on its failure
day, months earlier on average: those counters separate the classes partly because of when each drive was
last observed. With them the cross-validated ROC-AUC is higher (see `with_time_counters` in the card); that
part of it would not hold for a drive scored today.

Validation is by drive (serial number), never by row: 5-fold stratified group cross-validation, each drive
scored by the model of the fold that did not see it. The decision threshold of each fold is chosen on its
own training drives (inner cross-validation, best F1), never on the drives it is scored on. Reported:
ROC-AUC, precision and recall at the threshold, and the lead time on the 10-day file: for each failed drive,
how many days before its last day the risk (of the fold model that never saw the drive) first crosses the
threshold. Baselines measured in the same run: the rule "reallocated (5), reallocation-event (196) or
pending (197) sector count above zero" (Backblaze's own reading of these counters) and a logistic
regression on log(1 + value) of the same features.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data" / "backblaze"
LAST_DAY = "backblaze_2019_TOSHIBA_MQ01ABF050_last_day_raw.csv"
LAST_TEN_DAYS = "backblaze_2019_TOSHIBA_MQ01ABF050_last_10_day_raw.csv"
CITATION = "Source: Backblaze Drive Stats (https://www.backblaze.com/cloud-storage/resources/hard-drive-test-data)"

FEATURES = [
    "smart_3_raw",
    "smart_5_raw",
    "smart_191_raw",
    "smart_192_raw",
    "smart_194_raw",
    "smart_196_raw",
    "smart_197_raw",
    "smart_199_raw",
    "smart_226_raw",
]
TIME_COUNTERS = ["smart_4_raw", "smart_9_raw", "smart_12_raw", "smart_193_raw", "smart_222_raw"]
ATTRIBUTE_NAMES = {
    "smart_3_raw": "spin-up time",
    "smart_4_raw": "start/stop count",
    "smart_5_raw": "reallocated sectors count",
    "smart_9_raw": "power-on hours",
    "smart_12_raw": "power cycle count",
    "smart_191_raw": "G-sense error rate",
    "smart_192_raw": "power-off retract count",
    "smart_193_raw": "load cycle count",
    "smart_194_raw": "temperature (°C)",
    "smart_196_raw": "reallocation event count",
    "smart_197_raw": "current pending sector count",
    "smart_199_raw": "UltraDMA CRC error count",
    "smart_222_raw": "loaded hours",
    "smart_226_raw": "load-in time",
}
BASELINE_RULE = ["smart_5_raw", "smart_196_raw", "smart_197_raw"]
# Risk never falls as a sector or error counter rises: monotone constraints on those (a physical prior that
# also regularises a model trained on 78 failures).
MONOTONE = ("smart_5_raw", "smart_196_raw", "smart_197_raw", "smart_199_raw")
PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "max_depth": 2,
    "monotone_constraints": "(" + ",".join("1" if f in MONOTONE else "0" for f in FEATURES) + ")",
    "eta": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.9,
    "min_child_weight": 2,
    "nthread": 1,
}
ROUNDS = 150


@dataclass
class Drives:
    serials: np.ndarray
    failed: np.ndarray  # 1 if the drive failed
    last_day: dict[str, np.ndarray]  # column → values on the drive's last day (aligned with serials)
    ten_days: dict[str, list[dict[str, float]]]  # serial → its daily rows, oldest first


def _read(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    text = gzip.decompress(raw).decode() if path.suffix == ".gz" else raw.decode()
    return list(csv.DictReader(io.StringIO(text)))


def _find(directory: Path, name: str) -> Path:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{directory / name}(.gz) not found")


def load_drives(directory: Path = DATA_DIR) -> Drives:
    rows = _read(_find(directory, LAST_DAY))
    columns = FEATURES + TIME_COUNTERS
    serials = np.array([r["serial_number"] for r in rows])
    if len(set(serials)) != len(serials):
        raise ValueError("the last-day file has a drive twice")
    failed = np.array([int(r["failure"]) for r in rows])
    last_day = {c: np.array([float(r[c]) for r in rows]) for c in columns}
    ten: dict[str, list[dict[str, float]]] = {}
    for r in sorted(_read(_find(directory, LAST_TEN_DAYS)), key=lambda r: (r["serial_number"], r["date"])):
        ten.setdefault(r["serial_number"], []).append({c: float(r[c]) for c in columns})
    return Drives(serials, failed, last_day, ten)


def matrix(values: dict[str, np.ndarray] | Iterable[dict[str, float]], features: list[str]) -> np.ndarray:
    if isinstance(values, dict):
        return np.column_stack([values[f] for f in features]).astype(float)
    return np.array([[row[f] for f in features] for row in values], dtype=float)


def _fit(x: np.ndarray, y: np.ndarray, seed: int, rounds: int) -> Any:
    import xgboost as xgb

    params = dict(PARAMS, seed=seed, base_score=float(np.clip(y.mean(), 0.01, 0.99)))
    if x.shape[1] != len(FEATURES):  # the comparison with the time counters: no constraint string for it
        params.pop("monotone_constraints")
    return xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=rounds)


def _predict(booster: Any, x: np.ndarray) -> np.ndarray:
    return booster.inplace_predict(x)


def _best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    best, best_f1 = 0.5, -1.0
    for t in np.unique(np.round(p, 4)):
        pred = p >= t
        tp = float(np.sum(pred & (y == 1)))
        f1 = 2 * tp / (pred.sum() + y.sum()) if (pred.sum() + y.sum()) else 0.0
        if f1 > best_f1:
            best, best_f1 = float(t), f1
    return best


def _folds(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedGroupKFold

    return list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))


def _threshold_by_inner_cv(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, rounds: int) -> float:
    oof = np.zeros(len(y))
    for train, test in _folds(y, groups, 4, seed + 1):
        oof[test] = _predict(_fit(x[train], y[train], seed, rounds), x[test])
    return _best_f1_threshold(y, oof)


def _precision_recall(y: np.ndarray, flagged: np.ndarray) -> tuple[float, float]:
    tp = float(np.sum(flagged & (y == 1)))
    precision = tp / flagged.sum() if flagged.sum() else 0.0
    recall = tp / (y == 1).sum() if (y == 1).sum() else 0.0
    return round(precision, 4), round(recall, 4)


def _lead_times(risk_by_day: dict[str, tuple[np.ndarray, float]]) -> list[int | None]:
    """Per failed drive: days before its last day when the risk first reached its threshold (None: never)."""
    out: list[int | None] = []
    for risks, threshold in risk_by_day.values():
        above = np.nonzero(risks >= threshold)[0]
        out.append(int(len(risks) - 1 - above[0]) if above.size else None)
    return out


def _lead_summary(lead: list[int | None], healthy_flags: list[bool]) -> dict[str, Any]:
    caught = [d for d in lead if d is not None]
    return {
        "failed_drives": len(lead),
        "flagged_within_last_10_days": len(caught),
        "median_lead_days": float(np.median(caught)) if caught else None,
        "mean_lead_days": round(float(np.mean(caught)), 2) if caught else None,
        "flagged_at_least_7_days_before": sum(1 for d in caught if d >= 7),
        "healthy_drives_flagged_on_any_of_their_last_10_days": round(float(np.mean(healthy_flags)), 4)
        if healthy_flags
        else None,
    }


def cross_validate(
    drives: Drives, features: list[str], *, seed: int = 0, rounds: int = ROUNDS, folds: int = 5
) -> dict[str, Any]:
    """Out-of-fold evaluation by drive (see the module docstring), with the baselines."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    x = matrix(drives.last_day, features)
    y = drives.failed
    groups = drives.serials
    oof = np.zeros(len(y))
    flagged = np.zeros(len(y), dtype=bool)
    logit_oof = np.zeros(len(y))
    logit_flagged = np.zeros(len(y), dtype=bool)
    thresholds = []
    lead_risk: dict[str, tuple[np.ndarray, float]] = {}
    healthy_flags: list[bool] = []
    split_check = []
    for train, test in _folds(y, groups, folds, seed):
        split_check.append(len(set(groups[train]) & set(groups[test])))
        booster = _fit(x[train], y[train], seed, rounds)
        threshold = _threshold_by_inner_cv(x[train], y[train], groups[train], seed, rounds)
        thresholds.append(threshold)
        oof[test] = _predict(booster, x[test])
        flagged[test] = oof[test] >= threshold
        logit = LogisticRegression(max_iter=2000, class_weight=None)
        logit.fit(np.log1p(x[train]), y[train])
        logit_train = logit.predict_proba(np.log1p(x[train]))[:, 1]
        logit_oof[test] = logit.predict_proba(np.log1p(x[test]))[:, 1]
        logit_flagged[test] = logit_oof[test] >= _best_f1_threshold(y[train], logit_train)
        for i in test:
            serial = groups[i]
            days = matrix(drives.ten_days.get(serial, []), features) if serial in drives.ten_days else None
            if days is None or not len(days):
                continue
            risks = _predict(booster, days)
            if y[i] == 1:
                lead_risk[serial] = (risks, threshold)
            else:
                healthy_flags.append(bool((risks >= threshold).any()))
    rule = np.zeros(len(y), dtype=bool)
    for f in BASELINE_RULE:
        rule |= drives.last_day[f] > 0
    rule_lead: dict[str, tuple[np.ndarray, float]] = {}
    rule_healthy: list[bool] = []
    for i, serial in enumerate(groups):
        rows = drives.ten_days.get(serial)
        if not rows:
            continue
        fired = np.array([any(r[f] > 0 for f in BASELINE_RULE) for r in rows], dtype=float)
        if y[i] == 1:
            rule_lead[serial] = (fired, 1.0)
        else:
            rule_healthy.append(bool(fired.any()))
    precision, recall = _precision_recall(y, flagged)
    rule_precision, rule_recall = _precision_recall(y, rule)
    logit_precision, logit_recall = _precision_recall(y, logit_flagged)
    return {
        "validation": f"{folds}-fold stratified cross-validation grouped by serial number (drives never split)",
        "drives": len(y),
        "failed_drives": int(y.sum()),
        "drives_in_both_train_and_test": int(sum(split_check)),
        "roc_auc": round(float(roc_auc_score(y, oof)), 4),
        "threshold_per_fold": [round(t, 4) for t in thresholds],
        "precision": precision,
        "recall": recall,
        "lead_time_10_day_file": _lead_summary(_lead_times(lead_risk), healthy_flags),
        "baselines": {
            "rule_5_196_197_above_zero": {
                "roc_auc": round(float(roc_auc_score(y, rule.astype(float))), 4),
                "precision": rule_precision,
                "recall": rule_recall,
                "lead_time_10_day_file": _lead_summary(_lead_times(rule_lead), rule_healthy),
            },
            "logistic_regression_log1p": {
                "roc_auc": round(float(roc_auc_score(y, logit_oof)), 4),
                "precision": logit_precision,
                "recall": logit_recall,
            },
        },
    }


def train(
    directory: Path = DATA_DIR,
    *,
    seed: int = 0,
    rounds: int = ROUNDS,
    folds: int = 5,
    compare_time_counters: bool = True,
) -> tuple[Any, dict]:
    """(booster, card) of the served model: validated by drive, then refit on every drive."""
    from sklearn.metrics import roc_auc_score

    drives = load_drives(directory)
    metrics = cross_validate(drives, FEATURES, seed=seed, rounds=rounds, folds=folds)
    with_time = (
        cross_validate(drives, FEATURES + TIME_COUNTERS, seed=seed, rounds=rounds, folds=folds)
        if compare_time_counters
        else {"roc_auc": None}
    )
    x = matrix(drives.last_day, FEATURES)
    booster = _fit(x, drives.failed, seed, rounds)
    threshold = _threshold_by_inner_cv(x, drives.failed, drives.serials, seed, rounds)
    card = {
        "name": "failure_risk",
        "kind": "XGBoost binary classifier (gradient-boosted trees)",
        "data_provenance": {
            "citation": CITATION,
            "files": [f"mlservice/data/backblaze/{LAST_DAY}.gz", f"mlservice/data/backblaze/{LAST_TEN_DAYS}.gz"],
            "terms": "Backblaze: cite Backblaze as the source; you are responsible for how you use it; do not sell it",
            "rows": "534 drives (TOSHIBA MQ01ABF050, 2019), 78 failed; label per drive",
        },
        "features": FEATURES,
        "feature_names": {f: ATTRIBUTE_NAMES[f] for f in FEATURES},
        "excluded_features": {
            f: "grows with time: confounded with when the drive was last observed" for f in TIME_COUNTERS
        },
        "threshold": round(threshold, 4),
        "params": dict(PARAMS, rounds=rounds, seed=seed),
        "metrics": metrics,
        "with_time_counters": {
            "roc_auc": with_time["roc_auc"],
            "note": "same validation with the five time counters added; not served (see excluded_features)",
        },
        "training_fit_roc_auc": round(float(roc_auc_score(drives.failed, _predict(booster, x))), 4),
        "limits": [
            "one drive model (TOSHIBA MQ01ABF050, 500 GB laptop drive) and one year: other models differ",
            "78 failures in 534 drives (15 %) is far above a fleet's yearly failure rate (~1-2 %): "
            "precision on a real fleet would be much lower at the same threshold",
            "values are raw SMART counters as Backblaze reports them; vendors encode some differently",
        ],
    }
    return booster, card


@dataclass
class RiskModel:
    booster: Any
    card: dict[str, Any]

    def assess(self, smart: dict[str, float]) -> dict[str, Any]:
        import xgboost as xgb

        features = self.card["features"]
        x = np.array([[float(smart[f]) for f in features]])
        probability = float(self.booster.inplace_predict(x)[0])
        contributions = self.booster.predict(xgb.DMatrix(x, nthread=1), pred_contribs=True)[0][: len(features)]
        order = np.argsort(-contributions)
        drivers = [
            {
                "attribute": features[i],
                "name": ATTRIBUTE_NAMES.get(features[i], features[i]),
                "value": float(x[0, i]),
                "contribution": round(float(contributions[i]), 4),
            }
            for i in order
            if contributions[i] > 0
        ][:3]
        threshold = float(self.card["threshold"])
        return {
            "failure_probability": round(probability, 4),
            "threshold": threshold,
            "at_risk": probability >= threshold,
            "drivers": drivers,
            "citation": CITATION,
        }
