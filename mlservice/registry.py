"""The models the service answers with, loaded once when it starts (`load()`), from the files `ml train` wrote.

A missing or corrupt file stops the start with ModelFileError naming it; nothing is trained or guessed in
its place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlservice import artifacts
from mlservice.durations import Priors
from mlservice.failure_risk import RiskModel


@dataclass
class Loaded:
    directory: Path
    rto_booster: Any
    rto: dict[str, Any]
    risk: RiskModel
    recovery_time: dict[str, Any]
    impact: dict[str, Any]
    rto_trees: Any = None  # the RTO booster's trees in NumPy (mlservice/trees.py), None if they cannot stand in

    @property
    def priors(self) -> Priors:
        return Priors.from_dict(self.recovery_time["priors"])

    def cards(self) -> dict[str, dict[str, Any]]:
        return {
            "rto": self.rto,
            "recovery_time": self.recovery_time,
            "failure_risk": self.risk.card,
            "impact": self.impact,
        }


_loaded: Loaded | None = None


def load(directory: Path | None = None) -> Loaded:
    """Read every model file (ModelFileError naming the first bad one) and keep them for the process."""
    global _loaded
    directory = directory or artifacts.model_dir()
    cards = {name: artifacts.load_card(name, directory) for name in artifacts.MODEL_NAMES}
    from mlservice import failure_risk, rto, trees

    for name, features in (("rto", rto.FEATURES), ("failure_risk", failure_risk.FEATURES)):
        if cards[name].get("features") != features:
            raise artifacts.ModelFileError(directory / f"{name}.json", "was trained on other features than this code's")
    if "p90_log_offset" not in cards["rto"]:
        raise artifacts.ModelFileError(directory / "rto.json", "has no p90_log_offset")
    rto_booster = artifacts.load_booster("rto", cards["rto"], directory)
    risk_booster = artifacts.load_booster("failure_risk", cards["failure_risk"], directory)
    if "priors" not in cards["recovery_time"]:
        raise artifacts.ModelFileError(directory / "recovery_time.json", "has no priors")
    _loaded = Loaded(
        directory=directory,
        rto_booster=rto_booster,
        rto=cards["rto"],
        risk=RiskModel(risk_booster, cards["failure_risk"]),
        recovery_time=cards["recovery_time"],
        impact=cards["impact"],
        rto_trees=trees.compile_booster(rto_booster, len(rto.FEATURES)),
    )
    return _loaded


def get() -> Loaded:
    if _loaded is None:
        raise RuntimeError("the models are not loaded: the service loads them at start (mlservice.registry.load)")
    return _loaded
