"""The wallet pages in the browser: a licence and its presentation QR (decoded from a
screenshot, accepted once by a traffic police scanner), a vault document shared and the
share revoked, a department's consent request approved with the PIN, a bank account asked
for with the PIN and a payment to it listed."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import BrowserContext

from tests.browser import assert_rendered
from tests.pages.conftest import H5Server, activate_in_browser, decode_qr, shown_token
from tests.pages.holdings import (
    ask_consent,
    confirm_accounts,
    department,
    give_document,
    give_licence,
    oidc_consent,
    open_bank,
    pay_pension,
    phone_session,
    scanner_for,
    verify_as,
)


async def test_a_licence_is_verified_and_its_code_read_once_by_the_police(
    phone: BrowserContext, h5_server: H5Server
) -> None:
    holder = h5_server.new_holder()
    traffic = await department(h5_server)
    licence_id = await give_licence(h5_server, holder, traffic)
    page = await phone.new_page()
    await activate_in_browser(page, h5_server, holder)
    await page.click("a[href='/h5/licences']")
    await page.wait_for_url(re.compile(r"/h5/licences$"))
    assert "驾驶证" in (await page.text_content("main") or "")
    assert await page.locator(".state-ok").count() == 1
    await page.click(f"a[href='/h5/licences/{licence_id}']")
    assert "核验通过" in (await page.text_content(".notice") or "")
    assert holder.document_number in (await page.text_content(".fields") or "")
    await page.click(f"a[href='/h5/licences/{licence_id}/present']")
    await page.wait_for_selector("#qr-code svg")
    token = await shown_token(page)
    assert token is not None
    police = scanner_for(h5_server, "traffic_check", "transport")
    answer = verify_as(h5_server, police, "traffic_check", token)
    assert answer["verdict"] == "valid", answer
    assert answer["holder"]["licence"]["type"] == "driving_licence"
    assert verify_as(h5_server, police, "traffic_check", token)["verdict"] == "replayed"
    assert_rendered("h5-licence-present-decoded", await page.screenshot())


async def test_a_document_is_found_downloaded_shared_and_the_share_revoked(
    phone: BrowserContext, h5_server: H5Server
) -> None:
    holder = h5_server.new_holder()
    document_id = await give_document(h5_server, holder)
    page = await phone.new_page()
    await activate_in_browser(page, h5_server, holder)
    await page.goto(h5_server.url("/h5/documents"))
    await page.select_option("#type", "skill_level_certificate")
    await page.fill("#q", "电工")
    await page.click("form[role=search] button")
    await page.wait_for_url(re.compile(r"/h5/documents\?type=skill_level_certificate"))
    await page.click(f"a[href='/h5/documents/{document_id}']")
    await page.wait_for_url(re.compile(rf"/h5/documents/{document_id}$"))
    async with page.expect_download() as waiting:
        await page.click(f"a[href='/h5/documents/{document_id}/content']")
    downloaded = await (await waiting.value).path()
    assert downloaded is not None and downloaded.read_bytes().startswith(b"%PDF-1.7")

    await page.fill("#purpose", "入职审核")
    await page.select_option("#days", "7")
    await page.check("input[name=one_time]")
    await page.click("form[action$='/shares'] button")
    await page.wait_for_selector(".share-created svg")
    url = await page.text_content("#share-url") or ""
    assert "/v1/shares/shr_" in url and "shr_" not in page.url
    assert decode_qr(await page.screenshot(full_page=True)) == url
    assert await page.locator(".share .share-state").first.text_content() == "有效"
    await page.click("form[action$='/shares/revoke'] button")
    await page.wait_for_url(re.compile(r"\?done=revoked$"))
    assert await page.locator(".share .share-state").first.text_content() == "已撤销"
    path = "/" + url.split("/", 3)[3]
    assert httpx.get(h5_server.url(path)).status_code == 404  # the link stopped working


async def test_a_consent_request_is_approved_with_the_pin_then_revoked(
    phone: BrowserContext, h5_server: H5Server
) -> None:
    holder = h5_server.new_holder()
    traffic = await department(h5_server)
    await give_licence(h5_server, holder, traffic)
    request_id = await ask_consent(h5_server, holder, traffic)
    page = await phone.new_page()
    await activate_in_browser(page, h5_server, holder)
    await page.goto(h5_server.url("/h5/consents"))
    assert "驾驶资格核验" in (await page.text_content(".consent-pending") or "")
    await page.fill(f"#pin-{request_id}", "000000")
    await page.click(f"form[action='/h5/consents/{request_id}/approve'] button")
    assert "密码不正确" in (await page.text_content(".notice-error") or "")
    await page.fill(f"#pin-{request_id}", holder.pin)
    await page.click(f"form[action='/h5/consents/{request_id}/approve'] button")
    await page.wait_for_url(re.compile(r"done=approved$"))
    read = httpx.get(
        h5_server.url(f"/v1/consent-requests/{request_id}/data"), headers=traffic.headers
    )
    assert read.status_code == 200 and read.json()["attributes"]["full_name"] == holder.name
    await page.click(f"form[action='/h5/consents/{request_id}/revoke'] button")
    await page.wait_for_url(re.compile(r"done=revoked$"))
    assert await page.locator(".consent-revoked").count() == 1
    read = httpx.get(
        h5_server.url(f"/v1/consent-requests/{request_id}/data"), headers=traffic.headers
    )
    assert read.status_code == 403


async def test_a_bank_account_is_asked_for_with_the_pin_and_payments_are_listed(
    phone: BrowserContext, h5_server: H5Server
) -> None:
    holder = h5_server.new_holder()
    bank = await open_bank(h5_server)
    page = await phone.new_page()
    await activate_in_browser(page, h5_server, holder)
    await page.goto(h5_server.url("/h5/payments"))
    assert await page.locator(".payment").count() == 0
    await page.click("a[href='/h5/bank']")
    await page.select_option("#bank_code", bank.code)
    await page.fill("#account_number", "6222020200112233445")
    await page.fill("#pin", holder.pin)
    await page.click("form[action='/h5/bank'] button")
    await page.wait_for_url(re.compile(r"/h5/bank\?done=requested$"))
    assert "3445" in (await page.text_content(".bank-pending") or "")
    assert await confirm_accounts(h5_server, bank) >= 1
    await pay_pension(h5_server, holder, 325000)
    await page.goto(h5_server.url("/h5/payments"))
    entry = await page.text_content(".payment") or ""
    assert "养老金" in entry and "3,250.00" in entry and "3445" in entry


async def test_an_app_that_logs_in_with_the_card_is_listed_and_withdrawn(
    phone: BrowserContext, h5_server: H5Server
) -> None:
    holder = h5_server.new_holder()
    page = await phone.new_page()
    await activate_in_browser(page, h5_server, holder)
    client_id = await oidc_consent(h5_server, holder)
    await page.goto(h5_server.url("/h5/consents"))
    assert "赣州市民中心" in (await page.text_content("section:last-of-type .entry") or "")
    assert_rendered("h5-consents-app", await page.screenshot(full_page=True))
    await page.click("form[action='/h5/consents/apps/withdraw'] button")
    await page.wait_for_url(re.compile(r"done=withdrawn$"))
    assert "赣州市民中心" not in (await page.text_content("main") or "")
    consents = httpx.get(
        h5_server.url("/v1/me/consents"), headers=phone_session(h5_server, holder, "check-phone")
    )
    assert consents.status_code == 200 and client_id not in consents.text
