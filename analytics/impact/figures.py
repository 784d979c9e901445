"""The figures impact analyses price with: strategy factors, per-framework fines, recovery cost, reputation
weights. Read from analytics/impact/figures.yaml, or the file settings.DRPLAN_IMPACT_FIGURES names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_FILE = Path(__file__).with_name("figures.yaml")
_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def path() -> Path:
    """settings.DRPLAN_IMPACT_FIGURES, else the environment's DRPLAN_IMPACT_FIGURES, else figures.yaml here."""
    chosen = getattr(settings, "DRPLAN_IMPACT_FIGURES", None) or os.environ.get("DRPLAN_IMPACT_FIGURES")
    return Path(chosen) if chosen else DEFAULT_FILE


def load() -> dict[str, Any]:
    """The figures (re-read when the file changes)."""
    file = path()
    try:
        mtime = file.stat().st_mtime
    except OSError as exc:
        raise ImproperlyConfigured(f"impact figures file {file} cannot be read: {exc}") from exc
    cached = _cache.get(str(file))
    if cached and cached[0] == mtime:
        return cached[1]
    data = yaml.safe_load(file.read_text()) or {}
    for key in ("strategies", "frameworks", "recovery", "reputation"):
        if not isinstance(data.get(key), dict):
            raise ImproperlyConfigured(f"impact figures file {file}: '{key}' must be a mapping")
    _cache[str(file)] = (mtime, data)
    return data
