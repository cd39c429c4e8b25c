"""The OpenID Connect provider's rules, in process on both backends: registration, the
authorization endpoint's refusals (RFC 6749 4.1.2.1, OIDC Core 3.1.2.6), PKCE, codes, client
authentication, consent, the PIN lockout, pairwise subjects, prompt and max_age, CSRF,
languages, the holder's consents, the access log and the device grant (RFC 8628). The
end-to-end run with a real client library is tests/api/test_oidc_client.py."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI

from app.catalog.defaults import DEFAULT_SCENES
from app.oidc import service as oidc_service
from app.oidc import state
from app.oidc.device import new_user_code, normalise_user_code
from app.store import StoreUnavailable
from tests.api.oidc_helpers import Browser, authorize_url, hidden_fields, pkce_pair, query_of
from tests.factories import ActiveHolder, admin_headers, bearer, create_active_holder

REDIRECT = "https://app.example/callback"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def register(client: httpx.AsyncClient, app: FastAPI, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "赣服通",
        "redirect_uris": [REDIRECT],
        "scopes": ["openid", "profile", "ssc_card", "phone", "entitlements"],
        "token_endpoint_auth_method": "client_secret_basic",
        "post_logout_redirect_uris": ["https://app.example/bye"],
        **overrides,
    }
    created = await client.post(
        "/v1/admin/relying-parties", json=body, headers=admin_headers(app.state.runtime)
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


@pytest.fixture
def clock() -> Iterator[list[float]]:
    """The provider's clock, shiftable: `clock[0]` seconds are added to the real time."""
    shift = [0.0]
    original = state.clock
    state.clock = lambda: time.time() + shift[0]
    try:
        yield shift
    finally:
        state.clock = original


async def authorize(
    client: httpx.AsyncClient,
    rp: dict[str, Any],
    holder: ActiveHolder,
    *,
    scope: str = "openid profile ssc_card",
    ticked: list[str] | None = None,
) -> tuple[dict[str, str], str]:
    verifier, challenge = pkce_pair()
    url = authorize_url("", rp["client_id"], rp["redirect_uris"][0], challenge, scope=scope)
    returned = await Browser(client).authorize(url, holder.card_number, holder.pin, ticked)
    return returned, verifier


async def token(
    client: httpx.AsyncClient, rp: dict[str, Any], form: dict[str, str]
) -> httpx.Response:
    auth = (rp["client_id"], rp["client_secret"]) if rp.get("client_secret") else None
    return await client.post("/oidc/token", data=form, auth=auth)


async def log_in(
    client: httpx.AsyncClient, rp: dict[str, Any], holder: ActiveHolder, **kwargs: Any
) -> dict[str, Any]:
    returned, verifier = await authorize(client, rp, holder, **kwargs)
    issued = await token(
        client,
        rp,
        {
            "grant_type": "authorization_code",
            "code": returned["code"],
            "redirect_uri": rp["redirect_uris"][0],
            "code_verifier": verifier,
        },
    )
    assert issued.status_code == 200, issued.text
    return dict(issued.json())


async def access_log_entries(
    client: httpx.AsyncClient, holder: ActiveHolder, outcome: str
) -> list[dict[str, Any]]:
    """The holder's access-log entries with `outcome`, once the audit consumer wrote one."""
    deadline = time.monotonic() + 10
    entries: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not entries:
        page = await client.get("/v1/me/access-log", headers=holder.headers)
        entries = [e for e in page.json()["entries"] if e["outcome"] == outcome]
        await asyncio.sleep(0.1)
    return entries


def sub_of(tokens: dict[str, Any]) -> str:
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    return str(claims["sub"])


