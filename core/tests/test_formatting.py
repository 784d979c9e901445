"""core/formatting.py and its template filters: durations, local times with the zone, money in the
configured currency; the console's JavaScript twin of duration() gives the same text."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.utils import timezone

from core import formatting

DURATIONS = [
    (None, False, "—"),
    (0, False, "0 s"),
    (12, False, "12 s"),
    (59.6, False, "1 min"),
    (900, False, "15 min"),
    (245, False, "4 min 05 s"),
    (3600, False, "1 h"),
    (3720, False, "1 h 02 min"),
    (3723, False, "1 h 02 min"),
    (86400, False, "24 h"),
    (172800, False, "48 h"),
    (259200, False, "3 d"),
    (273600, False, "3 d 4 h"),
    (-90, False, "−1 min 30 s"),
    (3723, True, "1 h 02 min 03 s"),
    (245, True, "4 min 05 s"),
    (7200, True, "2 h 00 min 00 s"),
    (12.4, True, "12 s"),
]


@pytest.mark.parametrize(("seconds", "precise", "text"), DURATIONS)
def test_duration(seconds, precise, text) -> None:
    assert formatting.duration(seconds, precise=precise) == text


def test_duration_of_rubbish_is_a_dash_not_an_error() -> None:
    assert formatting.duration("soon") == "—"
    assert formatting.duration(Decimal("90.5")) == "1 min 31 s"


MOMENT = datetime(2026, 12, 2, 8, 15, 30, tzinfo=UTC)


def test_local_time_in_the_configured_zone_with_its_name() -> None:
    assert formatting.local_time(MOMENT) == "2026-12-02 08:15 UTC"
    assert formatting.local_time(MOMENT, seconds=True) == "2026-12-02 08:15:30 UTC"
    assert formatting.local_time(MOMENT.isoformat(), seconds=True, date=False) == "08:15:30 UTC"
    with override_settings(TIME_ZONE="Europe/Berlin"), timezone.override("Europe/Berlin"):
        assert formatting.local_time(MOMENT) == "2026-12-02 09:15 CET"
    assert formatting.local_time(None) == "—"
    assert formatting.local_time("not a time") == "—"


def test_money_in_the_configured_currency() -> None:
    assert formatting.money(Decimal("12500")) == "$12,500.00"
    assert formatting.money("1234.5") == "$1,234.50"
    with override_settings(DRPLAN_CURRENCY="EUR"):
        assert formatting.money(Decimal("0")) == "€0.00"
    with override_settings(DRPLAN_CURRENCY="CHF"):
        assert formatting.money(Decimal("1200.5")) == "1,200.50 CHF"
    assert formatting.money(None) == "—"
    assert formatting.money("lots") == "—"


def test_template_filters() -> None:
    template = Template(
        "{% load drformat %}{{ rto|duration }}|{{ clock|duration_precise }}|{{ at|localtime_tz }}|"
        "{{ at|time_tz }}|{{ cost|money }}|{{ at|when }}"
    )
    text = template.render(Context({"rto": 86400, "clock": 3723, "at": MOMENT, "cost": Decimal("99.9")}))
    assert text == (
        '24 h|1 h 02 min 03 s|2026-12-02 08:15 UTC|08:15:30 UTC|$99.90|<time datetime="2026-12-02T08:15:30+00:00">'
        "2026-12-02 08:15 UTC</time>"
    )


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_console_script_formats_durations_like_the_server() -> None:
    """console.js durationText(seconds) is the precise form (a running clock); it must read the same."""
    source = (Path(__file__).resolve().parents[2] / "failover/static/failover/console.js").read_text()
    start = source.index("  function durationText(")
    end = source.index("\n  }\n", start) + 4
    cases = [s for s, precise, _ in DURATIONS if precise or (s is not None and s >= 0)]
    script = source[start:end] + "\nconsole.log(JSON.stringify(JSON.parse(process.argv[1]).map(durationText)));"
    result = subprocess.run(
        ["node", "-e", script, json.dumps(cases)], capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(result.stdout) == [formatting.duration(s, precise=True) for s in cases]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_builder_script_formats_durations_like_the_server() -> None:
    """critical_path.js humanDuration(seconds) (the builder's totals and estimates) is duration()'s twin."""
    script_path = Path(__file__).resolve().parents[2] / "runbooks/static/runbooks/critical_path.js"
    cases = [s for s, precise, _ in DURATIONS if not precise and s is not None]
    script = (
        f"const CP = require({json.dumps(str(script_path))});"
        "console.log(JSON.stringify(JSON.parse(process.argv[1]).map(CP.humanDuration)));"
    )
    result = subprocess.run(
        ["node", "-e", script, json.dumps(cases)], capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(result.stdout) == [formatting.duration(s) for s in cases]
