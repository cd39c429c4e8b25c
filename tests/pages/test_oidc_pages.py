"""The login and consent pages in Debian's headless Chromium at a phone's viewport, against a
live `ssc serve`: fill the card number and PIN, untick a claim, approve, land on the client's
redirect URI with a code that the token endpoint accepts. Screenshots are kept under
var/screenshots/ and fail the test when blank."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import BrowserContext, Page, Route

from tests.api.oidc_helpers import Live, authorize_url, live, pkce_pair
from tests.browser import assert_rendered

__all__ = ["live"]  # the fixture


async def assert_accessible(page: Page) -> None:
    """No serious or critical axe-core violation (labels, contrast, names of buttons...)."""
    results = await Axe().run(page)
    serious = [
        (item["id"], item["help"])
        for item in results.response["violations"]
        if item.get("impact") in ("serious", "critical")
    ]
    assert serious == [], serious


async def test_log_in_and_approve_on_a_phone(phone: BrowserContext, live: Live) -> None:
    rp = live.demo["relying_party"]
    holder = live.demo["holder"]
    landed: list[str] = []

    async def callback(route: Route) -> None:
        landed.append(route.request.url)
        await route.fulfill(status=200, content_type="text/html", body="<h1>callback</h1>")

    await phone.route(re.compile(r"^http://127\.0\.0\.1:8765/callback.*"), callback)
    verifier, challenge = pkce_pair()
    page = await phone.new_page()
    url = authorize_url(live.base_url, rp["client_id"], rp["redirect_uri"], challenge, state="st")
    await page.goto(url)
    assert await page.locator("h1").inner_text() == "使用社保卡登录"
    assert_rendered("oidc-login", await page.screenshot(full_page=True))
    await assert_accessible(page)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the login page scrolls sideways on a phone"

    await page.fill("input[name=card_number]", holder["card_number"])
    await page.fill("input[name=pin]", "000000")
    await page.click("button[type=submit]")
    assert "不正确" in await page.locator("[role=alert]").inner_text()
    assert_rendered("oidc-login-wrong-pin", await page.screenshot(full_page=True))

    await page.fill("input[name=pin]", holder["pin"])
    await page.click("button[type=submit]")
    await page.wait_for_selector("button[name=decision][value=approve]")
    assert "赣服通" in await page.content()
    assert_rendered("oidc-consent", await page.screenshot(full_page=True))
    await assert_accessible(page)
    await page.uncheck("input[name=scope][value=ssc_card]")
    await page.click("button[name=decision][value=approve]")
    await page.wait_for_url(re.compile(r".*/callback.*"))

    assert len(landed) == 1
    query = {k: v[0] for k, v in parse_qs(urlsplit(landed[0]).query).items()}
    assert query["state"] == "st" and query["code"].startswith("sac_")
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        issued = await http.post(
            "/oidc/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"],
                "redirect_uri": rp["redirect_uri"],
                "code_verifier": verifier,
            },
            auth=(rp["client_id"], rp["client_secret"]),
        )
        assert issued.status_code == 200, issued.text
        assert issued.json()["scope"] == "openid profile"
