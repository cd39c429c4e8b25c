"""Drives the login and consent pages as a browser without JavaScript would (plain forms), for
the OpenID Connect tests; the real browser test is tests/pages/test_oidc_pages.py."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from app.config import Settings
from tests.servers import SSC, free_port, server_env, start_server, wait_until_up

_INPUT = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def hidden_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in _INPUT.findall(page)}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def query_of(location: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


@dataclass
class Browser:
    """A cookie-keeping user agent that fills the forms."""

    http: httpx.AsyncClient

    async def open(self, url: str) -> httpx.Response:
        return await self.http.get(url)

    async def login(self, page: httpx.Response, card_number: str, pin: str) -> httpx.Response:
        fields = hidden_fields(page.text)
        assert fields.get("step") == "login", page.text[:500]
        return await self.http.post(
            "/oidc/authorize",
            content=urlencode({**fields, "card_number": card_number, "pin": pin}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    async def consent(
        self, page: httpx.Response, decision: str, scopes: list[str] | None = None
    ) -> httpx.Response:
        fields = hidden_fields(page.text)
        assert fields.get("step") == "consent", page.text[:500]
        ticked = (
            re.findall(r'name="scope" value="([a-z_]+)"', page.text) if scopes is None else scopes
        )
        pairs = [*fields.items(), *(("scope", scope) for scope in ticked), ("decision", decision)]
        return await self.http.post(
            "/oidc/authorize",
            content=urlencode(pairs),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    async def authorize(
        self, url: str, card_number: str, pin: str, scopes: list[str] | None = None
    ) -> dict[str, str]:
        """Logs in and approves; the query of the redirect back to the client."""
        page = await self.open(url)
        if page.status_code == 200 and 'value="login"' in page.text:
            page = await self.login(page, card_number, pin)
        if page.status_code == 200 and 'value="consent"' in page.text:
            page = await self.consent(page, "approve", scopes)
        assert page.status_code in (302, 303), (page.status_code, page.text[:800])
        return query_of(page.headers["location"])


def authorize_url(
    base_url: str,
    client_id: str,
    redirect_uri: str,
    challenge: str | None,
    *,
    scope: str = "openid profile ssc_card",
    **extra: str,
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        **extra,
    }
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    return f"{base_url}/oidc/authorize?{urlencode(params)}"


@dataclass
class Live:
    base_url: str
    demo: dict[str, Any]


@pytest.fixture
def live(settings: Settings, tmp_path: Path) -> Iterator[Live]:
    port = free_port()
    env = {**server_env(settings), "SSC_PORT": str(port)}
    env.pop("SSC_PUBLIC_URL", None)
    process = start_server(env, port, log=tmp_path / "server.log")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, base_url)
        seeded = subprocess.run(
            [SSC, "demo", "--json", "--base-url", base_url],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        yield Live(base_url, json.loads(seeded.stdout))
    finally:
        process.terminate()
        process.wait(timeout=10)
        print((tmp_path / "server.log").read_text(errors="replace")[-3000:])
