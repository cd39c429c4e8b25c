"""The pages pass the API's checks: no page without a session, one holder's session never
reaches another's card, no form without its CSRF token, a strict CSP on every page, cookies
that scripts cannot read, nothing personal in a URL. Plain HTTP against the live server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.pages.conftest import H5Server, Holder, csrf_of, sign_in
from tests.pages.holdings import ask_consent, department, give_document, give_licence

PAGES = [
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
NOBODY = "00000000-0000-4000-8000-000000000000"
"""An id nobody has: the forms with an id in their path are refused before it is looked up."""
FORMS = {
    "/h5/card/report-loss": {},
    "/h5/card/cancel-loss": {"pin": "284617"},
    "/h5/pin": {"old_pin": "284617", "new_pin": "730415", "new_pin_again": "730415"},
    "/h5/complaints": {"kind": "other", "details": "test"},
    "/h5/qr/unlock": {"pin": "284617"},
    "/h5/notifications/read": {},
    "/h5/channels/unlink": {"channel_id": "chn_none"},
    f"/h5/documents/{NOBODY}/shares": {"purpose": "test", "days": "1"},
    f"/h5/documents/{NOBODY}/shares/revoke": {"share_id": NOBODY},
    f"/h5/consents/{NOBODY}/approve": {"pin": "284617"},
    f"/h5/consents/{NOBODY}/decline": {},
    f"/h5/consents/{NOBODY}/revoke": {},
    "/h5/consents/apps/withdraw": {"client_id": "rp_none"},
    "/h5/bank": {"bank_code": "ICBC", "account_number": "6222020200112233445", "pin": "284617"},
    "/h5/logout": {},
}
DETAILS = [
    f"/h5/licences/{NOBODY}",
    f"/h5/licences/{NOBODY}/present",
    f"/h5/documents/{NOBODY}",
    f"/h5/documents/{NOBODY}/content",
]
PUBLIC = ["/h5/login", "/h5/activate"]


@contextmanager
def browser(server: H5Server, **headers: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=headers) as http:
        yield http


def card_status(http: httpx.Client) -> str:
    page = http.get("/h5/card")
    assert page.status_code == 200
    found = re.search(r'class="status status-(\w+)"', page.text)
    assert found
    return found.group(1)


@pytest.fixture(scope="module")
def two_holders(h5_server: H5Server) -> Iterator[tuple[httpx.Client, Holder, httpx.Client, Holder]]:
    alice, bob = h5_server.new_holder(), h5_server.new_holder()
    with browser(h5_server) as a, browser(h5_server) as b:
        sign_in(a, alice)
        sign_in(b, bob)
        yield a, alice, b, bob


def test_no_page_without_a_session(h5_server: H5Server) -> None:
    with browser(h5_server) as http:
        for path in PAGES + DETAILS:
            answer = http.get(path)
            assert (answer.status_code, answer.headers["location"]) == (303, "/h5/login"), path
        for path in ("/h5/qr", f"/h5/licences/{NOBODY}/qr"):
            qr = http.get(path, headers={"x-csrf-token": "0" * 64})
            assert (qr.status_code, qr.json()) == (401, {"state": "signed_out"}), path
        token = csrf_of(http.get("/h5/login").text)
        for path, fields in FORMS.items():
            answer = http.post(path, data={"csrf": token, **fields})
            assert (answer.status_code, answer.headers["location"]) == (303, "/h5/login"), path


def test_another_holders_session_reaches_only_its_own_card(
    two_holders: tuple[httpx.Client, Holder, httpx.Client, Holder],
) -> None:
    a, alice, b, bob = two_holders
    assert alice.card_number[-4:] in a.get("/h5/card").text
    bob_page = b.get("/h5/card").text
    assert bob.card_number[-4:] in bob_page and alice.card_number[-4:] not in bob_page
    alice_token = csrf_of(a.get("/h5/card").text)

    # Bob's session with Alice's token: refused, for every form, and nothing changes.
    for path, fields in FORMS.items():
        answer = b.post(path, data={"csrf": alice_token, **fields})
        assert answer.status_code == 403, path
    assert b.get("/h5/qr", headers={"x-csrf-token": alice_token}).status_code == 403
    assert card_status(a) == card_status(b) == "active"

    # Bob's own loss report changes Bob's card only.
    answer = b.post("/h5/card/report-loss", data={"csrf": csrf_of(b.get("/h5/card").text)})
    assert answer.headers["location"] == "/h5/card?done=lost"
    assert (card_status(a), card_status(b)) == ("active", "lost")
    qr = b.get("/h5/qr", headers={"x-csrf-token": csrf_of(b.get("/h5/card").text)})
    assert (qr.status_code, qr.json()) == (409, {"state": "card_lost"})


def test_forms_and_fetches_without_the_token_are_refused(
    h5_server: H5Server, two_holders: tuple[httpx.Client, Holder, httpx.Client, Holder]
) -> None:
    a, *_ = two_holders
    for path, fields in FORMS.items():
        for token in (None, "", "0" * 64):
            data = fields if token is None else {"csrf": token, **fields}
            answer = a.post(path, data=data)
            assert answer.status_code == 403, (path, token)
            assert "页面已过期" in answer.text
    assert a.get("/h5/qr").status_code == 403
    assert card_status(a) == "active"
    with browser(h5_server) as stranger:
        stranger.get("/h5/login")
        for path in ("/h5/login", "/h5/activate", "/h5/care"):
            assert stranger.post(path, data={"care": "1"}).status_code == 403, path
    qr = a.get("/h5/qr", headers={"x-csrf-token": csrf_of(a.get("/h5/card").text)})
    assert qr.status_code == 200 and qr.json()["state"] == "ok"
    assert qr.headers["cache-control"] == "no-store"


def test_every_page_has_a_strict_policy_and_private_cookies(
    h5_server: H5Server, two_holders: tuple[httpx.Client, Holder, httpx.Client, Holder]
) -> None:
    a, *_ = two_holders
    with browser(h5_server) as fresh:
        answers = [(path, a.get(path)) for path in PAGES]
        answers += [(path, fresh.get(path)) for path in PUBLIC]
    for path, answer in answers:
        assert answer.status_code == 200, path
        policies = answer.headers.get_list("content-security-policy")
        assert policies == [
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        ], path
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        html = answer.text
        assert not re.search(r"<script(?![^>]*\ssrc=)", html), f"inline script on {path}"
        assert not re.search(r"\sstyle=|\son[a-z]+=", html), f"inline style or handler on {path}"
        assert not re.search(r"(src|href)=\"(https?:)?//", html), f"another origin on {path}"

    with browser(h5_server) as fresh:
        first = fresh.get("/h5/login")
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/h5" in cookie
        assert "Secure" not in cookie  # plain HTTP on a loopback address, outside production
    # Any other host name: the cookies are Secure.
    remote = httpx.get(h5_server.url("/h5/login"), headers={"host": "ecard.example"})
    assert "Secure" in remote.headers["set-cookie"]


def test_no_personal_data_in_urls_and_sign_out_ends_the_session(h5_server: H5Server) -> None:
    holder = h5_server.new_holder()
    with browser(h5_server) as http:
        seen: list[str] = []
        http.event_hooks["response"] = [lambda response: seen.append(str(response.url))]
        sign_in(http, holder)
        old_session = http.cookies.get("ssc_h5_session")
        out = http.post("/h5/logout", data={"csrf": csrf_of(http.get("/h5/card").text)})
        assert out.headers["location"] == "/h5/login?done=out"
        assert http.get("/h5/card").headers["location"] == "/h5/login"
        # This browser stays bound to the card: card number and PIN sign in again.
        again = http.post(
            "/h5/login",
            data={
                "csrf": csrf_of(http.get("/h5/login").text),
                "card_number": holder.card_number,
                "pin": holder.pin,
            },
        )
        assert again.headers["location"] == "/h5/card"
        assert http.get("/h5/card").status_code == 200
        for url in seen:
            assert holder.card_number not in url and holder.document_number not in url
    with browser(h5_server) as replay:
        replay.cookies.set("ssc_h5_session", str(old_session), path="/h5")
        assert replay.get("/h5/card").headers["location"] == "/h5/login"


def test_another_browser_must_activate_and_english_is_served(h5_server: H5Server) -> None:
    holder = h5_server.new_holder()
    with browser(h5_server) as first:
        sign_in(first, holder)
    with browser(h5_server, **{"accept-language": "en-GB,en;q=0.9,zh;q=0.5"}) as other:
        page = other.get("/h5/login")
        assert "Sign in to your e-card" in page.text and 'lang="en"' in page.text
        answer = other.post(
            "/h5/login",
            data={"csrf": csrf_of(page.text), "card_number": holder.card_number, "pin": holder.pin},
        )
        assert answer.status_code == 403  # right PIN, but this browser is not bound
        assert "not activated on this phone" in answer.text
        wrong = other.post(
            "/h5/activate",
            data={
                "csrf": csrf_of(page.text),
                "card_number": holder.card_number,
                "document_number": holder.document_number,
                "pin": "730415",
            },
        )
        assert wrong.status_code == 401
        assert "ID document number or PIN is not correct" in wrong.text


def test_only_registered_channel_origins_may_frame_the_pages(h5_server: H5Server) -> None:
    with httpx.Client(base_url=h5_server.base_url, headers=h5_server.admin) as admin:
        created = admin.post("/v1/admin/channels", json={"name": "银行", "channel_type": "bank"})
        channel = created.json()["client_id"]
        path = f"/v1/admin/channels/{channel}/h5-origins"
        for bad in ("http://app.bank.example", "https://*.bank.example", "https://a.example/x"):
            assert admin.put(path, json={"origins": [bad]}).status_code == 422, bad
        assert (
            admin.put("/v1/admin/channels/nope/h5-origins", json={"origins": []}).status_code == 404
        )
        try:
            stored = admin.put(path, json={"origins": ["https://App.Bank.example:8443/"]})
            assert stored.json() == {
                "channel_id": channel,
                "origins": ["https://app.bank.example:8443"],
            }
            assert admin.get(path).json()["origins"] == ["https://app.bank.example:8443"]
            policy = httpx.get(h5_server.url("/h5/login")).headers["content-security-policy"]
            assert policy.endswith("; frame-ancestors https://app.bank.example:8443")
        finally:
            admin.put(path, json={"origins": []})
        policy = httpx.get(h5_server.url("/h5/login")).headers["content-security-policy"]
        assert policy.endswith("; frame-ancestors 'none'")


async def test_another_holders_session_reaches_none_of_this_holders_wallet(
    h5_server: H5Server,
) -> None:
    """Bob, signed in with his own session and his own CSRF token, asks for Alice's licence,
    her licence's code, her document, its file and its share, and acts on her consent
    request: he is sent back to his own lists, gets no code, and nothing of hers changes."""
    alice, bob = h5_server.new_holder(), h5_server.new_holder()
    traffic = await department(h5_server)
    licence_id = await give_licence(h5_server, alice, traffic)
    request_id = await ask_consent(h5_server, alice, traffic)
    document_id = await give_document(h5_server, alice)
    with browser(h5_server) as a, browser(h5_server) as b:
        sign_in(a, alice)
        sign_in(b, bob)
        shared = a.post(
            f"/h5/documents/{document_id}/shares",
            data={"csrf": csrf_of(a.get("/h5/documents").text), "purpose": "核验", "days": "1"},
        )
        assert shared.status_code == 201, shared.text
        share_id = re.search(r'name="share_id" value="([0-9a-f-]{36})"', shared.text)
        assert share_id is not None
        token = csrf_of(b.get("/h5/card").text)

        for path, back in (
            (f"/h5/licences/{licence_id}", "/h5/licences"),
            (f"/h5/licences/{licence_id}/present", "/h5/licences"),
            (f"/h5/documents/{document_id}", "/h5/documents"),
            (f"/h5/documents/{document_id}/content", "/h5/documents"),
        ):
            answer = b.get(path)
            assert (answer.status_code, answer.headers["location"]) == (303, back), path
        code = b.get(f"/h5/licences/{licence_id}/qr", headers={"x-csrf-token": token})
        assert code.status_code == 404 and "token" not in code.json()
        for path, fields in (
            (f"/h5/documents/{document_id}/shares", {"purpose": "x", "days": "1"}),
            (f"/h5/documents/{document_id}/shares/revoke", {"share_id": share_id.group(1)}),
        ):
            answer = b.post(path, data={"csrf": token, **fields})
            assert answer.headers["location"] == "/h5/documents", path
        for action in ("approve", "decline", "revoke"):
            answer = b.post(
                f"/h5/consents/{request_id}/{action}", data={"csrf": token, "pin": bob.pin}
            )
            assert answer.headers["location"] == "/h5/consents?done=gone", action
        for path in ("/h5/licences", "/h5/documents", "/h5/consents"):
            assert 'class="entry' not in b.get(path).text, path

        mine = a.get(f"/h5/documents/{document_id}").text
        assert mine.count('class="share-state">有效<') == 1  # the share is still active
        assert "等待您决定" in a.get("/h5/consents").text  # the request still waits for Alice
        assert "驾驶证" in a.get("/h5/licences").text


def test_the_mode_switch_leads_back_to_a_page_of_ours_only(h5_server: H5Server) -> None:
    """Back to the page it was switched on, a detail page by its id included; anything else
    (another site, a path with more in it) to the start."""
    with browser(h5_server) as http:
        sign_in(http, h5_server.new_holder())
        token = csrf_of(http.get("/h5/card").text)
        for back, landing in (
            ("/h5/licences", "/h5/licences"),
            (f"/h5/licences/{NOBODY}", f"/h5/licences/{NOBODY}"),
            (f"/h5/licences/{NOBODY}/present", f"/h5/licences/{NOBODY}/present"),
            (f"/h5/documents/{NOBODY}", f"/h5/documents/{NOBODY}"),
            (f"/h5/documents/{NOBODY}/content", "/h5/"),
            (f"/h5/licences/{NOBODY}/../../login", "/h5/"),
            ("https://evil.example/h5/licences", "/h5/"),
            ("//evil.example/h5/card", "/h5/"),
        ):
            answer = http.post("/h5/care", data={"csrf": token, "care": "0", "next": back})
            assert (answer.status_code, answer.headers["location"]) == (303, landing), back