class TestRegistration:
    async def test_a_secret_is_shown_once_and_refused_wrong(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        assert rp["client_secret"].startswith("rps_")
        listed = await client.get(
            f"/v1/admin/relying-parties/{rp['client_id']}", headers=admin_headers(app.state.runtime)
        )
        assert "client_secret" not in listed.json()
        wrong = await client.post(
            "/oidc/token",
            data={"grant_type": "authorization_code", "code": "x"},
            auth=(rp["client_id"], "rps_wrong"),
        )
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "invalid_client"
        assert wrong.headers["www-authenticate"].startswith("Basic")

    async def test_unknown_scopes_and_http_redirects_are_refused(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        headers = admin_headers(app.state.runtime)
        for body in (
            {"name": "x", "redirect_uris": ["http://evil.example/cb"], "scopes": ["openid"]},
            {"name": "x", "redirect_uris": [REDIRECT], "scopes": ["profile"]},
            {
                "name": "x",
                "redirect_uris": [REDIRECT],
                "scopes": ["openid"],
                "token_endpoint_auth_method": "private_key_jwt",
            },
        ):
            refused = await client.post("/v1/admin/relying-parties", json=body, headers=headers)
            assert refused.status_code == 422, refused.text


class TestAuthorizationRefusals:
    @pytest.mark.parametrize(
        "redirect", [REDIRECT + "/more", REDIRECT + "?x=1", "https://app.example/call"]
    )
    async def test_a_redirect_uri_not_exactly_registered_is_never_followed(
        self, app: FastAPI, client: httpx.AsyncClient, redirect: str
    ) -> None:
        rp = await register(client, app)
        _, challenge = pkce_pair()
        page = await client.get(authorize_url("", rp["client_id"], redirect, challenge))
        assert page.status_code == 400
        assert "location" not in page.headers

    async def test_pkce_is_required_and_plain_refused(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        missing = await client.get(authorize_url("", rp["client_id"], REDIRECT, None, state="s1"))
        assert missing.status_code == 302
        assert query_of(missing.headers["location"])["error"] == "invalid_request"
        assert query_of(missing.headers["location"])["state"] == "s1"
        verifier = "a" * 43
        plain = await client.get(
            authorize_url(
                "",
                rp["client_id"],
                REDIRECT,
                None,
                code_challenge=verifier,
                code_challenge_method="plain",
            )
        )
        assert query_of(plain.headers["location"])["error"] == "invalid_request"

    async def test_scopes_beyond_the_registration_are_invalid_scope(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        _, challenge = pkce_pair()
        asked = await client.get(
            authorize_url("", rp["client_id"], REDIRECT, challenge, scope="openid id_document")
        )
        assert query_of(asked.headers["location"])["error"] == "invalid_scope"
        no_openid = await client.get(
            authorize_url("", rp["client_id"], REDIRECT, challenge, scope="profile")
        )
        assert query_of(no_openid.headers["location"])["error"] == "invalid_scope"

    async def test_response_type_other_than_code(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        _, challenge = pkce_pair()
        asked = await client.get(
            authorize_url("", rp["client_id"], REDIRECT, challenge, response_type="token")
        )
        assert query_of(asked.headers["location"])["error"] == "unsupported_response_type"

    async def test_prompt_none_without_a_session_is_login_required(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        _, challenge = pkce_pair()
        asked = await client.get(
            authorize_url("", rp["client_id"], REDIRECT, challenge, prompt="none")
        )
        assert query_of(asked.headers["location"])["error"] == "login_required"

    @pytest.mark.parametrize(
        ("parameter", "error"),
        [
            ("request", "request_not_supported"),
            ("request_uri", "request_uri_not_supported"),
            ("registration", "registration_not_supported"),
        ],
    )
    async def test_unsupported_parameters_are_refused_with_their_own_code(
        self, app: FastAPI, client: httpx.AsyncClient, parameter: str, error: str
    ) -> None:
        rp = await register(client, app)
        _, challenge = pkce_pair()
        asked = await client.get(
            authorize_url("", rp["client_id"], REDIRECT, challenge, state="s9", **{parameter: "x"})
        )
        assert asked.status_code == 302
        returned = query_of(asked.headers["location"])
        assert (returned["error"], returned["state"]) == (error, "s9")
        assert "code" not in returned

    async def test_select_account_asks_which_card_even_with_a_login(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        await log_in(client, rp, holder)
        _, challenge = pkce_pair()
        page = await client.get(
            authorize_url("", rp["client_id"], REDIRECT, challenge, prompt="select_account")
        )
        assert page.status_code == 200
        assert hidden_fields(page.text)["step"] == "login"
        discovery = (await client.get("/.well-known/openid-configuration")).json()
        assert "select_account" in discovery["prompt_values_supported"]

    async def test_an_outage_mid_flow_goes_back_as_temporarily_unavailable(
        self, app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        rp = await register(client, app)
        _, challenge = pkce_pair()

        async def unreachable(*args: Any, **kwargs: Any) -> None:
            raise StoreUnavailable("store down")

        for operation in ("get", "set"):  # reading the login, keeping the request
            monkeypatch.setattr(app.state.runtime.store, operation, unreachable)
        asked = await client.get(
            authorize_url("", rp["client_id"], REDIRECT, challenge, state="s7")
        )
        assert asked.status_code == 302
        returned = query_of(asked.headers["location"])
        assert (returned["error"], returned["state"]) == ("temporarily_unavailable", "s7")

    async def test_a_failure_mid_flow_goes_back_as_server_error(
        self, app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        rp = await register(client, app)
        _, challenge = pkce_pair()

        async def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(oidc_service, "read_login", broken)
        asked = await client.get(
            authorize_url("", rp["client_id"], REDIRECT, challenge, state="s8")
        )
        assert asked.status_code == 302
        returned = query_of(asked.headers["location"])
        assert (returned["error"], returned["state"]) == ("server_error", "s8")
        assert returned["iss"]


class TestCodes:
    async def test_a_reused_code_revokes_the_tokens_issued_from_it(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        returned, verifier = await authorize(client, rp, holder)
        form = {
            "grant_type": "authorization_code",
            "code": returned["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        }
        first = await token(client, rp, form)
        assert first.status_code == 200
        issued = first.json()
        assert (
            await client.get("/oidc/userinfo", headers=bearer(issued["access_token"]))
        ).status_code == 200
        again = await token(client, rp, form)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        userinfo = await client.get("/oidc/userinfo", headers=bearer(issued["access_token"]))
        assert userinfo.status_code == 401
        refreshed = await token(
            client, rp, {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
        )
        assert refreshed.json()["error"] == "invalid_grant"

    async def test_an_expired_code_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, clock: list[float]
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        returned, verifier = await authorize(client, rp, holder)
        clock[0] = 61
        late = await token(
            client,
            rp,
            {
                "grant_type": "authorization_code",
                "code": returned["code"],
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            },
        )
        assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
        assert "expired" in late.json()["error_description"]

    async def test_a_wrong_verifier_or_redirect_is_invalid_grant(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        for wrong in ("verifier", "redirect"):
            returned, verifier = await authorize(client, rp, holder)
            refused = await token(
                client,
                rp,
                {
                    "grant_type": "authorization_code",
                    "code": returned["code"],
                    "redirect_uri": REDIRECT + "/x" if wrong == "redirect" else REDIRECT,
                    "code_verifier": pkce_pair()[0] if wrong == "verifier" else verifier,
                },
            )
            assert refused.json()["error"] == "invalid_grant", wrong

    async def test_unsupported_and_missing_grant_types(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        other = await token(client, rp, {"grant_type": "password"})
        assert other.json()["error"] == "unsupported_grant_type"
        missing = await token(client, rp, {})
        assert missing.json()["error"] == "invalid_request"
        repeated = await client.post(
            "/oidc/token",
            content="grant_type=a&grant_type=b",
            headers=FORM,
            auth=(rp["client_id"], rp["client_secret"]),
        )
        assert repeated.status_code == 400 and repeated.json()["error"] == "invalid_request"


class TestConsentAndLogin:
    async def test_consent_denied_sends_access_denied_with_state(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        _, challenge = pkce_pair()
        browser = Browser(client)
        page = await browser.open(
            authorize_url("", rp["client_id"], REDIRECT, challenge, state="keep")
        )
        consent = await browser.login(page, holder.card_number, holder.pin)
        assert "赣服通" in consent.text
        denied = await browser.consent(consent, "deny")
        assert denied.status_code == 303
        assert query_of(denied.headers["location"]) == {
            "error": "access_denied",
            "error_description": "the holder denied",
            "state": "keep",
            "iss": app.state.runtime.settings.public_url.rstrip("/"),
        }

    async def test_unticked_claims_are_not_released(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        tokens = await log_in(
            client, rp, holder, scope="openid profile ssc_card phone", ticked=["ssc_card"]
        )
        assert tokens["scope"] == "openid ssc_card"
        info = (await client.get("/oidc/userinfo", headers=bearer(tokens["access_token"]))).json()
        assert set(info) == {"sub", "card_status", "card_number_masked", "issuing_region"}

    async def test_a_locked_pin_refuses_even_the_right_one(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        _, challenge = pkce_pair()
        browser = Browser(client)
        page = await browser.open(authorize_url("", rp["client_id"], REDIRECT, challenge))
        limit = app.state.runtime.settings.pin_max_failures_unbound
        for attempt in range(limit):
            page = await browser.login(page, holder.card_number, "000000")
            assert page.status_code == (423 if attempt == limit - 1 else 401), page.status_code
        right = await browser.login(page, holder.card_number, holder.pin)
        assert right.status_code == 423
        assert "锁定" in right.text
        # The holder's own phone is counted apart: the app login still works.
        app_login = await client.post(
            "/v1/auth/login",
            json={
                "card_number": holder.card_number,
                "pin": holder.pin,
                "device_id": holder.device_id,
            },
        )
        assert app_login.status_code == 200

    async def test_a_form_without_its_csrf_token_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        _, challenge = pkce_pair()
        page = await client.get(authorize_url("", rp["client_id"], REDIRECT, challenge))
        fields = {**hidden_fields(page.text), "csrf_token": "forged"}
        forged = await client.post(
            "/oidc/authorize",
            data={**fields, "card_number": holder.card_number, "pin": holder.pin},
        )
        assert forged.status_code == 403
        client.cookies.clear()  # another browser, without the cookie the token is bound to
        stolen = await client.post(
            "/oidc/authorize",
            data={**hidden_fields(page.text), "card_number": holder.card_number, "pin": holder.pin},
        )
        assert stolen.status_code == 403

    async def test_english_when_the_browser_prefers_it(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        _, challenge = pkce_pair()
        url = authorize_url("", rp["client_id"], REDIRECT, challenge)
        english = await client.get(url, headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
        chinese = await client.get(url, headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
        other = await client.get(url, headers={"Accept-Language": "fr"})
        assert 'name="card_number"' in english.text and "Sign in" in english.text
        assert "使用社保卡登录" in chinese.text and "使用社保卡登录" in other.text

    async def test_prompt_login_max_age_and_prompt_consent_ask_again(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        await log_in(client, rp, holder)
        _, challenge = pkce_pair()
        silent = await client.get(authorize_url("", rp["client_id"], REDIRECT, challenge))
        assert silent.status_code == 302 and "code" in query_of(silent.headers["location"])
        for extra in ({"prompt": "login"}, {"max_age": "0"}):
            await asyncio.sleep(1.1) if extra.get("max_age") else None
            page = await client.get(
                authorize_url("", rp["client_id"], REDIRECT, challenge, **extra)
            )
            assert hidden_fields(page.text)["step"] == "login", extra
        page = await client.get(
            authorize_url("", rp["client_id"], REDIRECT, challenge, prompt="consent")
        )
        assert hidden_fields(page.text)["step"] == "consent"
        more = await client.get(
            authorize_url(
                "", rp["client_id"], REDIRECT, challenge, scope="openid phone", prompt="none"
            )
        )
        assert query_of(more.headers["location"])["error"] == "consent_required"


class TestSubjects:
    async def test_pairwise_subjects_differ_across_sectors_and_hold_within_one(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder = await create_active_holder(client, app)
        tax = await register(client, app, sector_identifier="tax.example.gov.cn")
        tax_mobile = await register(client, app, sector_identifier="tax.example.gov.cn")
        health = await register(client, app, sector_identifier="health.example.gov.cn")
        public = await register(client, app, subject_type="public")
        subs = {}
        for name, rp in (("tax", tax), ("tax_mobile", tax_mobile), ("health", health)):
            subs[name] = sub_of(await log_in(client, rp, holder))
        assert subs["tax"] == subs["tax_mobile"]
        assert subs["tax"] != subs["health"]
        assert sub_of(await log_in(client, tax, holder)) == subs["tax"]
        public_sub = sub_of(await log_in(client, public, holder))
        assert public_sub not in subs.values()
        other = await create_active_holder(client, app)
        client.cookies.clear()
        assert sub_of(await log_in(client, tax, other)) != subs["tax"]

    async def test_public_subjects_are_the_same_for_every_public_client(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        holder = await create_active_holder(client, app)
        first = await register(client, app, subject_type="public")
        second = await register(client, app, subject_type="public", name="另一个公开应用")
        assert sub_of(await log_in(client, first, holder)) == sub_of(
            await log_in(client, second, holder)
        )

    async def test_the_resident_id_number_logs_in_as_the_card_number_does(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        by_card = sub_of(await log_in(client, rp, holder))
        client.cookies.clear()
        verifier, challenge = pkce_pair()
        url = authorize_url("", rp["client_id"], REDIRECT, challenge)
        returned = await Browser(client).authorize(url, holder.card.document_number, holder.pin)
        issued = await token(
            client,
            rp,
            {
                "grant_type": "authorization_code",
                "code": returned["code"],
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            },
        )
        assert issued.status_code == 200, issued.text
        assert sub_of(issued.json()) == by_card


class TestTokenEndpoint:
    async def test_client_secret_post_and_only_the_registered_method(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app, token_endpoint_auth_method="client_secret_post")
        holder = await create_active_holder(client, app)
        returned, verifier = await authorize(client, rp, holder)
        form = {
            "grant_type": "authorization_code",
            "code": returned["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        }
        by_basic = await client.post(
            "/oidc/token", data=form, auth=(rp["client_id"], rp["client_secret"])
        )
        assert by_basic.status_code == 401 and by_basic.json()["error"] == "invalid_client"
        by_post = await client.post(
            "/oidc/token",
            data={**form, "client_id": rp["client_id"], "client_secret": rp["client_secret"]},
        )
        assert by_post.status_code == 200, by_post.text
        assert by_post.json()["id_token"]

    async def test_introspection_shows_only_the_callers_own_tokens(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        other = await register(client, app, name="另一个应用")
        holder = await create_active_holder(client, app)
        tokens = await log_in(client, rp, holder)
        own = await client.post(
            "/oidc/introspect",
            data={"token": tokens["access_token"]},
            auth=(rp["client_id"], rp["client_secret"]),
        )
        assert own.json()["active"] is True
        foreign = await client.post(
            "/oidc/introspect",
            data={"token": tokens["access_token"]},
            auth=(other["client_id"], other["client_secret"]),
        )
        assert foreign.status_code == 200 and foreign.json() == {"active": False}

    async def test_revoking_the_refresh_token_ends_the_whole_grant(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        tokens = await log_in(client, rp, holder)
        auth = (rp["client_id"], rp["client_secret"])
        revoked = await client.post(
            "/oidc/revoke",
            data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
            auth=auth,
        )
        assert revoked.status_code == 200
        seen = await client.post(
            "/oidc/introspect", data={"token": tokens["access_token"]}, auth=auth
        )
        assert seen.json() == {"active": False}
        assert (
            await client.get("/oidc/userinfo", headers=bearer(tokens["access_token"]))
        ).status_code == 401
        refreshed = await token(
            client, rp, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.json()["error"] == "invalid_grant"

    async def test_a_refresh_may_narrow_the_scopes_but_never_widen_them(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        tokens = await log_in(client, rp, holder, scope="openid profile")
        wider = await token(
            client,
            rp,
            {
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "scope": "openid profile phone",
            },
        )
        assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
        narrower = await token(
            client,
            rp,
            {
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "scope": "openid",
            },
        )
        assert narrower.status_code == 200, narrower.text
        assert narrower.json()["scope"] == "openid"

    async def test_discovery_names_the_subject_types_and_client_methods(
        self, client: httpx.AsyncClient
    ) -> None:
        found = (await client.get("/.well-known/openid-configuration")).json()
        assert sorted(found["subject_types_supported"]) == ["pairwise", "public"]
        assert sorted(found["token_endpoint_auth_methods_supported"]) == [
            "client_secret_basic",
            "client_secret_post",
            "none",
            "private_key_jwt",
        ]
        assert found["response_types_supported"] == ["code"]
        assert found["code_challenge_methods_supported"] == ["S256"]


class TestClientAuthentication:
    async def test_private_key_jwt_and_public_clients(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        jwk["kid"] = "k1"
        signed = await register(
            client, app, token_endpoint_auth_method="private_key_jwt", jwks={"keys": [jwk]}
        )
        assert signed["client_secret"] is None
        holder = await create_active_holder(client, app)
        returned, verifier = await authorize(client, signed, holder)
        issuer = app.state.runtime.settings.public_url.rstrip("/")

        def assertion(jti: str) -> str:
            now = int(time.time())
            claims = {
                "iss": signed["client_id"],
                "sub": signed["client_id"],
                "aud": f"{issuer}/oidc/token",
                "jti": jti,
                "iat": now,
                "exp": now + 60,
            }
            return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})

        form = {
            "grant_type": "authorization_code",
            "code": returned["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        }
        ok = await client.post("/oidc/token", data={**form, "client_assertion": assertion("j1")})
        assert ok.status_code == 200, ok.text
        replayed = await client.post(
            "/oidc/token", data={**form, "client_assertion": assertion("j1")}
        )
        assert replayed.json()["error"] == "invalid_client"

        public = await register(client, app, token_endpoint_auth_method="none")
        returned, verifier = await authorize(client, public, holder)
        issued = await client.post(
            "/oidc/token",
            data={
                "grant_type": "authorization_code",
                "code": returned["code"],
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
                "client_id": public["client_id"],
            },
        )
        assert issued.status_code == 200, issued.text
        by_secret = await client.post(
            "/oidc/token",
            data={"grant_type": "refresh_token", "refresh_token": "x"},
            auth=(public["client_id"], "guess"),
        )
        assert by_secret.json()["error"] == "invalid_client"


class TestHolderConsents:
    async def test_consents_are_listed_and_withdrawn_with_their_tokens(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        tokens = await log_in(client, rp, holder)
        listed = await client.get("/v1/me/consents", headers=holder.headers)
        assert listed.status_code == 200
        assert [(c["client_id"], c["scopes"]) for c in listed.json()] == [
            (rp["client_id"], ["openid", "profile", "ssc_card"])
        ]
        gone = await client.delete(f"/v1/me/consents/{rp['client_id']}", headers=holder.headers)
        assert gone.status_code == 204
        assert (await client.get("/v1/me/consents", headers=holder.headers)).json() == []
        assert (
            await client.get("/oidc/userinfo", headers=bearer(tokens["access_token"]))
        ).status_code == 401
        refreshed = await token(
            client, rp, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.json()["error"] == "invalid_grant"
        again = await client.delete(f"/v1/me/consents/{rp['client_id']}", headers=holder.headers)
        assert again.status_code == 404

    async def test_logins_refreshes_and_userinfo_reads_reach_the_access_log(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        tokens = await log_in(client, rp, holder)
        await client.get("/oidc/userinfo", headers=bearer(tokens["access_token"]))
        await token(
            client, rp, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        )
        deadline = time.monotonic() + 10
        entries: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            page = await client.get("/v1/me/access-log", headers=holder.headers)
            entries = [e for e in page.json()["entries"] if e["source"] == "relying_party"]
            if len(entries) >= 3:
                break
            await asyncio.sleep(0.1)
        assert sorted(e["outcome"] for e in entries) == ["login", "refresh", "userinfo"]
        assert {e["organisation"] for e in entries} == {"赣服通"}
        login = next(e for e in entries if e["outcome"] == "login")
        assert login["attributes"] == [
            "sub",
            "name",
            "card_status",
            "card_number_masked",
            "issuing_region",
        ]


class TestDeviceGrant:
    async def start(self, client: httpx.AsyncClient, rp: dict[str, Any]) -> dict[str, Any]:
        started = await client.post(
            "/oidc/device_authorization",
            data={"scope": "openid profile"},
            auth=(rp["client_id"], rp["client_secret"]),
        )
        assert started.status_code == 200, started.text
        return dict(started.json())

    async def poll(
        self, client: httpx.AsyncClient, rp: dict[str, Any], device_code: str
    ) -> httpx.Response:
        return await token(
            client,
            rp,
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": device_code,
            },
        )

    async def test_start_pending_slow_down_approve_tokens(
        self, app: FastAPI, client: httpx.AsyncClient, clock: list[float]
    ) -> None:
        rp = await register(
            client,
            app,
            grant_types=[
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code",
            ],
        )
        holder = await create_active_holder(client, app)
        started = await self.start(client, rp)
        assert started["verification_uri_complete"].endswith(started["user_code"])
        first = await self.poll(client, rp, started["device_code"])
        assert first.json()["error"] == "authorization_pending"
        hurried = await self.poll(client, rp, started["device_code"])
        assert hurried.json()["error"] == "slow_down"
        seen = await client.get(
            f"/v1/me/oidc/device-requests/{started['user_code']}", headers=holder.headers
        )
        assert seen.status_code == 200 and seen.json()["client_name"] == "赣服通"
        assert seen.json()["scopes"] == ["openid", "profile"]
        wrong = await client.post(
            f"/v1/me/oidc/device-requests/{started['user_code']}",
            json={"pin": "000000", "decision": "approve"},
            headers=holder.headers,
        )
        assert wrong.status_code == 401
        approved = await client.post(
            f"/v1/me/oidc/device-requests/{started['user_code']}",
            json={"pin": holder.pin, "decision": "approve"},
            headers=holder.headers,
        )
        assert approved.status_code == 200, approved.text
        clock[0] += 60
        issued = await self.poll(client, rp, started["device_code"])
        assert issued.status_code == 200, issued.text
        info = await client.get("/oidc/userinfo", headers=bearer(issued.json()["access_token"]))
        assert set(info.json()) == {"sub", "name"}
        spent = await self.poll(client, rp, started["device_code"])
        assert spent.json()["error"] == "invalid_grant"

    async def test_denied_and_expired(
        self, app: FastAPI, client: httpx.AsyncClient, clock: list[float]
    ) -> None:
        rp = await register(
            client,
            app,
            grant_types=["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
        )
        holder = await create_active_holder(client, app)
        denied = await self.start(client, rp)
        decided = await client.post(
            f"/v1/me/oidc/device-requests/{denied['user_code']}",
            json={"pin": holder.pin, "decision": "deny"},
            headers=holder.headers,
        )
        assert decided.status_code == 200
        twice = await client.post(
            f"/v1/me/oidc/device-requests/{denied['user_code']}",
            json={"pin": holder.pin, "decision": "approve"},
            headers=holder.headers,
        )
        assert twice.status_code == 409
        assert (await self.poll(client, rp, denied["device_code"])).json()[
            "error"
        ] == "access_denied"
        late = await self.start(client, rp)
        clock[0] += late["expires_in"] + 1
        assert (await self.poll(client, rp, late["device_code"])).json()["error"] == "expired_token"

    async def test_a_client_without_the_grant_may_not_start_one(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        refused = await client.post(
            "/oidc/device_authorization",
            data={"scope": "openid"},
            auth=(rp["client_id"], rp["client_secret"]),
        )
        assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"


def test_user_codes_read_alike_however_typed() -> None:
    code = new_user_code()
    assert normalise_user_code(code.lower().replace("-", " ")) == code


class TestKioskReverseFlow:
    async def test_a_kiosk_that_scanned_the_code_is_approved_by_that_holder_only(
        self, app: FastAPI, client: httpx.AsyncClient, clock: list[float]
    ) -> None:
        kiosk = await register(
            client,
            app,
            name="南昌市政务服务中心 自助终端",
            grant_types=["urn:ietf:params:oauth:grant-type:device_code"],
        )
        holder = await create_active_holder(client, app)
        stranger = await create_active_holder(client, app)
        qr = (await client.get("/v1/me/qr", headers=holder.headers)).json()["token"]
        auth = (kiosk["client_id"], kiosk["client_secret"])
        started = await client.post(
            "/oidc/kiosk_authorization", data={"qr_token": qr, "scope": "openid profile"}, auth=auth
        )
        assert started.status_code == 200, started.text
        device_code = started.json()["device_code"]
        again = await client.post(
            "/oidc/kiosk_authorization", data={"qr_token": qr, "scope": "openid"}, auth=auth
        )
        assert again.json()["error"] == "invalid_grant"
        forged = await client.post(
            "/oidc/kiosk_authorization", data={"qr_token": "SSC1:XYZ", "scope": "openid"}, auth=auth
        )
        assert forged.json()["error"] == "invalid_grant"

        assert (
            await client.get("/v1/me/oidc/device-requests", headers=stranger.headers)
        ).json() == []
        waiting = (await client.get("/v1/me/oidc/device-requests", headers=holder.headers)).json()
        assert [(w["client_name"], w["scopes"]) for w in waiting] == [
            ("南昌市政务服务中心 自助终端", ["openid", "profile"])
        ]
        code = waiting[0]["user_code"]
        by_stranger = await client.post(
            f"/v1/me/oidc/device-requests/{code}",
            json={"pin": stranger.pin, "decision": "approve"},
            headers=stranger.headers,
        )
        assert by_stranger.status_code == 404
        poll = {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": device_code,
        }
        pending = await client.post("/oidc/token", data=poll, auth=auth)
        assert pending.json()["error"] == "authorization_pending"
        approved = await client.post(
            f"/v1/me/oidc/device-requests/{code}",
            json={"pin": holder.pin, "decision": "approve"},
            headers=holder.headers,
        )
        assert approved.status_code == 200
        assert (
            await client.get("/v1/me/oidc/device-requests", headers=holder.headers)
        ).json() == []
        clock[0] += 30
        issued = await client.post("/oidc/token", data=poll, auth=auth)
        assert issued.status_code == 200, issued.text
        info = await client.get("/oidc/userinfo", headers=bearer(issued.json()["access_token"]))
        assert info.json()["name"] == holder.card.name
        read = await access_log_entries(client, holder, "kiosk_scan")
        assert [(e["scene"], e["attributes"], e["source"]) for e in read] == [
            ("service_hall_login", [], "relying_party")
        ]
        assert read[0]["organisation"] == "南昌市政务服务中心 自助终端"

    async def test_no_kiosk_sign_in_where_the_catalog_lacks_the_kiosk_scene(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        kiosk = await register(
            client, app, grant_types=["urn:ietf:params:oauth:grant-type:device_code"]
        )
        holder = await create_active_holder(client, app)
        without = [row for row in DEFAULT_SCENES if row["code"] != "service_hall_login"]
        published = await client.post(
            "/v1/admin/catalog/versions",
            json={"scenes": without, "note": "no kiosks"},
            headers=admin_headers(app.state.runtime, "adm_province"),
        )
        assert published.status_code == 201, published.text
        deadline = time.monotonic() + 2
        while app.state.runtime.catalog.scene("service_hall_login") is not None:
            assert time.monotonic() < deadline, "the new catalog version did not take effect"
            await asyncio.sleep(0.05)
        qr = (await client.get("/v1/me/qr", headers=holder.headers)).json()["token"]
        refused = await client.post(
            "/oidc/kiosk_authorization",
            data={"qr_token": qr, "scope": "openid"},
            auth=(kiosk["client_id"], kiosk["client_secret"]),
        )
        assert refused.status_code == 400
        assert refused.json()["error"] == "unauthorized_client"


class TestApproveOnMyPhone:
    async def test_the_login_page_waits_for_the_phone_then_sends_the_code(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(client, app)
        holder = await create_active_holder(client, app)
        verifier, challenge = pkce_pair()
        page = await client.get(authorize_url("", rp["client_id"], REDIRECT, challenge, state="ph"))
        waiting = await client.post(
            "/oidc/authorize",
            data={**hidden_fields(page.text), "card_number": holder.card_number, "via": "phone"},
        )
        assert waiting.status_code == 200 and 'http-equiv="refresh"' in waiting.text
        poll = re.search(r'url=(/oidc/authorize/phone\?[^"]+)"', waiting.text)
        assert poll is not None
        poll_url = html.unescape(poll.group(1))
        assert (await client.get(poll_url)).status_code == 200  # still waiting
        listed = (await client.get("/v1/me/oidc/device-requests", headers=holder.headers)).json()
        assert len(listed) == 1 and listed[0]["user_code"] in waiting.text
        approved = await client.post(
            f"/v1/me/oidc/device-requests/{listed[0]['user_code']}",
            json={"pin": holder.pin, "decision": "approve", "scopes": ["profile"]},
            headers=holder.headers,
        )
        assert approved.status_code == 200, approved.text
        done = await client.get(poll_url)
        assert done.status_code == 302, done.text[:300]
        returned = query_of(done.headers["location"])
        assert returned["state"] == "ph"
        issued = await token(
            client,
            rp,
            {
                "grant_type": "authorization_code",
                "code": returned["code"],
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            },
        )
        assert issued.status_code == 200 and issued.json()["scope"] == "openid profile"
        # The page never reveals whether a card exists: an unknown one waits the same way.
        page = await client.get(
            authorize_url("", rp["client_id"], REDIRECT, challenge, prompt="login")
        )
        unknown = await client.post(
            "/oidc/authorize",
            data={**hidden_fields(page.text), "card_number": "369999999999", "via": "phone"},
        )
        assert unknown.status_code == 200 and 'http-equiv="refresh"' in unknown.text


class TestClaims:
    async def test_each_scope_releases_its_claims(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        rp = await register(
            client,
            app,
            scopes=["openid", "profile", "ssc_card", "id_document", "phone", "entitlements"],
        )
        holder = await create_active_holder(client, app)
        tokens = await log_in(
            client, rp, holder, scope="openid profile ssc_card id_document phone entitlements"
        )
        info = (await client.get("/oidc/userinfo", headers=bearer(tokens["access_token"]))).json()
        assert info["name"] == holder.card.name
        assert info["document_type"] == holder.card.document_type
        assert info["document_number"] == holder.card.document_number
        assert info["phone_number"].isdigit()
        assert info["entitlements"] == []
        assert info["card_number_masked"] != holder.card_number
