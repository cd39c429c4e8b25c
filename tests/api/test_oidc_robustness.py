"""The OpenID Connect protocol endpoints are outside the OpenAPI document (form bodies,
OAuth error JSON, pages), so schemathesis does not reach them: here they get hostile input
from a seeded generator (odd characters, huge values, repeated and missing parameters, wrong
media types, forged cookies and tokens). Every answer is a 2xx/3xx/4xx, never a 5xx."""

from __future__ import annotations

import random
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from tests.api.test_oidc import register

NASTY = [
    "",
    " ",
    "\x00",
    "\u0085",
    "é",
    "社保",
    "%",
    "&",
    "=",
    "A" * 5000,
    "sac_" + "A" * 43,
    "srt_" + "B" * 43,
    "sat_" + "C" * 43,
    "sdc_" + "D" * 43,
    "rp_" + "0" * 20,
    "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.",
    "authorization_code",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code",
    "openid profile",
    "S256",
    "plain",
    "none",
    "login consent",
    "-1",
    "99999999999999999999",
    "http://127.0.0.1:8765/callback",
    "approve",
    "deny",
    "login",
    "consent",
    "phone",
    "SSC1:ABC",
]
NAMES = [
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "device_code",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "token",
    "token_type_hint",
    "scope",
    "state",
    "nonce",
    "response_type",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "request_id",
    "csrf_token",
    "step",
    "decision",
    "card_number",
    "pin",
    "id_token_hint",
    "post_logout_redirect_uri",
    "access_token",
    "qr_token",
    "via",
    "user_code",
]


def random_form(rng: random.Random, client_id: str) -> str:
    pairs = []
    for _ in range(rng.randint(0, 8)):
        name = rng.choice(NAMES)
        value = client_id if name == "client_id" and rng.random() < 0.5 else rng.choice(NASTY)
        pairs.append(f"{quote(name)}={quote(value)}")
    if rng.random() < 0.1:
        pairs.append("%%%")
    return "&".join(pairs)


@pytest.mark.parametrize("seed", [1, 2])
async def test_protocol_endpoints_never_answer_5xx(
    app: FastAPI, client: httpx.AsyncClient, seed: int
) -> None:
    rp = await register(client, app)
    rng = random.Random(seed)
    posts = [
        "/oidc/token",
        "/oidc/revoke",
        "/oidc/introspect",
        "/oidc/device_authorization",
        "/oidc/kiosk_authorization",
        "/oidc/authorize",
        "/oidc/userinfo",
        "/oidc/logout",
    ]
    gets = [
        "/oidc/authorize",
        "/oidc/authorize/phone",
        "/oidc/logout",
        "/oidc/userinfo",
        "/oidc/device",
    ]
    for _ in range(120):
        body = random_form(rng, rp["client_id"])
        headers = {
            "Content-Type": rng.choice(
                ["application/x-www-form-urlencoded", "application/json", "text/plain", ""]
            )
        }
        if rng.random() < 0.3:
            headers["Authorization"] = rng.choice(
                [
                    "Basic !!!",
                    "Basic " + "QQ==",
                    "Bearer " + quote(rng.choice(NASTY)),
                    httpx.BasicAuth(rp["client_id"], rp["client_secret"])._auth_header,
                ]
            )
        if rng.random() < 0.3:
            client.cookies.set("ssc_oidc_browser", quote(rng.choice(NASTY)), path="/oidc")
            client.cookies.set("ssc_oidc_login", quote(rng.choice(NASTY)), path="/oidc")
        path = rng.choice(posts)
        answer = await client.post(path, content=body.encode(), headers=headers)
        assert answer.status_code < 500, (path, body, answer.text[:300])
        path = rng.choice(gets)
        answer = await client.get(f"{path}?{body}")
        assert answer.status_code < 500, (path, body, answer.text[:300])
