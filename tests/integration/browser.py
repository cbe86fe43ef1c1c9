"""Browser fixtures: Debian's chromium driven by Playwright (it never downloads a browser).

Import them into a test module (`from tests.integration.browser import browser, …`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.support import env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where the tests leave their screenshots (`NOTIFY_SCREENSHOT_DIR`, else .data/)."""
    path = Path(env("NOTIFY_SCREENSHOT_DIR") or ROOT / ".data" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless chromium; `./scripts/test` installs it from Debian's packages when missing."""
    executable = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if executable is None:
        message = "chromium is not installed (apt-get install chromium)"
        if env("CI"):
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            await browser.close()
