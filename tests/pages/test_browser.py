"""The browser the page tests rely on works here, and the blank-page check can fail."""

from __future__ import annotations

from playwright.async_api import BrowserContext

from tests.browser import assert_rendered, blank_reason


async def test_a_drawn_page_passes_and_a_blank_one_is_caught(phone: BrowserContext) -> None:
    page = await phone.new_page()
    await page.set_content("<main style='font-size:32px'><h1>电子社保卡</h1><p>e-card</p></main>")
    assert_rendered("browser-self-check", await page.screenshot(full_page=True))

    await page.set_content("<body style='background:#fff'></body>")
    assert blank_reason(await page.screenshot()) is not None
