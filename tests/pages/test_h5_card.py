"""The e-card page in a real browser (Debian's Chromium at a phone's size): sign in, the live
QR read by a scanner from a screenshot, its refresh, loss report, elder mode."""

from __future__ import annotations

import asyncio
import re
import time

from playwright.async_api import BrowserContext, Page

from tests.browser import assert_rendered
from tests.pages.conftest import QR_REFRESH_AFTER, H5Server, activate_in_browser, shown_token


async def wait_for_token(page: Page, *, other_than: str | None = None, within: float) -> str:
    """The token the page shows once it differs from `other_than`, read from screenshots."""
    deadline = time.monotonic() + within
    while True:
        token = await shown_token(page)
        if token is not None and token != other_than:
            return token
        assert time.monotonic() < deadline, f"no new code within {within} s (saw {token!r})"
        await asyncio.sleep(0.25)


async def qr_width(page: Page) -> float:
    box = await page.locator("#qr-code svg").bounding_box()
    assert box is not None
    return box["width"]


async def test_sign_in_scan_refresh_and_report_loss(
    phone: BrowserContext, h5_server: H5Server
) -> None:
    holder = h5_server.new_holder()
    page = await phone.new_page()
    await activate_in_browser(page, h5_server, holder)
    await page.wait_for_selector("#qr-code svg")

    first = await wait_for_token(page, within=5)
    assert first.startswith("SSC1:")
    assert_rendered("h5-card-qr", await page.screenshot())
    countdown = await page.text_content("#qr-countdown")
    assert countdown is not None and re.search(r"\d+", countdown)

    # The page fetches a new code by itself before `refresh_after` has passed (plus the
    # time of a screenshot and a decode), without a reload.
    started = time.monotonic()
    second = await wait_for_token(page, other_than=first, within=QR_REFRESH_AFTER + 2)
    assert time.monotonic() - started <= QR_REFRESH_AFTER + 2
    assert h5_server.verify(second) == "valid"
    assert h5_server.verify(first) == "valid"  # the old code still passes until it expires

    # Offline: no code on the screen; back online: a fresh one.
    await phone.set_offline(True)
    await page.wait_for_selector("#qr-offline", state="visible")
    assert await shown_token(page) is None
    await phone.set_offline(False)
    third = await wait_for_token(page, other_than=second, within=5)

    # In the background the code is hidden; on return a fresh one is shown.
    await page.evaluate(
        "Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    await page.wait_for_selector("#qr-hidden", state="visible")
    assert await page.locator("#qr-code svg").count() == 0
    await page.evaluate(
        "Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    fourth = await wait_for_token(page, other_than=third, within=5)

    # Report the card lost: the page shows no code, and the code last shown is refused.
    await page.click("a[href='/h5/card/report-loss']")
    await page.click("form.form button[type=submit]")
    await page.wait_for_url(re.compile(r"/h5/card\?done=lost$"))
    assert await page.locator("#qr").count() == 0
    assert await page.locator("#qr-none").is_visible()
    assert await shown_token(page) is None
    assert h5_server.verify(fourth) == "card_lost"
    assert_rendered("h5-card-lost", await page.screenshot())

    # Found again: the loss report is cancelled with the PIN and a code comes back.
    await page.click("a[href='/h5/card/cancel-loss']")
    await page.fill("#pin", holder.pin)
    await page.click("form.form button[type=submit]")
    await page.wait_for_url(re.compile(r"/h5/card\?done=found$"))
    assert h5_server.verify(await wait_for_token(page, within=5)) == "valid"


async def test_elder_mode_grows_the_code_and_is_remembered(
    phone: BrowserContext, h5_server: H5Server
) -> None:
    holder = h5_server.new_holder()
    page = await phone.new_page()
    await activate_in_browser(page, h5_server, holder)
    await page.wait_for_selector("#qr-code svg")
    standard = await qr_width(page)
    standard_type = await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")

    await page.click(".care-switch button")
    await page.wait_for_url(re.compile(r"/h5/card$"))
    await page.reload()
    assert await page.get_attribute("html", "class") == "care"
    await page.wait_for_selector("#qr-code svg")
    assert await qr_width(page) >= 1.25 * standard
    care_type = await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert care_type >= 1.5 * standard_type
    assert h5_server.verify(await wait_for_token(page, within=5)) == "valid"
    assert_rendered("h5-care-card-qr", await page.screenshot())

    await page.click(".care-switch button")
    await page.wait_for_url(re.compile(r"/h5/card$"))
    assert await page.get_attribute("html", "class") == "standard"


async def test_no_unregistered_site_frames_the_pages_and_motion_can_be_reduced(
    phone: BrowserContext, h5_server: H5Server
) -> None:
    page = await phone.new_page()
    await page.set_content(f"<iframe src='{h5_server.url('/h5/login')}'></iframe>")
    frame = page.frames[-1]
    await frame.wait_for_load_state()
    assert await frame.locator("#card_number").count() == 0  # refused: frame-ancestors 'none'

    holder = h5_server.new_holder()
    await activate_in_browser(page, h5_server, holder)
    await page.wait_for_selector("#qr-code svg")
    animation = "getComputedStyle(document.getElementById('qr-code')).animationName"
    assert await page.evaluate(animation) == "appear"
    await page.emulate_media(reduced_motion="reduce")
    assert await page.evaluate(animation) == "none"
