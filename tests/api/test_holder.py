"""E-card activation, holder sessions, PIN lockout, devices, the own card and the phone's QR."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
import zxingcpp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from fastapi import FastAPI
from PIL import Image
from sqlmodel import col, update

from api.app import create_app
from app.cards.models import Card, CardStatus
from app.config import Settings
from app.runtime import Runtime
from tests.factories import (
    DEFAULT_PIN,
    OTHER_PIN,
    activate,
    admin_headers,
    bearer,
    create_active_holder,
    issue_card,
)
from token_service import KeyDirectory, TokenVerifier, Verdict
from token_service.keys import b64url

PROBLEM = "application/problem+json"


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == PROBLEM, response.text
    kind: str = response.json()["type"]
    return kind.rsplit("/", 1)[-1]


def spki(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@asynccontextmanager
async def serving(
    settings: Settings, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """A second service on the fixture's database and store, with some settings changed."""
    application = create_app(settings.model_copy(update=overrides))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http, application


async def login(
    client: httpx.AsyncClient, card_number: str, pin: str, device_id: str
) -> httpx.Response:
    return await client.post(
        "/v1/auth/login", json={"card_number": card_number, "pin": pin, "device_id": device_id}
    )


class TestActivation:
    async def test_first_activation_sets_the_pin_and_opens_a_session(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        card = await client.get("/v1/me/card", headers=holder.headers)
        assert card.status_code == 200
        assert card.json()["status"] == "active"
        assert card.json()["name"] == "张*三"
        assert card.json()["card_number"].endswith(holder.card_number[-4:])
        assert holder.card_number not in card.text
        assert holder.refresh_token.startswith("rt_")

    async def test_a_weak_first_pin_is_422(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        card = await issue_card(client, app)
        response = await activate(client, card, pin="123456")
        assert response.status_code == 422
        assert problem_type(response) == "weak-pin"

    async def test_a_wrong_document_number_is_401_like_a_wrong_pin(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        card = await issue_card(client, app)
        wrong_document = await client.post(
            "/v1/ecard/activate",
            json={
                "card_number": card.card_number,
                "document_number": "11010519491231002X",
                "device_id": "phone-1",
                "pin": DEFAULT_PIN,
            },
        )
        unknown_card = await client.post(
            "/v1/ecard/activate",
            json={
                "card_number": "360000000000",
                "document_number": card.document_number,
                "device_id": "phone-1",
                "pin": DEFAULT_PIN,
            },
        )
        assert wrong_document.status_code == unknown_card.status_code == 401
        assert wrong_document.json()["detail"] == unknown_card.json()["detail"]

    async def test_a_new_phone_needs_the_current_pin(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        wrong = await activate(client, holder.card, pin=OTHER_PIN)
        right = await activate(client, holder.card, pin=DEFAULT_PIN)
        assert wrong.status_code == 401
        assert right.status_code == 201

    async def test_a_device_key_must_be_a_p256_spki(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        card = await issue_card(client, app)
        ed_key = spki(ed25519.Ed25519PrivateKey.generate().public_key())
        refused = await activate(client, card, device_public_key=ed_key)
        garbage = await activate(client, card, device_public_key="not base64!")
        accepted = await activate(
            client,
            card,
            device_public_key=spki(ec.generate_private_key(ec.SECP256R1()).public_key()),
        )
        assert (refused.status_code, garbage.status_code) == (422, 422)
        assert problem_type(refused) == "invalid-device-key"
        assert accepted.status_code == 201


class TestLogin:
    async def test_login_by_card_number_or_document_on_the_activated_phone(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        by_number = await login(client, holder.card_number, holder.pin, holder.device_id)
        by_document = await client.post(
            "/v1/auth/login",
            json={
                "document_type": "resident_id",
                "document_number": holder.card.document_number.lower(),
                "pin": holder.pin,
                "device_id": holder.device_id,
            },
        )
        assert by_number.status_code == by_document.status_code == 200
        assert by_number.headers["cache-control"] == "no-store"
        me = await client.get("/v1/me/card", headers=bearer(by_document.json()["access_token"]))
        assert me.status_code == 200

    async def test_a_phone_without_the_e_card_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        response = await login(client, holder.card_number, holder.pin, "someone-elses-phone")
        assert response.status_code == 403
        assert problem_type(response) == "device-not-activated"

    async def test_unknown_card_and_wrong_pin_answer_alike(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        wrong_pin = await login(client, holder.card_number, OTHER_PIN, holder.device_id)
        unknown = await login(client, "360000000000", holder.pin, holder.device_id)
        assert wrong_pin.status_code == unknown.status_code == 401
        assert problem_type(wrong_pin) == problem_type(unknown) == "invalid-credentials"
        assert wrong_pin.json()["detail"] == unknown.json()["detail"]

    async def test_both_card_number_and_document_is_a_validation_error(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            "/v1/auth/login",
            json={
                "card_number": "360000000000",
                "document_type": "resident_id",
                "document_number": "11010519491231002X",
                "pin": DEFAULT_PIN,
                "device_id": "phone",
            },
        )
        assert response.status_code == 422


class TestPinLockout:
    async def test_five_wrong_pins_lock_even_the_right_pin_out(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        limit = app.state.runtime.settings.pin_max_failures
        statuses = [
            (await login(client, holder.card_number, OTHER_PIN, holder.device_id)).status_code
            for _ in range(limit)
        ]
        locked = await login(client, holder.card_number, holder.pin, holder.device_id)
        assert statuses == [401] * (limit - 1) + [423]
        assert locked.status_code == 423
        assert problem_type(locked) == "pin-locked"
        assert datetime.fromisoformat(locked.json()["unlocks_at"]) > datetime.now().astimezone()

    async def test_the_lock_ends_after_the_lockout_time(self, settings: Settings) -> None:
        async with serving(settings, pin_lockout_seconds=1) as (client, app):
            holder = await create_active_holder(client, app)
            for _ in range(app.state.runtime.settings.pin_max_failures):
                await login(client, holder.card_number, OTHER_PIN, holder.device_id)
            locked = await login(client, holder.card_number, holder.pin, holder.device_id)
            await asyncio.sleep(1.2)
            after = await login(client, holder.card_number, holder.pin, holder.device_id)
        assert (locked.status_code, after.status_code) == (423, 200)

    async def test_a_right_pin_resets_the_count(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        limit = app.state.runtime.settings.pin_max_failures
        for _ in range(limit - 1):
            await login(client, holder.card_number, OTHER_PIN, holder.device_id)
        assert (
            await login(client, holder.card_number, holder.pin, holder.device_id)
        ).status_code == 200
        after = await login(client, holder.card_number, OTHER_PIN, holder.device_id)
        assert after.status_code == 401


class TestRefresh:
    async def test_refresh_rotates_and_reuse_revokes_the_family(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        first = await client.post("/v1/auth/refresh", json={"refresh_token": holder.refresh_token})
        assert first.status_code == 200
        rotated = first.json()["refresh_token"]
        assert rotated != holder.refresh_token
        reused = await client.post("/v1/auth/refresh", json={"refresh_token": holder.refresh_token})
        assert reused.status_code == 401
        assert problem_type(reused) == "refresh-token-reused"
        after_revocation = await client.post("/v1/auth/refresh", json={"refresh_token": rotated})
        assert after_revocation.status_code == 401
        assert problem_type(after_revocation) == "invalid-refresh-token"

    async def test_other_families_survive_a_reuse(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        other = await login(client, holder.card_number, holder.pin, holder.device_id)
        await client.post("/v1/auth/refresh", json={"refresh_token": holder.refresh_token})
        await client.post("/v1/auth/refresh", json={"refresh_token": holder.refresh_token})
        survivor = await client.post(
            "/v1/auth/refresh", json={"refresh_token": other.json()["refresh_token"]}
        )
        assert survivor.status_code == 200

    @pytest.mark.parametrize("token", ["rt_unknown", "x" * 256, "eyJhbGciOi"])
    async def test_unknown_tokens_are_401(self, client: httpx.AsyncClient, token: str) -> None:
        response = await client.post("/v1/auth/refresh", json={"refresh_token": token})
        assert response.status_code == 401
        assert problem_type(response) == "invalid-refresh-token"


class TestPinChange:
    async def test_the_old_pin_is_required(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        holder = await create_active_holder(client, app)
        wrong = await client.post(
            "/v1/me/pin", json={"old_pin": OTHER_PIN, "new_pin": "905183"}, headers=holder.headers
        )
        changed = await client.post(
            "/v1/me/pin", json={"old_pin": holder.pin, "new_pin": "905183"}, headers=holder.headers
        )
        assert wrong.status_code == 401
        assert changed.status_code == 204
        assert (
            await login(client, holder.card_number, holder.pin, holder.device_id)
        ).status_code == 401
        assert (
            await login(client, holder.card_number, "905183", holder.device_id)
        ).status_code == 200

    async def test_a_weak_new_pin_is_422(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        holder = await create_active_holder(client, app)
        response = await client.post(
            "/v1/me/pin", json={"old_pin": holder.pin, "new_pin": "111111"}, headers=holder.headers
        )
        assert response.status_code == 422
        assert problem_type(response) == "weak-pin"


class TestDevices:
    async def test_an_unbound_phone_loses_its_sessions_and_its_qr(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        second = await activate(client, holder.card, device_id="second-phone")
        unbound = await client.delete("/v1/me/devices/second-phone", headers=holder.headers)
        assert unbound.status_code == 204
        second_session = second.json()
        qr = await client.get("/v1/me/qr", headers=bearer(second_session["access_token"]))
        refresh = await client.post(
            "/v1/auth/refresh", json={"refresh_token": second_session["refresh_token"]}
        )
        assert qr.status_code == 403
        assert problem_type(qr) == "device-unbound"
        assert refresh.status_code == 401
        again = await client.delete("/v1/me/devices/second-phone", headers=holder.headers)
        assert again.status_code == 404

    async def test_re_activating_an_unbound_phone_binds_it_again(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        await client.delete(f"/v1/me/devices/{holder.device_id}", headers=holder.headers)
        again = await activate(client, holder.card, device_id=holder.device_id)
        assert again.status_code == 201
        qr = await client.get("/v1/me/qr", headers=bearer(again.json()["access_token"]))
        assert qr.status_code == 200


def verifier_of(runtime: Runtime) -> TokenVerifier:
    issuer = runtime.settings.issuer
    return TokenVerifier(
        KeyDirectory({issuer: runtime.keyring}),
        trusted_issuers={issuer},
        handle_keys={issuer: runtime.card_handle_key},
    )


class TestQr:
    async def test_the_token_verifies_and_names_the_card(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        runtime: Runtime = app.state.runtime
        holder = await create_active_holder(client, app)
        response = await client.get("/v1/me/qr", headers=holder.headers)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        check = verifier_of(runtime).verify(body["token"])
        assert check.verdict is Verdict.VALID
        async with runtime.database.session() as session:
            card = await session.get(Card, uuid.UUID(holder.card.card_id))
        assert card is not None
        assert check.card_handle == bytes.fromhex(card.handle)
        assert body["refresh_after"] == runtime.settings.qr_refresh_after
        # One key id format everywhere: the JWKS's (base64url), not hex.
        jwks = (await client.get("/.well-known/jwks.json")).json()
        assert check.kid is not None and body["kid"] == b64url(check.kid)
        assert body["kid"] in {key["kid"] for key in jwks["keys"]}
        assert body["png_url"] == "/v1/me/qr.png" and body["svg_url"] == "/v1/me/qr.svg"
        assert body["upcoming"] == []

    async def test_prefetched_tokens_start_one_refresh_period_apart(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        response = await client.get("/v1/me/qr?prefetch=3", headers=holder.headers)
        body = response.json()
        step = body["refresh_after"]
        starts = [datetime.fromisoformat(t["not_before"]) for t in body["upcoming"]]
        assert len(starts) == 3
        gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(starts)]
        assert gaps == [step, step]
        first_expiry = datetime.fromisoformat(body["expires_at"])
        assert starts[0] < first_expiry
        assert len({body["token"], *(t["token"] for t in body["upcoming"])}) == 4

    @pytest.mark.parametrize("prefetch", ["6", "-1", "many"])
    async def test_prefetch_out_of_range_is_422(
        self, client: httpx.AsyncClient, app: FastAPI, prefetch: str
    ) -> None:
        holder = await create_active_holder(client, app)
        response = await client.get(f"/v1/me/qr?prefetch={prefetch}", headers=holder.headers)
        assert response.status_code == 422

    @pytest.mark.parametrize("large", [False, True])
    async def test_the_png_decodes_to_a_valid_token(
        self, client: httpx.AsyncClient, app: FastAPI, large: bool
    ) -> None:
        holder = await create_active_holder(client, app)
        response = await client.get(
            f"/v1/me/qr.png?large={str(large).lower()}", headers=holder.headers
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert response.headers["cache-control"] == "no-store"
        with Image.open(io.BytesIO(response.content)) as image:
            (barcode,) = zxingcpp.read_barcodes(image)
        assert verifier_of(app.state.runtime).verify(barcode.text).verdict is Verdict.VALID

    async def test_the_svg_is_an_svg(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        holder = await create_active_holder(client, app)
        response = await client.get("/v1/me/qr.svg", headers=holder.headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert b"<svg" in response.content

    async def test_a_lost_card_gets_no_token(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        holder = await create_active_holder(client, app)
        async with app.state.runtime.database.session() as session:
            await session.exec(
                update(Card)
                .where(col(Card.card_number) == holder.card_number)
                .values(status=CardStatus.lost)
            )
        for path in ("/v1/me/qr", "/v1/me/qr.png", "/v1/me/qr.svg"):
            response = await client.get(path, headers=holder.headers)
            assert response.status_code == 409
            assert problem_type(response) == "card-lost"

    async def test_an_admin_or_anonymous_caller_gets_no_token(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        assert (await client.get("/v1/me/qr")).status_code == 401
        as_admin = await client.get("/v1/me/qr", headers=admin_headers(app.state.runtime))
        assert as_admin.status_code == 401
