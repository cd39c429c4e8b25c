"""Each worker's trust sync: a registration made through one worker reaches the others."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from app.config import Settings
from app.runtime import Runtime
from app.trust.background import TrustSync
from app.trust.documents import current_version
from app.trust.issuers import TRUST_VERSION
from app.trust.models import TrustedIssuerRecord
from tests.factories import admin_headers
from token_service import KeyRing, TokenIssuer, Verdict

CODE = "510000"


def foreign_token(ring: KeyRing) -> str:
    return TokenIssuer(ring, CODE, secrets.token_bytes(16)).issue(secrets.token_bytes(16)).token


async def register(client: httpx.AsyncClient, runtime: Runtime, ring: KeyRing) -> None:
    response = await client.post(
        "/v1/admin/trusted-issuers",
        json={"code": CODE, "name": "Sichuan", "token_lifetime": 60, "jwks": ring.jwks()},
        headers=admin_headers(runtime),
    )
    assert response.status_code == 201, response.text


class TestTrustSync:
    # Workers share changes through Redis; the memory store is one process, so only "servers".
    @pytest.mark.parametrize("settings", ["servers"], indirect=True)
    async def test_another_worker_accepts_the_issuer_through_pub_sub(
        self, settings: Settings, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        other = create_app(settings)
        ring = KeyRing.ephemeral()
        token = foreign_token(ring)
        async with other.router.lifespan_context(other):
            worker: Runtime = other.state.runtime
            assert worker.token_verifier.verify(token).verdict is Verdict.UNKNOWN_KEY
            await register(client, app.state.runtime, ring)
            for _ in range(100):  # bounded wait for the message, not a speed assertion
                if worker.token_verifier.verify(token).valid:
                    break
                await asyncio.sleep(0.02)
            assert worker.token_verifier.verify(token).issuer == CODE

    async def test_a_missed_message_is_caught_by_the_periodic_version_check(
        self, app: FastAPI
    ) -> None:
        runtime: Runtime = app.state.runtime
        sync = TrustSync(runtime)
        await sync.refresh_trust()
        ring = KeyRing.ephemeral()
        async with runtime.database.session() as session:
            session.add(
                TrustedIssuerRecord(
                    code=CODE, name="Sichuan", jwks=ring.jwks(), token_lifetime=60, created_by="t"
                )
            )
        token = foreign_token(ring)
        await sync.tick()
        assert runtime.token_verifier.verify(token).verdict is Verdict.UNKNOWN_KEY
        await runtime.store.incr(TRUST_VERSION)  # as another worker's change, message lost
        await sync.tick()
        assert runtime.token_verifier.verify(token).valid
        assert await current_version(runtime.store, TRUST_VERSION) >= 1
