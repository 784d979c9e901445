"""Model files: a card and a booster written together, refused by name when missing or altered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from mlservice import artifacts


def small_booster() -> bytes:
    x = np.arange(40, dtype=float).reshape(20, 2)
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(x, label=x[:, 0]), num_boost_round=3)
    return bytes(booster.save_raw("ubj"))


def test_a_saved_model_loads_back(tmp_path: Path) -> None:
    raw = small_booster()
    artifacts.save("rto", {"name": "rto", "metrics": {"mae": 1.0}}, raw, directory=tmp_path)
    card = artifacts.load_card("rto", tmp_path)
    assert card["version"].startswith("rto-") and card["trained_at"] and card["model_file"] == "rto.ubj"
    booster = artifacts.load_booster("rto", card, tmp_path)
    assert booster.inplace_predict(np.array([[1.0, 2.0]])).shape == (1,)


def test_missing_altered_or_foreign_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(artifacts.ModelFileError, match=r"rto\.json: missing"):
        artifacts.load_card("rto", tmp_path)
    artifacts.save("rto", {"name": "rto"}, small_booster(), directory=tmp_path)
    card = artifacts.load_card("rto", tmp_path)
    data = bytearray((tmp_path / "rto.ubj").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "rto.ubj").write_bytes(bytes(data))
    with pytest.raises(artifacts.ModelFileError, match=r"rto\.ubj: corrupt"):
        artifacts.load_booster("rto", card, tmp_path)
    (tmp_path / "rto.ubj").unlink()
    with pytest.raises(artifacts.ModelFileError, match=r"rto\.ubj: missing"):
        artifacts.load_booster("rto", card, tmp_path)
    (tmp_path / "impact.json").write_text("{not json")
    with pytest.raises(artifacts.ModelFileError, match=r"impact\.json: not a readable model card"):
        artifacts.load_card("impact", tmp_path)
    (tmp_path / "impact.json").write_text('{"name": "rto", "version": "x"}')
    with pytest.raises(artifacts.ModelFileError, match="not the card of model 'impact'"):
        artifacts.load_card("impact", tmp_path)
