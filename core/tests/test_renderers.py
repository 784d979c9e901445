"""The orjson renderer writes the same JSON document as DRF's renderer, for every type a response holds."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from core.api.renderers import FastJSONRenderer


def test_the_document_is_the_one_drf_writes() -> None:
    data = {
        "points": [(1767650400, 0.0, 7.304347826086956, 16.0, 46), [1767654000, None, 1e-7, 1600, 0]],
        "start": datetime(2026, 12, 2, 13, 0, 0, 123456, tzinfo=UTC),
        "day": date(2026, 12, 2),
        "penalty": Decimal("1250.50"),
        "label": gettext_lazy("Application"),
        "id": UUID("12345678-1234-5678-1234-567812345678"),
        "window": timedelta(minutes=5),
        "text": "RPO > 60 s — São Paulo",
        7: "integer key",
    }
    fast = FastJSONRenderer().render(data)
    assert json.loads(fast) == json.loads(JSONRenderer().render(data))
    assert b'"2026-12-02T13:00:00.123456Z"' in fast  # UTC written with Z, as DRF does


def test_nothing_renders_as_an_empty_body() -> None:
    assert FastJSONRenderer().render(None) == b""
