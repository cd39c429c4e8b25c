"""One live `ssc serve` for the page tests (SQLite and the memory store: the pages are what
is tested here, the storage backends have their own suites), with a short QR refresh so that
a test sees the code change without waiting long, and helpers that make holders, a scanner
and signed-in browsers."""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Page

from app.config import decode_secret, new_secret
from app.ratelimits import RateLimitRule
from app.security.tokens import AccessTokenCodec
from tests.factories import DEFAULT_PIN, admin_headers, application_body
from tests.servers import SSC, free_port, start_server, wait_until_up

QR_REFRESH_AFTER = 5
"""Seconds (the smallest the setting allows): the page must show a new code within this."""


@dataclass
class Holder:
    card_number: str
    document_number: str
    pin: str = DEFAULT_PIN
    name: str = ""
    document_type: str = "resident_id"


@dataclass
class H5Server:
    base_url: str
    codec: AccessTokenCodec
    log: Path
    scanner_token: str = ""

    @property
    def admin(self) -> dict[str, str]:
        return admin_headers(SimpleNamespace(access_tokens=self.codec))  # type: ignore[arg-type]

    def url(self, path: str) -> str:
        return self.base_url + path

    def new_holder(self) -> Holder:
        """A card applied for and approved (not yet activated anywhere)."""
        body = application_body()
        with httpx.Client(base_url=self.base_url) as http:
            applied = http.post("/v1/applications", json=body)
            assert applied.status_code == 201, applied.text
            approved = http.post(
                f"/v1/admin/applications/{applied.json()['id']}/approve", headers=self.admin
            )
            assert approved.status_code == 200, approved.text
        return Holder(
            approved.json()["card_number"],
            body["document_number"],
            name=body["name"],
            document_type=body["document_type"],
        )

    def verify(self, token: str) -> str:
        """The verdict a venue's scanner gets for `token`."""
        answer = httpx.post(
            self.url("/v1/verify"),
            json={"token": token, "scene": "museum"},
            headers={"Authorization": f"Bearer {self.scanner_token}"},
        )
        assert answer.status_code == 200, answer.text
        verdict: str = answer.json()["verdict"]
        return verdict


@pytest.fixture(scope="session")
def h5_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[H5Server]:
    var = tmp_path_factory.mktemp("h5-server")
    token_secret = new_secret()
    env = {
        **os.environ,
        "SSC_ENVIRONMENT": "test",
        "SSC_DATABASE_URL": f"sqlite+aiosqlite:///{var}/ssc.db",
        "SSC_REDIS_URL": "",
        "SSC_VAR_DIR": str(var),
        "SSC_KEY_DIR": str(var / "keys"),
        "SSC_KEY_ENCRYPTION_KEY": new_secret(),
        "SSC_DATA_KEY": new_secret(),
        "SSC_TOKEN_SECRET": token_secret,
        "SSC_LOG_LEVEL": "warning",
        "SSC_QR_REFRESH_AFTER": str(QR_REFRESH_AFTER),
        "SSC_AUDIT_CHECKPOINT_INTERVAL": "0",
        **{f"SSC_RATE_LIMIT_{rule.name.upper()}": "1000000/60" for rule in RateLimitRule},
    }
    subprocess.run([SSC, "migrate"], env=env, check=True, capture_output=True)
    port = free_port()
    log = var / "server.log"
    process = start_server(env, port, log=log)
    base_url = f"http://127.0.0.1:{port}"
    codec = AccessTokenCodec(decode_secret(token_secret, "token_secret"), "ssc:360000")
    server = H5Server(base_url, codec, log)
    try:
        wait_until_up(process, base_url)
        server.scanner_token = _scanner(server)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def _scanner(server: H5Server) -> str:
    with httpx.Client(base_url=server.base_url) as http:
        organisation = http.post(
            "/v1/admin/organisations",
            json={
                "name": "省博物馆",
                "venue_type": "museum",
                "region_code": "360100",
                "scenes": ["museum"],
            },
            headers=server.admin,
        )
        assert organisation.status_code == 201, organisation.text
        created = http.post(
            f"/v1/admin/organisations/{organisation.json()['id']}/scanners",
            json={"name": "Gate 1", "scenes": ["museum"]},
            headers=server.admin,
        )
        assert created.status_code == 201, created.text
        token = http.post(
            "/v1/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(created.json()["client_id"], created.json()["client_secret"]),
        )
        assert token.status_code == 200, token.text
        access: str = token.json()["access_token"]
        return access


CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page carries a CSRF token"
    return found.group(1)


def sign_in(http: httpx.Client, holder: Holder) -> None:
    """Activates the e-card on this 'browser' through the page, as a person would."""
    form = http.get("/h5/activate")
    answer = http.post(
        "/h5/activate",
        data={
            "csrf": csrf_of(form.text),
            "card_number": holder.card_number,
            "document_number": holder.document_number,
            "pin": holder.pin,
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/h5/card", answer.text


# --- in the browser ----------------------------------------------------------------------------


async def activate_in_browser(page: Page, server: H5Server, holder: Holder) -> None:
    """Binds the browser to the card through the activation page and lands on the card."""
    await page.goto(server.url("/h5/activate"))
    await page.fill("#card_number", holder.card_number)
    await page.fill("#document_number", holder.document_number)
    await page.fill("#pin", holder.pin)
    await page.click("form.form button[type=submit]")
    await page.wait_for_url(re.compile(r"/h5/card$"))


def decode_qr(png: bytes) -> str | None:
    """What a scanner reads from a screenshot: the text of the one QR code on it, or None."""
    barcodes = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    texts = [code.text for code in barcodes if code.valid]
    assert len(texts) <= 1, texts
    return texts[0] if texts else None


async def shown_token(page: Page) -> str | None:
    return decode_qr(await page.screenshot(full_page=True))
