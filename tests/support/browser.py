"""Browser tests: the app served by uvicorn on a free port in a thread, and Debian's Chromium driven by
Playwright (no browser download). Without /usr/bin/chromium a browser test fails in CI (.ci/run installs
it) and is skipped elsewhere."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.conftest import IN_CI

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def need_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail("Debian chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """The app's base URL while the block runs."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator:
    with chromium() as browser:
        yield browser.new_page(viewport={"width": width, "height": height})


def screenshots(tmp_path: Path) -> Path:
    """Where a browser test's screenshots go: JIFEN_SCREENSHOTS (docs/screenshots, to refresh the docs'
    pictures) or the test's own directory."""
    return Path(os.environ.get("JIFEN_SCREENSHOTS") or tmp_path)


def sign_in_page(page, base: str, username: str, password: str) -> None:
    """Sign in through the console's form; the page is on the overview afterwards."""
    page.goto(f"{base}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form.login button")
    page.wait_for_url("**/console")
