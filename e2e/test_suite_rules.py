"""Rules that keep the browser suite robust on a loaded machine, checked on its source (no browser needed):
screenshots only through the best-effort helper (a capture never fails a test), and no sleeping for a
fixed time (wait on a state instead)."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(HERE.glob("*.py")) if p.name != Path(__file__).name}


def test_every_screenshot_goes_through_the_best_effort_helper() -> None:
    direct = {
        name: [line.strip() for line in text.splitlines() if re.search(r"\.screenshot\(", line)]
        for name, text in _sources().items()
    }
    # conftest.screenshot() is the one place that calls Playwright's page.screenshot, inside try/except.
    assert {name: lines for name, lines in direct.items() if lines} == {
        "conftest.py": ['page.screenshot(path=str(path), full_page=full_page, animations="disabled", timeout=timeout)']
    }


def test_no_fixed_sleeps_in_browser_tests() -> None:
    sleepy = {
        name: [line.strip() for line in text.splitlines() if "wait_for_timeout(" in line or "time.sleep(" in line]
        for name, text in _sources().items()
        if name != "conftest.py"  # the server start-up poll sleeps between health probes
    }
    assert {name: lines for name, lines in sleepy.items() if lines} == {}
