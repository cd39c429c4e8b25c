"""The account pages' actions in the browser: a PIN changed through the page (the new PIN
signs in, the old one no longer does), the inbox listed and marked read, a linked channel
app listed and unlinked (its channel session ends)."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import BrowserContext, Page

from tests.pages.conftest import H5Server, activate_in_browser
from tests.pages.holdings import ask_consent, department, linked_channel


async def sign_in_page(page: Page, server: H5Server, card_number: str, pin: str) -> None:
    await page.goto(server.url("/h5/login"))
    await page.fill("#card_number", card_number)
    await page.fill("#pin", pin)
    await page.click("form.form button[type=submit]")
    await page.wait_for_load_state()


async def test_the_pin_is_changed_through_the_page(
    phone: BrowserContext, h5_server: H5Server
) -> None:
    holder = h5_server.new_holder()
    page = await phone.new_page()
    await activate_in_browser(page, h5_server, holder)
    await page.goto(h5_server.url("/h5/pin"))
    await page.fill("#old_pin", holder.pin)
    await page.fill("#new_pin", "730415")
    await page.fill("#new_pin_again", "730415")
    await page.click("form.form button[type=submit]")
    await page.wait_for_url(re.compile(r"/h5/card\?done=pin$"))
    assert "密码已修改" in (await page.text_content(".notice-done") or "")

    await page.goto(h5_server.url("/h5/more"))
    await page.click("form[action='/h5/logout'] button")
    await page.wait_for_url(re.compile(r"/h5/login\?done=out$"))
    await sign_in_page(page, h5_server, holder.card_number, holder.pin)
    assert "密码不正确" in (await page.text_content(".notice-error") or "")
    await sign_in_page(page, h5_server, holder.card_number, "730415")
    await page.wait_for_url(re.compile(r"/h5/card$"))


async def test_the_inbox_is_marked_read_and_a_channel_unlinked(
    phone: BrowserContext, h5_server: H5Server
) -> None:
    holder = h5_server.new_holder()
    channel_session, _ = linked_channel(h5_server, holder)
    await ask_consent(h5_server, holder, await department(h5_server))
    page = await phone.new_page()
    await activate_in_browser(page, h5_server, holder)

    for _ in range(50):  # notifications are written by the audit consumer, a moment later
        await page.goto(h5_server.url("/h5/notifications"))
        if await page.locator(".badge").count():
            break
        await page.wait_for_timeout(100)
    assert await page.locator(".entry.unread").count() >= 1
    await page.click("form[action='/h5/notifications/read'] button")
    await page.wait_for_url(re.compile(r"/h5/notifications$"))
    assert await page.locator(".entry").count() >= 1
    assert await page.locator(".entry.unread").count() == 0

    await page.goto(h5_server.url("/h5/channels"))
    assert "赣服通" in (await page.text_content(".entry") or "")
    await page.click("form[action='/h5/channels/unlink'] button")
    await page.wait_for_url(re.compile(r"/h5/channels\?done=unlinked$"))
    assert await page.locator(".entry").count() == 0
    refused = httpx.post(h5_server.url("/v1/channel/h5-launch"), headers=channel_session)
    assert refused.status_code == 401
