"""The drop-in widget in a real headless Chromium: live arrival, unread count, click to read.

Debian's `chromium` driven by Playwright (which cannot download a browser here);
`./scripts/test` installs it when missing. The screenshot's path is printed in the output.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.integration.browser import CHROMIUM, CHROMIUM_FLAGS, ROOT
from tests.integration.helpers import ok_rpc
from tests.integration.inbox_support import ensure_subscriber, send_in_app
from tests.support import System, Tenant, wait_for

SCREENSHOT = ROOT / ".data" / "test-artifacts" / "inbox-widget.png"
USER = "browser-user"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's chromium, headless; the test skips where none is installed."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("no chromium: ./scripts/test installs Debian's package where it can")
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def unread_badge(page: Page) -> str:
    """The bell's count as shown ('' when hidden)."""
    badge = page.locator("[data-role=unread-count]")
    return "" if await badge.is_hidden() else (await badge.inner_text())


@pytest.mark.timeout(90)
async def test_the_demo_page_shows_a_notification_live_and_reads_it(
    system: System, tenant: Tenant, browser: Browser, request: pytest.FixtureRequest
) -> None:
    await ensure_subscriber(tenant, USER)
    page = await browser.new_page(viewport={"width": 900, "height": 700})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{system.base_url}/inbox/demo#key={tenant.api_key}&user={USER}")
    await expect(page.locator(".state")).to_have_text("live", timeout=15_000)
    await expect(page.locator(".empty")).to_be_visible()
    assert await unread_badge(page) == ""

    # Sent through the API while the page is open: it appears, and the count goes up.
    await send_in_app(tenant, USER, title="Coach update", body="Your plan for this week is ready")
    item = page.locator(".item", has_text="Coach update")
    await expect(item).to_be_visible(timeout=15_000)
    await expect(page.locator("[data-role=unread-count]")).to_have_text("1")
    await send_in_app(tenant, USER, title="Workout reminder", body="Leg day at 18:00")
    await expect(page.locator(".item").first).to_contain_text("Workout reminder", timeout=15_000)
    await expect(page.locator("[data-role=unread-count]")).to_have_text("2")
    await expect(item).to_have_attribute("data-status", "UNSEEN")

    os.makedirs(SCREENSHOT.parent, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"inbox widget screenshot: {SCREENSHOT}")

    # Clicking it reads it: the count goes down, in the page and in the API.
    await item.click()
    await expect(page.locator("[data-role=unread-count]")).to_have_text("1")
    await expect(item).to_have_attribute("data-status", "READ")
    headers = tenant.user_headers(USER)

    async def api_unread_is_one() -> bool:
        data = await ok_rpc(tenant, "get-inbox-unseen-count", {}, headers=headers)
        return int(data["unreadCount"]) == 1

    # The page shows READ as soon as it asks; the API's answer may land a moment later.
    await wait_for(api_unread_is_one, what="the API to count 1 unread after the click")

    # A change made elsewhere (another device) reaches the page: mark all as read.
    await ok_rpc(tenant, "mark-all-inbox-messages", {"status": "READ"}, headers=headers)
    await expect(page.locator("[data-role=unread-count]")).to_be_hidden(timeout=15_000)
    await expect(page.locator(".item.unread")).to_have_count(0)

    # Delete from the widget.
    await page.locator(".item", has_text="Workout reminder").locator(".delete").click()
    await expect(page.locator(".item")).to_have_count(1)

    async def only_coach_update_left() -> bool:
        feed = await ok_rpc(tenant, "get-inbox-feed", {}, headers=headers)
        return [m["title"] for m in feed["messages"]] == ["Coach update"]

    await wait_for(only_coach_update_left, what="the delete to reach the API's feed")
    await page.screenshot(path=str(SCREENSHOT.with_name("inbox-widget-after.png")))
    assert errors == []
