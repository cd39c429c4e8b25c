"""A channel app opens the pages with a launch ticket: no PIN to enter inside the channel,
but the PIN before the first QR of the day; the ticket works once; unlinking the channel ends
the page session. And a guardian shows a ward's code (the family service)."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import BrowserContext

from tests.browser import assert_rendered
from tests.pages.conftest import (
    H5Server,
    Holder,
    activate_in_browser,
    csrf_of,
    shown_token,
    sign_in,
)
from tests.pages.holdings import linked_channel


async def test_a_channel_launches_the_card_and_the_pin_guards_the_first_qr(
    phone: BrowserContext, h5_server: H5Server
) -> None:
    holder = h5_server.new_holder()
    channel_session, app = linked_channel(h5_server, holder)
    ticket = httpx.post(h5_server.url("/v1/channel/h5-launch"), headers=channel_session)
    assert ticket.status_code == 201, ticket.text
    url = ticket.json()["url"]
    assert url == h5_server.url(f"/h5/launch?ticket={ticket.json()['ticket']}")

    page = await phone.new_page()
    await page.goto(url)
    await page.wait_for_url(re.compile(r"/h5/card$"))  # the ticket left the address bar
    assert await page.locator("#qr").count() == 0  # no PIN yet today: no code
    assert await shown_token(page) is None
    await page.fill("#pin", "730415")
    await page.click("form.form button[type=submit]")
    assert await page.locator(".notice-error").is_visible()
    await page.fill("#pin", holder.pin)
    await page.click("form.form button[type=submit]")
    await page.wait_for_selector("#qr-code svg")
    token = await shown_token(page)
    assert token is not None and h5_server.verify(token) == "valid"

    # The ticket opens one session only, in any browser.
    other = await phone.browser.new_context()  # type: ignore[union-attr]
    try:
        again = await other.new_page()
        answer = await again.goto(url)
        assert answer is not None and answer.status == 401
        assert await again.locator(".notice-error").is_visible()
    finally:
        await other.close()

    # The province suspends the channel: the page session ends; reinstated, it launches again.
    channel_id = httpx.get(h5_server.url("/v1/me/channels"), headers=app).json()[0]["channel_id"]
    admin = f"/v1/admin/channels/{channel_id}"
    suspended = httpx.post(h5_server.url(f"{admin}/suspend"), headers=h5_server.admin)
    assert suspended.status_code == 200, suspended.text
    await page.goto(h5_server.url("/h5/card"))
    await page.wait_for_url(re.compile(r"/h5/login$"))
    assert httpx.post(h5_server.url(f"{admin}/reinstate"), headers=h5_server.admin).is_success
    relaunch = httpx.post(h5_server.url("/v1/channel/h5-launch"), headers=channel_session)
    await page.goto(relaunch.json()["url"])
    await page.wait_for_url(re.compile(r"/h5/card$"))

    # The holder unlinks the channel in the phone app: the page session ends with it.
    unlinked = httpx.delete(h5_server.url(f"/v1/me/channels/{channel_id}"), headers=app)
    assert unlinked.status_code == 204
    await page.goto(h5_server.url("/h5/card"))
    await page.wait_for_url(re.compile(r"/h5/login$"))
    refused = httpx.post(h5_server.url("/v1/channel/h5-launch"), headers=channel_session)
    assert refused.status_code == 401


def phone_session(server: H5Server, holder: Holder, device: str) -> dict[str, str]:
    answer = httpx.post(
        server.url("/v1/ecard/activate"),
        json={
            "card_number": holder.card_number,
            "document_number": holder.document_number,
            "device_id": device,
            "pin": holder.pin,
        },
    )
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def test_a_guardian_shows_a_wards_code(phone: BrowserContext, h5_server: H5Server) -> None:
    guardian, ward = h5_server.new_holder(), h5_server.new_holder()
    page = await phone.new_page()
    await activate_in_browser(page, h5_server, guardian)
    invited = httpx.post(
        h5_server.url("/v1/me/family/invitations"),
        json={"ward_card_number": ward.card_number, "scopes": ["show_qr"]},
        headers=phone_session(h5_server, guardian, "guardian-phone"),
    )
    assert invited.status_code == 201, invited.text
    link_id = invited.json()["id"]
    accepted = httpx.post(
        h5_server.url(f"/v1/me/family/invitations/{link_id}/accept"),
        json={"pin": ward.pin},
        headers=phone_session(h5_server, ward, "ward-phone"),
    )
    assert accepted.status_code == 200, accepted.text

    await page.goto(h5_server.url("/h5/family"))
    await page.click(f"a[href='/h5/family/{link_id}']")
    await page.wait_for_selector("#qr-code svg")
    assert ward.card_number[-4:] in (await page.text_content("h2") or "")
    token = await shown_token(page)
    assert token is not None and h5_server.verify(token) == "valid"
    assert_rendered("h5-family-ward-qr", await page.screenshot())

    # Another holder's session: neither the ward's page nor its code.
    with httpx.Client(base_url=h5_server.base_url) as stranger:
        sign_in(stranger, h5_server.new_holder())
        shown = stranger.get(f"/h5/family/{link_id}")
        assert (shown.status_code, shown.headers["location"]) == (303, "/h5/family")
        token_field = csrf_of(stranger.get("/h5/family").text)
        code = stranger.get(f"/h5/family/{link_id}/qr", headers={"x-csrf-token": token_field})
        assert code.status_code == 403 and "token" not in code.json()
