"""Builders of test data, shared by the test modules; each test owns what it builds.

Holders: `create_active_holder(client, app)` walks the real journey (apply, approve as an
administrator, activate on a phone) and returns what a phone holds afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from sqlmodel import select

from app.audit.models import AuditEvent
from app.cards.documents import mod11_2_check_character
from app.cards.models import Card, CardStatus, Person
from app.cards.service import card_snapshot
from app.cards.snapshot import publish_card_snapshot
from app.runtime import Runtime
from app.security.roles import REGION_CLAIM, ROLE_CLAIM, AdminRole
from app.security.tokens import PrincipalKind
from token_service import TokenIssuer

# --- scanners, organisations and QR tokens for the verify path -------------------------------


@dataclass(frozen=True, slots=True)
class ScannerCredentials:
    client_id: str
    client_secret: str
    organisation_id: str
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def admin_headers(
    runtime: Runtime,
    client_id: str = "adm_test",
    *,
    role: AdminRole | None = None,
    region: str | None = None,
) -> dict[str, str]:
    """A bearer header of an admin token, minted directly (the token endpoint has its tests);
    without a role, a token as issued before roles (a provincial administrator's)."""
    extra = {} if role is None else {ROLE_CLAIM: role.value}
    if region is not None:
        extra[REGION_CLAIM] = region
    issued = runtime.access_tokens.issue(PrincipalKind.admin, client_id, ["admin"], 600, extra)
    return {"Authorization": f"Bearer {issued.token}"}


CITY = "360100"
"""The city of `role_headers`' city administrator (Nanchang)."""


def role_headers(runtime: Runtime, role: AdminRole, region: str = CITY) -> dict[str, str]:
    """The admin header of `role` (a city_admin's of `region`), client id `adm_<role>`."""
    city = region if role is AdminRole.city_admin else None
    return admin_headers(runtime, f"adm_{role.value}", role=role, region=city)


async def create_organisation(
    http: httpx.AsyncClient,
    runtime: Runtime,
    scenes: list[str] | None = None,
    name: str = "Test venue",
) -> str:
    response = await http.post(
        "/v1/admin/organisations",
        json={
            "name": name,
            "venue_type": "museum",
            "region_code": "360100",
            "scenes": scenes or ["museum", "hotel"],
        },
        headers=admin_headers(runtime),
    )
    assert response.status_code == 201, response.text
    organisation_id: str = response.json()["id"]
    return organisation_id


async def create_scanner(
    http: httpx.AsyncClient,
    runtime: Runtime,
    organisation_id: str | None = None,
    scenes: list[str] | None = None,
) -> ScannerCredentials:
    """A scanner (through the admin API) with an access token from `/v1/oauth/token`."""
    organisation_id = organisation_id or await create_organisation(http, runtime)
    created = await http.post(
        f"/v1/admin/organisations/{organisation_id}/scanners",
        json={"name": "Gate", "scenes": scenes or ["museum"]},
        headers=admin_headers(runtime),
    )
    assert created.status_code == 201, created.text
    client_id, client_secret = created.json()["client_id"], created.json()["client_secret"]
    token = await http.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, client_secret),
    )
    assert token.status_code == 200, token.text
    return ScannerCredentials(
        client_id, client_secret, organisation_id, token.json()["access_token"]
    )


async def create_scannable_card(
    runtime: Runtime, *, name: str = "张三丰", status: CardStatus = CardStatus.active
) -> Card:
    """A card written straight to the database with its snapshot published, as approval does."""
    person = Person(
        document_type="resident_id",
        document_index=secrets.token_hex(32),
        document_number_sealed=runtime.pii.seal("document_number", "110101199003071234"),
        name_sealed=runtime.pii.seal("name", name),
        birth_date_sealed=runtime.pii.seal("birth_date", "1990-03-07"),
        phone_sealed=runtime.pii.seal("phone", "13800138000"),
        phone_index=secrets.token_hex(32),
    )
    card = Card(
        person_id=person.id,
        card_number=f"T{secrets.randbelow(10**12):012d}",
        ssn_sealed=runtime.pii.seal("ssn", "110101199003071234"),
        ssn_index=secrets.token_hex(32),
        region_code="360100",
        bank_code="ICBC",
        handle=secrets.token_hex(16),
        status_index=secrets.randbelow(2**31),
        status=status.value,
    )
    async with runtime.database.session() as session:
        session.add(person)
        await session.flush()
        session.add(card)
    await publish_card_snapshot(
        runtime.store, card.handle, card_snapshot(runtime.pii, card, person)
    )
    return card


def qr_token(runtime: Runtime, card: Card, clock: Callable[[], float] = time.time) -> str:
    """A QR token of `card` signed with the service's active key (at `clock`'s time)."""
    issuer = TokenIssuer(
        runtime.keyring,
        runtime.settings.issuer,
        runtime.card_handle_key,
        lifetime=runtime.settings.token_lifetime,
        clock=clock,
    )
    return issuer.issue(bytes.fromhex(card.handle)).token


# --- holders: application, approval, activation ----------------------------------------------

