"""THE acceptance test of the OpenID Connect provider: a certified-style client library
(Authlib's httpx OAuth 2 client) against a live `ssc serve`, with no special code: discovery,
the code flow with PKCE, the ID token checked against the published JWKS, userinfo, refresh
with rotation and reuse detection, revocation (RFC 7009), introspection (RFC 7662) and
RP-initiated logout. The holder's browser is a cookie-keeping httpx client that fills the
plain HTML forms (the real browser has its own test)."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.api.oidc_helpers import Browser, Live, live, query_of


def half_hash(token: str) -> str:
    digest = hashlib.sha256(token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


__all__ = ["live"]  # the fixture


async def test_a_real_oidc_client_logs_in_with_the_card(live: Live) -> None:
    rp = live.demo["relying_party"]
    holder = live.demo["holder"]
    async with httpx.AsyncClient(base_url=live.base_url) as plain:
        discovery = (await plain.get("/.well-known/openid-configuration")).json()
        assert discovery["issuer"] == live.base_url
        assert discovery["code_challenge_methods_supported"] == ["S256"]
        assert discovery["id_token_signing_alg_values_supported"] == ["ES256"]
        jwks = (await plain.get(discovery["jwks_uri"])).json()
        qr_keys = (await plain.get("/.well-known/jwks.json")).json()
    assert {key["kid"] for key in jwks["keys"]}.isdisjoint(k["kid"] for k in qr_keys["keys"])
    assert all(key["purpose"] == "oidc" for key in jwks["keys"])

    client = AsyncOAuth2Client(
        client_id=rp["client_id"],
        client_secret=rp["client_secret"],
        token_endpoint_auth_method="client_secret_basic",
        scope="openid profile ssc_card",
        redirect_uri=rp["redirect_uri"],
        code_challenge_method="S256",
    )
    verifier = generate_token(64)
    nonce = generate_token(16)
    url, state = client.create_authorization_url(
        discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    async with httpx.AsyncClient(base_url=live.base_url) as agent:
        browser = Browser(agent)
        returned = await browser.authorize(url, holder["card_number"], holder["pin"])
        assert returned["state"] == state
        assert returned["iss"] == live.base_url
        callback = f"{rp['redirect_uri']}?code={returned['code']}&state={state}"
        token = await client.fetch_token(
            discovery["token_endpoint"], authorization_response=callback, code_verifier=verifier
        )

        # The ID token, checked against the published JWKS.
        id_token = jwt.decode(token["id_token"], KeySet.import_key_set(jwks), algorithms=["ES256"])
        claims = id_token.claims
        assert id_token.header["alg"] == "ES256"
        assert id_token.header["kid"] in {key["kid"] for key in jwks["keys"]}
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": live.base_url},
            aud={"essential": True, "value": rp["client_id"]},
            nonce={"essential": True, "value": nonce},
            exp={"essential": True},
            iat={"essential": True},
            auth_time={"essential": True},
            sub={"essential": True},
        ).validate(claims)
        assert claims["at_hash"] == half_hash(token["access_token"])
        assert claims["exp"] > time.time()
        assert claims["acr"] and claims["amr"] == ["pin"]
        assert len(claims["sub"]) == 43 and holder["card_number"] not in json.dumps(claims)

        # userinfo: exactly the consented claims.
        info = (await client.get(discovery["userinfo_endpoint"])).json()
        assert info["sub"] == claims["sub"]
        assert info["name"] == "张小三"
        assert info["card_status"] == "active"
        assert info["card_number_masked"].endswith(holder["card_number"][-4:])
        assert "phone_number" not in info and "document_number" not in info

        # Introspection (RFC 7662).
        seen = (
            await client.introspect_token(
                discovery["introspection_endpoint"], token=token["access_token"]
            )
        ).json()
        assert seen["active"] is True and seen["sub"] == claims["sub"]
        assert seen["client_id"] == rp["client_id"]

        # Refresh rotates; the spent refresh token presented again revokes the grant.
        first_refresh = token["refresh_token"]
        renewed = await client.refresh_token(
            discovery["token_endpoint"], refresh_token=first_refresh
        )
        assert renewed["refresh_token"] != first_refresh
        assert renewed["access_token"] != token["access_token"]
        reused = await plain_token_post(
            live.base_url,
            rp,
            {"grant_type": "refresh_token", "refresh_token": first_refresh},
        )
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
        after_reuse = await plain_token_post(
            live.base_url,
            rp,
            {"grant_type": "refresh_token", "refresh_token": renewed["refresh_token"]},
        )
        assert after_reuse.json()["error"] == "invalid_grant"
        gone = await httpx.AsyncClient().get(
            discovery["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {renewed['access_token']}"},
        )
        assert gone.status_code == 401

        # A second login (the browser's session is remembered, consent too): no pages.
        verifier2 = generate_token(64)
        url2, state2 = client.create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=verifier2, nonce=generate_token(8)
        )
        silent = await agent.get(url2)
        assert silent.status_code == 302, silent.text[:400]
        assert query_of(silent.headers["location"])["state"] == state2
        query = silent.headers["location"].split("?", 1)[1]
        token2 = await client.fetch_token(
            discovery["token_endpoint"],
            authorization_response=f"{rp['redirect_uri']}?{query}",
            code_verifier=verifier2,
        )

        # Revocation (RFC 7009) of the access token, seen by introspection and userinfo.
        revoked = await client.revoke_token(
            discovery["revocation_endpoint"], token=token2["access_token"]
        )
        assert revoked.status_code == 200
        seen = (
            await client.introspect_token(
                discovery["introspection_endpoint"], token=token2["access_token"]
            )
        ).json()
        assert seen == {"active": False}

        # RP-initiated logout: back to the client with its state; the session is over.
        out = await agent.get(
            discovery["end_session_endpoint"],
            params={
                "id_token_hint": token2["id_token"],
                "post_logout_redirect_uri": "http://127.0.0.1:8765/",
                "state": "bye",
            },
        )
        assert out.status_code == 303 and query_of(out.headers["location"]) == {"state": "bye"}
        again, _ = client.create_authorization_url(
            discovery["authorization_endpoint"],
            code_verifier=generate_token(64),
            nonce="n",
            prompt="none",
        )
        refused = await agent.get(again)
        assert query_of(refused.headers["location"])["error"] == "login_required"
    await client.aclose()


async def plain_token_post(
    base_url: str, rp: dict[str, str], form: dict[str, str]
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url) as http:
        return await http.post(
            "/oidc/token", data=form, auth=(rp["client_id"], rp["client_secret"])
        )


def test_the_pkce_helper_agrees_with_authlib() -> None:
    assert (
        create_s256_code_challenge("a" * 43)
        == base64.urlsafe_b64encode(hashlib.sha256(b"a" * 43).digest()).rstrip(b"=").decode()
    )
