"""Browser tests: Debian's chromium driven by Playwright against the real ASGI server (daphne,
HTTP + websockets) serving this test run's database. Screenshots go to artifacts/screenshots/.

Marked `browser`; they skip (with the reason) where chromium or Playwright is missing, and run
once, in the SQLite pass.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from failover.tests.engine_support import subprocess_env

ROOT = Path(settings.BASE_DIR)
ARTIFACTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# A loaded 2-core machine is slow, not broken: every wait is on a state, with room to spare.
SCREENSHOT_TIMEOUT_MS = 60_000
ACTION_TIMEOUT_MS = 45_000  # clicks, fills, waits for selectors (Playwright's default: 30 s)
NAVIGATION_TIMEOUT_MS = 60_000
EXPECT_TIMEOUT_MS = 30_000  # expect(...) assertions (Playwright's default: 5 s)
E2E_WAIT_S = 60  # the tests' own waits for stored state (wait_for, thread joins)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = ""
    if os.environ.get("DATABASE_URL"):
        reason = "browser tests run once, in the SQLite pass"
    elif not Path(CHROMIUM).exists():
        reason = "Debian's chromium is not installed (scripts/ensure_chromium.sh installs it)"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            reason = "Playwright is not installed (requirements-dev.txt)"
    for item in items:
        if "e2e" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


UI_PORT = 3045  # the web UI's default port: scripts/serve.py --ui-port, Makefile UI_PORT
API_PORT = 4045  # the API's port for scripts, which browsers refuse (ERR_UNSAFE_PORT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def start_server(port: int, log_path: Path) -> subprocess.Popen:
    """daphne (HTTP and websockets) on 127.0.0.1:`port`, answering its health probe; the caller stops it."""
    log = log_path.open("wb")
    env = subprocess_env(DRPLAN_ALLOWED_HOSTS="127.0.0.1,localhost")
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "drplan.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # a loaded 2-core machine can take a while to import Django
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v1/dr/health", timeout=2):
                return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                stop_server(proc)
                raise AssertionError(f"daphne did not start: {log_path.read_text()[-2000:]}") from None
            time.sleep(0.1)


def start_ui_server(log_path: Path) -> tuple[subprocess.Popen, str]:
    """daphne on the default UI port (what `make run` serves and people open) when it is free, else on a free
    port (`make run` or another test run holds 3045: the walk still runs, and says where). Returns (process, url)."""
    if not port_taken(UI_PORT):
        try:
            return start_server(UI_PORT, log_path), f"http://127.0.0.1:{UI_PORT}"
        except AssertionError:  # taken in between by someone else: fall back to a free port
            pass
    port = _free_port()
    print(f"[e2e] 127.0.0.1:{UI_PORT} is in use; serving the UI on {port} instead")
    return start_server(port, log_path), f"http://127.0.0.1:{port}"


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def live_url(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """A real daphne server (HTTP and websockets) on a free port, using this test's database."""
    port = _free_port()
    proc = start_server(port, tmp_path / "daphne.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    from playwright.sync_api import expect, sync_playwright

    # Wait on state with room to spare: on a loaded 2-core machine a page, a click's effect or a live event
    # can take many seconds; a check fails only when the state never comes.
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    # Playwright's sync API keeps an event loop running in this thread; the test's own ORM calls
    # are still plain synchronous code, so tell Django not to refuse them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def screenshot(page, name: str) -> Path | None:
    """Save a screenshot for people to look at: an artifact, never an assertion.

    Tests assert on the page's state before calling this. On a loaded 2-core machine chromium can take
    longer than Playwright's 30 s default to produce a full-page capture (it waits for fonts and a stable
    frame): the full page gets SCREENSHOT_TIMEOUT_MS, then the visible part alone gets a shorter try. A
    capture that still does not come (or any other error while taking it) is reported in
    artifacts/screenshots/<name>.txt and the test goes on, since what it checks was already checked."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    errors = []
    for full_page, timeout in ((True, SCREENSHOT_TIMEOUT_MS), (False, SCREENSHOT_TIMEOUT_MS // 4)):
        try:
            page.screenshot(path=str(path), full_page=full_page, animations="disabled", timeout=timeout)
        except Exception as exc:  # an artifact must never fail the test
            errors.append(f"{'full page' if full_page else 'viewport'}: {exc}")
            continue
        (ARTIFACTS / f"{name}.txt").unlink(missing_ok=True)
        return path
    (ARTIFACTS / f"{name}.txt").write_text(f"no screenshot of {page.url}:\n" + "\n".join(errors) + "\n")
    return None


@pytest.fixture(autouse=True)
def _server_verifiable_passwords(request: pytest.FixtureRequest) -> None:
    """The tests hash passwords with MD5 for speed; the live server only knows the production
    hashers, so give the role users a (cheap) PBKDF2 hash it can verify."""
    if "users" not in request.fixturenames:
        return
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from conftest import TEST_PASSWORD

    for user in request.getfixturevalue("users").values():
        user.password = PBKDF2PasswordHasher().encode(TEST_PASSWORD, PBKDF2PasswordHasher().salt(), iterations=1000)
        user.save(update_fields=["password"])


def sign_in(browser, live_url: str, username: str, password: str):
    """A new browser context signed in through the real login form."""
    context = browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{live_url}/admin/login/?next=/dashboard/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_url}/dashboard/")
    return page
