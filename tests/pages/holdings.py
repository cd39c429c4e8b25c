"""What the holder's wallet pages show, put there through the API as the departments, banks
and payers would: a signed licence, a vault document, a consent request, a confirmed bank
account and a payment. For the page tests against the live server (`h5_server`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

import httpx

from tests.api.oidc_helpers import Browser as OidcBrowser
from tests.api.oidc_helpers import authorize_url, pkce_pair
from tests.departments import Department, create_department
from tests.factories import IssuedCard
from tests.pages.conftest import H5Server, Holder
from tests.vault_support import VAULT_TYPES, manifest, pdf, push


def _runtime(server: H5Server) -> Any:
    return SimpleNamespace(access_tokens=server.codec)


def _card(holder: Holder) -> IssuedCard:
    return IssuedCard(
        "", "", holder.card_number, holder.document_type, holder.document_number, holder.name
    )


async def department(server: H5Server, *, types: list[str] | None = None) -> Department:
    """A department with its own code (several tests share the one server)."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return await create_department(
            http, _runtime(server), code=f"360000-t{secrets.token_hex(3)}", types=types
        )


async def give_licence(server: H5Server, holder: Holder, issuer: Department) -> str:
    """A valid driving licence of the holder, signed by `issuer`; its id."""
    today = date.today()
    payload = {
        "issuer": issuer.code,
        "document_id": f"DL-{secrets.token_hex(4)}",
        "version": 1,
        "type": "driving_licence",
        "holder": {
            "document_type": holder.document_type,
            "document_number": holder.document_number,
            "name": holder.name,
        },
        "number": holder.document_number,
        "category": "C1",
        "valid_from": (today - timedelta(days=400)).isoformat(),
        "valid_until": (today + timedelta(days=2000)).isoformat(),
        "status": "valid",
    }
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        pushed = await http.post(
            "/v1/licences", json={"signed": issuer.sign(payload)}, headers=issuer.headers
        )
    assert pushed.status_code == 201, pushed.text
    licence_id: str = pushed.json()["licence_id"]
    return licence_id


async def ask_consent(server: H5Server, holder: Holder, issuer: Department) -> str:
    """The department asks to read the holder's name and driving licence for a week."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        asked = await http.post(
            "/v1/consent-requests",
            json={
                "document_type": holder.document_type,
                "document_number": holder.document_number,
                "items": ["driving_licence", "full_name"],
                "purpose": "驾驶资格核验",
                "access_days": 7,
            },
            headers=issuer.headers,
        )
    assert asked.status_code == 201, asked.text
    request_id: str = asked.json()["id"]
    return request_id


async def give_document(server: H5Server, holder: Holder, issuer: Department | None = None) -> str:
    """A skill certificate (a PDF) in the holder's vault; its id."""
    hr = issuer or await department(server, types=VAULT_TYPES)
    content = pdf("h5-page")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        pushed = await push(http, hr, content, manifest(_card(holder), content))
    assert pushed.status_code == 201, pushed.text
    document_id: str = pushed.json()["id"]
    return document_id


@dataclass
class Bank:
    code: str
    headers: dict[str, str]


async def open_bank(server: H5Server) -> Bank:
    """A cooperating bank with its API client, taking new accounts."""
    code = f"B{secrets.token_hex(3).upper()}"
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        created = await http.post(
            "/v1/admin/banks",
            json={"code": code, "name": f"Bank {code}", "agreement_start": "2020-01-01"},
            headers=server.admin,
        )
        assert created.status_code == 201, created.text
        issued = await http.post(f"/v1/admin/banks/{code}/client", headers=server.admin)
        assert issued.status_code == 201, issued.text
        token = await http.post(
            "/v1/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(issued.json()["client_id"], issued.json()["client_secret"]),
        )
        assert token.status_code == 200, token.text
    return Bank(code, {"Authorization": f"Bearer {token.json()['access_token']}"})


