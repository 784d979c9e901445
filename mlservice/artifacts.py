"""Model files: each model is `<name>.json` (its card: version, training date, data provenance, features,
validation metrics next to their baselines, parameters) and, for a trained booster, `<name>.ubj` (XGBoost's
binary format) whose SHA-256 the card records. `python manage.py ml train` writes them; the service loads
them once at start and refuses to start, naming the file, when one is missing, unreadable or altered.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MODEL_NAMES = ("rto", "recovery_time", "failure_risk", "impact")
BOOSTED = {"rto", "failure_risk"}


class ModelFileError(RuntimeError):
    """A model file is missing or corrupt; `path` names it."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"model file {path}: {problem}; run `python manage.py ml train` to make it again")
        self.path = path


def model_dir() -> Path:
    """DRPLAN_ML_MODEL_DIR, else `ml/` under the runtime directory (var/ml): trained files are runtime data."""
    from django.conf import settings

    return Path(os.environ.get("DRPLAN_ML_MODEL_DIR") or Path(settings.VAR_DIR) / "ml")


def new_version(name: str, payload: bytes) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return f"{name}-{stamp}-{hashlib.sha256(payload).hexdigest()[:8]}"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save(name: str, card: dict[str, Any], booster_bytes: bytes | None = None, directory: Path | None = None) -> Path:
    """Write the model's files; returns the card's path. The card gets `version`, `trained_at` and, with a
    booster, `model_file` and `model_sha256`."""
    directory = directory or model_dir()
    card = dict(card)
    payload = booster_bytes if booster_bytes is not None else json.dumps(card, sort_keys=True).encode()
    card.setdefault("version", new_version(name, payload))
    card.setdefault("trained_at", datetime.now(UTC).isoformat(timespec="seconds"))
    if booster_bytes is not None:
        card["model_file"] = f"{name}.ubj"
        card["model_sha256"] = hashlib.sha256(booster_bytes).hexdigest()
        _write_atomic(directory / f"{name}.ubj", booster_bytes)
    path = directory / f"{name}.json"
    _write_atomic(path, (json.dumps(card, indent=1, sort_keys=False) + "\n").encode())
    return path


def load_card(name: str, directory: Path | None = None) -> dict[str, Any]:
    path = (directory or model_dir()) / f"{name}.json"
    if not path.is_file():
        raise ModelFileError(path, "missing")
    try:
        card = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(path, f"not a readable model card ({exc})") from None
    if not isinstance(card, dict) or card.get("name") != name or "version" not in card:
        raise ModelFileError(path, f"not the card of model {name!r}")
    return card


def load_booster(name: str, card: dict[str, Any], directory: Path | None = None) -> Any:
    import xgboost as xgb

    path = (directory or model_dir()) / card.get("model_file", f"{name}.ubj")
    if not path.is_file():
        raise ModelFileError(path, "missing")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != card.get("model_sha256"):
        raise ModelFileError(path, "corrupt (its SHA-256 differs from the one its card records)")
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(data))
    except xgb.core.XGBoostError as exc:
        raise ModelFileError(path, f"corrupt ({str(exc).splitlines()[0][:200]})") from None
    booster.set_param({"nthread": 1})
    return booster
