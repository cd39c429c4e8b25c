"""Every mobile page in both modes: axe-core finds no serious or critical violation, and a
screenshot at 390x844 is written under var/screenshots/ (and is not blank)."""

from __future__ import annotations

import re

import httpx
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import BrowserContext, Page

from tests.browser import assert_rendered
from tests.pages.conftest import H5Server, Holder, activate_in_browser, shown_token
from tests.pages.holdings import (
    ask_consent,
    confirm_accounts,
    department,
    give_document,
    give_licence,
    link_family,
    linked_channel,
    oidc_consent,
    open_bank,
    pay_pension,
    phone_session,
)

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
    "/h5/licences",
    "/h5/documents",
    "/h5/consents",
    "/h5/payments",
    "/h5/bank",
]
WITH_QR = re.compile(r"^/h5/(card|family/[0-9a-f-]+|licences/[0-9a-f-]+/present)$")
"""Pages whose live code is awaited before the check (the code is part of the page)."""
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
    name = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "id", name)  # one name a run, not per id
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
    paths = SIGNED_IN + await holdings_of(h5_server, holder)
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
        for path in paths:
            await page.goto(h5_server.url(path))
            await set_mode(page, care)
            if WITH_QR.match(path):
                await page.wait_for_selector("#qr-code svg")
            await check(page, path, mode)
    await page.goto(h5_server.url("/h5/access-log"))
    assert await page.locator(".entry").count() >= 1, "the scan is in the holder's access log"
    walked = ("/h5/licences", "/h5/documents", "/h5/consents", "/h5/payments", "/h5/family")
    for path in (*walked, "/h5/channels"):
        await page.goto(h5_server.url(path))
        assert await page.locator(".entry").count() >= 1, f"{path} was walked with an entry"


async def holdings_of(server: H5Server, holder: Holder) -> list[str]:
    """Gives the holder one of everything the pages list (a licence, a document, a consent
    request, an app logged in to with the card, a paid pension on a confirmed account, a ward,
    a linked channel app) so that the walk sees the lists and the detail pages filled; the
    detail pages' paths."""
    traffic = await department(server)
    licence_id = await give_licence(server, holder, traffic)
    await ask_consent(server, holder, traffic)
    document_id = await give_document(server, holder)
    bank = await open_bank(server)
    bound = httpx.put(
        server.url("/v1/me/bank-account"),
        json={"bank_code": bank.code, "account_number": "6222020200112233445", "pin": holder.pin},
        headers=phone_session(server, holder, "walk-phone"),
    )
    assert bound.status_code == 202, bound.text
    await confirm_accounts(server, bank)
    await pay_pension(server, holder)
    link_id = link_family(server, holder, server.new_holder())
    await oidc_consent(server, holder)
    linked_channel(server, holder)
    return [
        f"/h5/licences/{licence_id}",
        f"/h5/licences/{licence_id}/present",
        f"/h5/documents/{document_id}",
        f"/h5/family/{link_id}",
    ]