async def confirm_accounts(server: H5Server, bank: Bank) -> int:
    """The bank confirms every account waiting for it; how many."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        waiting = (await http.get("/v1/bank/account-confirmations", headers=bank.headers)).json()
        for row in waiting:
            confirmed = await http.post(
                f"/v1/bank/account-confirmations/{row['binding_id']}",
                json={"confirmed": True},
                headers=bank.headers,
            )
            assert confirmed.status_code == 200, confirmed.text
    return len(waiting)


async def pay_pension(server: H5Server, holder: Holder, amount_fen: int = 325000) -> None:
    """A paying department pays a pension to the card (its confirmed account)."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        created = await http.post(
            "/v1/admin/payers", json={"name": "人社厅 pensions"}, headers=server.admin
        )
        assert created.status_code == 201, created.text
        token = await http.post(
            "/v1/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(created.json()["client_id"], created.json()["client_secret"]),
        )
        paid = await http.post(
            "/v1/disbursements",
            json={
                "payment_id": f"P-{secrets.token_hex(6)}",
                "card_number": holder.card_number,
                "kind": "pension",
                "amount_fen": amount_fen,
                "value_date": date.today().isoformat(),
            },
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
    assert paid.status_code == 201, paid.text


def scanner_for(server: H5Server, scene: str, venue_type: str) -> str:
    """An access token of a scanner at a venue of `venue_type` with the one scene."""
    with httpx.Client(base_url=server.base_url) as http:
        organisation = http.post(
            "/v1/admin/organisations",
            json={
                "name": scene,
                "venue_type": venue_type,
                "region_code": "360100",
                "scenes": [scene],
            },
            headers=server.admin,
        )
        assert organisation.status_code == 201, organisation.text
        created = http.post(
            f"/v1/admin/organisations/{organisation.json()['id']}/scanners",
            json={"name": "Gate", "scenes": [scene]},
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


def verify_as(server: H5Server, scanner: str, scene: str, token: str) -> dict[str, Any]:
    answer = httpx.post(
        server.url("/v1/verify"),
        json={"token": token, "scene": scene},
        headers={"Authorization": f"Bearer {scanner}"},
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def phone_session(server: H5Server, holder: Holder, device: str) -> dict[str, str]:
    """The holder's phone app (another device than the browser): its bearer headers."""
    answer = httpx.post(
        server.url("/v1/ecard/activate"),
        json={
            "card_number": holder.card_number,
            "document_number": holder.document_number,
            "device_id": device,
            "pin": holder.pin,
        },
    )
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def link_family(server: H5Server, guardian: Holder, ward: Holder) -> str:
    """The guardian may show the ward's QR (invited, accepted with the ward's PIN); the link."""
    invited = httpx.post(
        server.url("/v1/me/family/invitations"),
        json={"ward_card_number": ward.card_number, "scopes": ["show_qr"]},
        headers=phone_session(server, guardian, f"phone-{secrets.token_hex(4)}"),
    )
    assert invited.status_code == 201, invited.text
    link_id: str = invited.json()["id"]
    accepted = httpx.post(
        server.url(f"/v1/me/family/invitations/{link_id}/accept"),
        json={"pin": ward.pin},
        headers=phone_session(server, ward, f"phone-{secrets.token_hex(4)}"),
    )
    assert accepted.status_code == 200, accepted.text
    return link_id


def linked_channel(server: H5Server, holder: Holder) -> tuple[dict[str, str], dict[str, str]]:
    """A registered channel linked to the holder (who approves with the PIN in the phone app);
    returns the channel's headers for the holder's channel session and the phone's headers."""
    with httpx.Client(base_url=server.base_url) as http:
        phone = http.post(
            "/v1/ecard/activate",
            json={
                "card_number": holder.card_number,
                "document_number": holder.document_number,
                "device_id": "phone-1",
                "pin": holder.pin,
            },
        )
        assert phone.status_code == 201, phone.text
        app = {"Authorization": f"Bearer {phone.json()['access_token']}"}
        created = http.post(
            "/v1/admin/channels",
            json={"name": "赣服通", "channel_type": "city_app"},
            headers=server.admin,
        )
        assert created.status_code == 201, created.text
        token = http.post(
            "/v1/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(created.json()["client_id"], created.json()["client_secret"]),
        )
        channel = {"Authorization": f"Bearer {token.json()['access_token']}"}
        asked = http.post("/v1/channel/link-requests", headers=channel)
        request_id = asked.json()["request_id"]
        approved = http.post(
            f"/v1/me/channel-link-requests/{request_id}/approve",
            json={"pin": holder.pin},
            headers=app,
        )
        assert approved.status_code == 204, approved.text
        redeemed = http.post(f"/v1/channel/link-requests/{request_id}/session", headers=channel)
        assert redeemed.status_code == 200, redeemed.text
        session = {"Authorization": f"Bearer {redeemed.json()['access_token']}"}
        return session, app


async def oidc_consent(server: H5Server, holder: Holder, name: str = "赣州市民中心") -> str:
    """An app (an OpenID Connect relying party) the holder logged in to with the card and
    allowed to receive `openid profile`; its client id."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        created = await http.post(
            "/v1/admin/relying-parties",
            json={
                "name": name,
                "redirect_uris": ["https://app.example/callback"],
                "scopes": ["openid", "profile"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            headers=server.admin,
        )
        assert created.status_code == 201, created.text
        client_id: str = created.json()["client_id"]
        _, challenge = pkce_pair()
        url = authorize_url(
            server.base_url,
            client_id,
            "https://app.example/callback",
            challenge,
            scope="openid profile",
        )
        answer = await OidcBrowser(http).authorize(url, holder.card_number, holder.pin)
    assert "code" in answer, answer
    return client_id
