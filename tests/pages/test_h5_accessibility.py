"""Every mobile page in both modes: axe-core finds no serious or critical violation, and a
screenshot at 390x844 is written under var/screenshots/ (and is not blank)."""

from __future__ import annotations

import re

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import BrowserContext, Page

from tests.browser import assert_rendered
from tests.pages.conftest import H5Server, activate_in_browser, shown_token

SIGNED_OUT = ["/h5/login", "/h5/activate"]
SIGNED_IN = [
    "/h5/card",
    "/h5/card/report-loss",
    "/h5/card/cancel-loss",
    "/h5/pin",
    "/h5/access-log",
    "/h5/complaints",
    "/h5/more",
    "/h5/notifications",
    "/h5/channels",
    "/h5/family",
]
axe = Axe()


async def check(page: Page, path: str, mode: str) -> None:
    results = await axe.run(page)
    grave = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"])
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert not grave, f"{path} in {mode} mode: {grave}"
    name = "h5" + (path.removeprefix("/h5").replace("/", "-") or "-home") + f"-{mode}"
    assert_rendered(name, await page.screenshot())


async def set_mode(page: Page, care: bool) -> None:
    if (await page.get_attribute("html", "class") == "care") != care:
        await page.click(".care-switch button")
        await page.wait_for_load_state()


async def test_every_page_in_both_modes(phone: BrowserContext, h5_server: H5Server) -> None:
    page = await phone.new_page()
    for care, mode in ((False, "standard"), (True, "care")):
        for path in SIGNED_OUT:
            await page.goto(h5_server.url(path))
            await set_mode(page, care)
            await check(page, path, mode)
    await set_mode(page, False)

    holder = h5_server.new_holder()
    await activate_in_browser(page, h5_server, holder)
    await page.wait_for_selector("#qr-code svg")
    token = await shown_token(page)
    assert token is not None and h5_server.verify(token) == "valid"  # an access-log entry
    await page.goto(h5_server.url("/h5/complaints"))
    await page.select_option("#kind", "venue_refused_ecard")
    await page.fill("#details", "医院窗口不接受电子社保卡。")
    await page.click("form.form button[type=submit]")
    await page.wait_for_selector(".notice-done")
    assert re.search(r"[0-9A-Za-z]{8,}", await page.text_content(".notice-done") or "")

    for care, mode in ((False, "standard"), (True, "care")):
        for path in SIGNED_IN:
            await page.goto(h5_server.url(path))
            await set_mode(page, care)
            if path == "/h5/card":
                await page.wait_for_selector("#qr-code svg")
            await check(page, path, mode)
    await page.goto(h5_server.url("/h5/access-log"))
    assert await page.locator(".entry").count() >= 1, "the scan is in the holder's access log"
