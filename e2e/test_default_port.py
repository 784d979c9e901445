"""The web UI's default port is one browsers open: chromium, launched without any allow-port flag, signs in
and reaches the pages on 127.0.0.1:3045 (what `make run` serves and the README names). The API's port,
4045, is on the browsers' list of unsafe ports, which is why people are sent to 3045."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TEST_PASSWORD
from e2e.conftest import API_PORT, CHROMIUM_ARGS, UI_PORT, port_taken, screenshot, sign_in, start_server, stop_server
from e2e.test_console import _approved_execution


def test_no_flag_lets_chromium_open_the_ui_port() -> None:
    """A flag that allows unsafe ports would hide the bug this file guards against."""
    assert not any("explicitly-allowed-ports" in arg for arg in CHROMIUM_ARGS)


@pytest.mark.django_db(transaction=True)
def test_chromium_opens_the_default_ui_port(browser, users, tmp_path: Path) -> None:
    if port_taken(UI_PORT):
        pytest.skip(f"127.0.0.1:{UI_PORT} is in use (is `make run` running?); the default port cannot be tested")
    server = start_server(UI_PORT, tmp_path / "daphne.log")
    try:
        url = f"http://127.0.0.1:{UI_PORT}"
        page = sign_in(browser, url, "viewer", TEST_PASSWORD)
        assert page.url == f"{url}/dashboard/"
        assert page.locator("h1").first.inner_text() == "Dashboard"
        screenshot(page, "default-port-dashboard")

        # The console's websocket connects from this port too (its Origin is checked against ALLOWED_HOSTS).
        execution = _approved_execution(users["operator"])
        page.goto(f"{url}/console/executions/{execution.pk}/")
        page.wait_for_function("document.getElementById('connection-status').textContent === 'live'")

        # Why not 4045: chromium refuses it before sending anything (no server is needed to see that).
        from playwright.sync_api import Error as PlaywrightError

        with pytest.raises(PlaywrightError, match="ERR_UNSAFE_PORT"):
            page.goto(f"http://127.0.0.1:{API_PORT}/")
    finally:
        stop_server(server)
