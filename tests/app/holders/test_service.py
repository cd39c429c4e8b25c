"""Holder rules below the HTTP layer: device keys, failure counting, refresh races."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.cards import service as cards
from app.cards.models import Card
from app.config import Settings
from app.errors import DomainError
from app.holders import service
from app.holders.devices import normalise_device_key
from app.holders.errors import InvalidCredentials, InvalidDeviceKey, PinLocked, RefreshTokenReused
from app.holders.sessions import HolderSession
from app.runtime import Runtime
from tests.factories import DEFAULT_PIN, OTHER_PIN, resident_id


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    started = await Runtime.start(settings)
    yield started
    await started.close()


async def activated(runtime: Runtime) -> tuple[Card, str, HolderSession]:
    document_number = resident_id()
    async with runtime.database.session() as session:
        submitted = await cards.submit_application(
            session,
            runtime,
            cards.ApplicationForm("resident_id", document_number, "李四", "13700137000", "BOC"),
        )
        card = await cards.approve_application(
            session, runtime, submitted.application.id, "admin:test"
        )
    opened = await service.activate(
        runtime, service.Activation(card.card_number, document_number, "phone-a", DEFAULT_PIN)
    )
    return card, document_number, opened


class TestDeviceKeys:
    def test_a_p256_key_is_kept_in_canonical_base64(self) -> None:
        der = (
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        urlsafe = base64.urlsafe_b64encode(der).decode().rstrip("=")
        assert normalise_device_key(urlsafe) == base64.b64encode(der).decode()

    @pytest.mark.parametrize("encoded", ["", "@@@", base64.b64encode(b"not a key").decode()])
    def test_anything_else_is_refused(self, encoded: str) -> None:
        with pytest.raises(InvalidDeviceKey):
            normalise_device_key(encoded)

    def test_other_curves_are_refused(self) -> None:
        der = (
            ec.generate_private_key(ec.SECP384R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        with pytest.raises(InvalidDeviceKey):
            normalise_device_key(base64.b64encode(der).decode())


class TestFailureCounting:
    async def test_concurrent_wrong_pins_are_all_counted(self, runtime: Runtime) -> None:
        card, _, _ = await activated(runtime)
        limit = runtime.settings.pin_max_failures
        attempt = service.Login(OTHER_PIN, "phone-a", card_number=card.card_number)

        async def guess() -> DomainError:
            try:
                await service.login(runtime, attempt)
            except DomainError as error:
                return error
            raise AssertionError("a wrong PIN was accepted")

        outcomes = await asyncio.gather(*(guess() for _ in range(limit)))
        assert sum(isinstance(o, InvalidCredentials) for o in outcomes) == limit - 1
        assert sum(isinstance(o, PinLocked) for o in outcomes) == 1
        with pytest.raises(PinLocked):
            await service.login(
                runtime, service.Login(DEFAULT_PIN, "phone-a", card_number=card.card_number)
            )


class TestRefreshRace:
    async def test_two_refreshes_of_one_token_end_the_family(self, runtime: Runtime) -> None:
        _, _, opened = await activated(runtime)

        async def attempt() -> HolderSession | DomainError:
            try:
                return await service.refresh(runtime, opened.refresh_token)
            except DomainError as error:
                return error

        outcomes = await asyncio.gather(attempt(), attempt())
        winners = [o for o in outcomes if isinstance(o, HolderSession)]
        assert any(isinstance(o, RefreshTokenReused) for o in outcomes)
        for winner in winners:
            with pytest.raises(DomainError):
                await service.refresh(runtime, winner.refresh_token)