DEFAULT_PIN = "284617"
"""A PIN that passes the PIN rules (no repeats, runs or groups)."""
OTHER_PIN = "730415"


def resident_id(
    born: date | None = None, *, region: str = "360102", male: bool | None = None
) -> str:
    """A well-formed, random mainland resident ID number (GB 11643 check character)."""
    born = born or date(1960, 1, 1) + timedelta(days=secrets.randbelow(40 * 365))
    sequence = secrets.randbelow(1000)
    if male is not None and sequence % 2 != int(male):
        sequence = (sequence + 1) % 1000
    body = f"{region}{born:%Y%m%d}{sequence:03d}"
    return body + mod11_2_check_character(body)


def distinct_resident_ids() -> Iterator[str]:
    """Resident ID numbers none of which repeats: `resident_id` draws from about 15 million,
    so hundreds of applications in one test would otherwise collide now and then (409)."""
    seen: set[str] = set()
    while True:
        number = resident_id()
        if number not in seen:
            seen.add(number)
            yield number


def residence_permit(region: str = "810000") -> str:
    """A well-formed Hong Kong (810000), Macau (820000) or Taiwan (830000) permit number."""
    return resident_id(region=region)


def application_body(**overrides: Any) -> dict[str, Any]:
    """A valid application for a fresh random person; keyword arguments replace fields."""
    body: dict[str, Any] = {
        "document_type": "resident_id",
        "document_number": resident_id(),
        "name": "张小三",
        "phone": f"138{secrets.randbelow(10**8):08d}",
        "bank_code": "ICBC",
    }
    body.update(overrides)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class IssuedCard:
    application_id: str
    card_id: str
    card_number: str
    document_type: str
    document_number: str
    name: str


async def issue_card(client: httpx.AsyncClient, app: FastAPI, **overrides: Any) -> IssuedCard:
    """Applies and approves as an administrator; returns the issued card."""
    body = application_body(**overrides)
    applied = await client.post("/v1/applications", json=body)
    assert applied.status_code == 201, applied.text
    application_id = applied.json()["id"]
    approved = await client.post(
        f"/v1/admin/applications/{application_id}/approve",
        headers=admin_headers(app.state.runtime),
    )
    assert approved.status_code == 200, approved.text
    card = approved.json()
    return IssuedCard(
        application_id=application_id,
        card_id=card["card_id"],
        card_number=card["card_number"],
        document_type=body["document_type"],
        document_number=body["document_number"],
        name=body["name"],
    )


@dataclass(frozen=True)
class ActiveHolder:
    """A card with the e-card activated on one phone, and that phone's session."""

    card: IssuedCard
    pin: str
    device_id: str
    access_token: str
    refresh_token: str

    @property
    def card_number(self) -> str:
        return self.card.card_number

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


async def activate(
    client: httpx.AsyncClient,
    card: IssuedCard,
    *,
    pin: str = DEFAULT_PIN,
    device_id: str | None = None,
    device_public_key: str | None = None,
) -> httpx.Response:
    """POSTs an activation of `card` on a phone (a new random one unless `device_id`)."""
    body: dict[str, Any] = {
        "card_number": card.card_number,
        "document_number": card.document_number,
        "device_id": device_id or f"phone-{uuid.uuid4().hex[:12]}",
        "pin": pin,
    }
    if device_public_key is not None:
        body["device_public_key"] = device_public_key
    return await client.post("/v1/ecard/activate", json=body)


async def create_active_holder(
    client: httpx.AsyncClient,
    app: FastAPI,
    *,
    pin: str = DEFAULT_PIN,
    device_id: str | None = None,
    **application_overrides: Any,
) -> ActiveHolder:
    """Apply, approve, activate: a holder whose phone may now fetch QR codes."""
    card = await issue_card(client, app, **application_overrides)
    device_id = device_id or f"phone-{uuid.uuid4().hex[:12]}"
    activated = await activate(client, card, pin=pin, device_id=device_id)
    assert activated.status_code == 201, activated.text
    session = activated.json()
    return ActiveHolder(
        card=card,
        pin=pin,
        device_id=device_id,
        access_token=session["access_token"],
        refresh_token=session["refresh_token"],
    )


# --- the persisted audit log -----------------------------------------------------------------


async def persisted_audit(
    runtime: Runtime,
    action: str,
    matches: Callable[[dict[str, Any]], bool] = lambda data: True,
    *,
    count: int = 1,
    timeout: float = 10.0,
) -> list[dict[str, Any]]:
    """The `data` of the persisted audit rows of `action` that `matches` accepts, once at
    least `count` are stored by the app's audit consumer (or `timeout` has passed), after a
    short settle so that an extra row would show."""

    async def rows() -> list[dict[str, Any]]:
        async with runtime.database.session() as session:
            stored = (
                await session.exec(select(AuditEvent).where(AuditEvent.action == action))
            ).all()
        found = [orjson.loads(row.data) for row in stored]
        return [data for data in found if matches(data)]

    deadline = time.monotonic() + timeout
    while len(await rows()) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    return await rows()
