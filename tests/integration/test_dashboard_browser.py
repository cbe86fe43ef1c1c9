"""The ops dashboard in a real browser: sign in, charts drawn from real sends, the dead
letters replayed with the button and the DLQ count dropping; screenshots of each step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.fakes.sendgrid import DEFAULT_API_KEY, FakeSendGrid
from tests.integration.browser import browser, screenshot_dir
from tests.integration.helpers import configure_sendgrid, ok_rpc, wait_final_status
from tests.support import System, Tenant

__all__ = ["browser", "screenshot_dir"]  # fixtures, used by name below

TIMEOUT_MS = 20_000


async def _send(tenant: Tenant, user: str, channel: str) -> str:
    sent = await ok_rpc(
        tenant,
        "manage/send",
        {"userId": user, "channel": channel, "content": {"title": "Hello", "body": "there"}},
    )
    return str((await wait_final_status(tenant, sent["transactionId"]))["result"])


async def _real_traffic(tenant: Tenant, sendgrid: FakeSendGrid) -> None:
    """5 in-app deliveries, 3 e-mails delivered, 2 e-mails refused (dead-lettered)."""
    await configure_sendgrid(tenant, sendgrid.url, DEFAULT_API_KEY)
    await ok_rpc(
        tenant,
        "manage/create-subscriber",
        {"userId": "ada", "subscriberData": {"email": "ada@example.com"}},
    )
    sendgrid.script_error(
        400, "The from address does not match a verified Sender Identity.", times=2
    )
    assert [await _send(tenant, "ada", "EMAIL") for _ in range(2)] == ["FAILED", "FAILED"]
    assert {await _send(tenant, "ada", "EMAIL") for _ in range(3)} == {"DELIVERED"}
    assert {await _send(tenant, "ada", "IN_APP") for _ in range(5)} == {"DELIVERED"}


async def _totals(page: Page, chart: str) -> Any:
    return await page.evaluate(
        "(id) => { const c = window.notifyDashboard.charts[id]; return c ? c.totals : null; }",
        chart,
    )


async def test_dashboard_signs_in_charts_and_replays(
    system: System,
    tenant: Tenant,
    sendgrid: FakeSendGrid,
    browser: Browser,
    screenshot_dir: Path,
) -> None:
    await _real_traffic(tenant, sendgrid)
    page = await browser.new_page(viewport={"width": 1280, "height": 1600})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    await page.goto(f"{system.base_url}/dashboard")
    await expect(page.locator("#signin-panel")).to_be_visible()
    await page.screenshot(path=str(screenshot_dir / "dashboard-1-sign-in.png"))

    await page.fill("#apikey", tenant.api_key)
    await page.click("#signin button[type=submit]")
    await expect(page.locator("#board")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('notify.dashboard.apiKey')") == (
        tenant.api_key
    )
    assert tenant.api_key not in page.url

    # Charts drawn with the sends above: created per minute by channel, results per channel.
    await page.wait_for_function("() => window.notifyDashboard.loads > 0", timeout=TIMEOUT_MS)
    throughput = await _totals(page, "chart-throughput")
    labels = await page.evaluate(
        "() => window.notifyDashboard.charts['chart-throughput'].series.slice(1).map(s => s.label)"
    )
    by_channel = dict(zip(labels, throughput, strict=True))
    assert by_channel["EMAIL"] == 5
    assert by_channel["IN_APP"] == 5
    assert sum(await _totals(page, "chart-results-IN_APP")) == 5
    assert sum(await _totals(page, "chart-results-EMAIL")) == 5
    assert await page.locator("#chart-throughput canvas").count() == 1
    await expect(page.locator("#failures tbody tr")).to_have_count(2)
    await expect(page.locator("#providers tbody tr")).to_have_count(2)
    await expect(page.locator("#dlq-total")).to_have_text("2")
    await page.screenshot(path=str(screenshot_dir / "dashboard-2-charts.png"), full_page=True)

    # Dry run: reports, moves nothing.
    await page.click("#dlq-dryrun")
    await expect(page.locator("#dlq-result")).to_contain_text("Dry run: would replay 2")
    await expect(page.locator("#dlq-total")).to_have_text("2")

    # Replay: the messages leave the DLQ and are delivered (SendGrid accepts them now).
    await page.click("#dlq-replay")
    await expect(page.locator("#dlq-result")).to_contain_text("Replayed 2")
    await expect(page.locator("#dlq-total")).to_have_text("0", timeout=TIMEOUT_MS)
    await page.screenshot(path=str(screenshot_dir / "dashboard-3-replayed.png"), full_page=True)
    replayed = await ok_rpc(tenant, "manage/list-dead-letters", {})
    assert replayed["count"] == 0

    # Signing out forgets the key.
    await page.click("#signout")
    await expect(page.locator("#signin-panel")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('notify.dashboard.apiKey')") is None

    assert errors == []
    assert all(url.startswith(system.base_url) for url in requests), requests
    await page.close()
