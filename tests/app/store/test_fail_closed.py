"""Fail closed, recover by itself (issue 6, point 6), on a real `redis-server` this test owns.

The bounds asserted here are correctness properties of the store's timeouts, not speed: a
scanner must get 503 (never `valid`) within 1 s of Redis going away, and verification must
work again within 5 s of Redis coming back, without restarting the app.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from app.cards.models import Card
from app.config import load_settings, new_secret
from app.runtime import Runtime
from tests.factories import ScannerCredentials, create_scannable_card, create_scanner, qr_token
from tests.servers import OwnRedis

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed"
)

DOWN_BOUND = 1.0
RECOVERY_BOUND = 5.0


@pytest.fixture
async def app_on_own_redis(
    own_redis: OwnRedis, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[FastAPI]:
    database = tmp_path / "ssc.db"
    shutil.copyfile(sqlite_template, database)
    settings = load_settings(
        environment="test",
        var_dir=tmp_path / "var",
        key_dir=tmp_path / "var" / "keys",
        key_encryption_key=new_secret(),
        data_key=new_secret(),
        token_secret=new_secret(),
        database_url=f"sqlite+aiosqlite:///{database}",
        redis_url=own_redis.url,
        redis_namespace="failclosed",
        clock_skew=1,  # a restart loses the store epoch: fresh tokens pass 2 x skew later
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app_on_own_redis: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_on_own_redis)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def runtime(app_on_own_redis: FastAPI) -> Runtime:
    runtime: Runtime = app_on_own_redis.state.runtime
    return runtime


async def timed_verify(
    client: httpx.AsyncClient, scanner: ScannerCredentials, token: str
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.post("/v1/verify", json={"token": token}, headers=scanner.headers)
    return response, time.monotonic() - started


async def verify_until_valid(
    client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials, card: Card
) -> None:
    """Fresh tokens of `card` until one verifies `valid`; 503 meanwhile, or, after the store
    came back empty, `reissue_required` until the new epoch's margin has passed."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_BOUND:
        response, _ = await timed_verify(client, scanner, qr_token(runtime, card))
        if response.status_code == 200:
            if response.json()["verdict"] == "reissue_required":
                await asyncio.sleep(0.1)
                continue
            assert response.json()["verdict"] == "valid"
            return
        assert response.status_code == 503, response.text
        await asyncio.sleep(0.1)
    pytest.fail(f"verify did not recover within {RECOVERY_BOUND} s")


class TestFailClosed:
    async def test_stopped_redis_answers_503_fast_then_recovers_after_restart(
        self, client: httpx.AsyncClient, runtime: Runtime, own_redis: OwnRedis
    ) -> None:
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        card = await create_scannable_card(runtime)
        token = qr_token(runtime, card)
        own_redis.stop()
        for _ in range(3):  # every pooled connection fails closed, not only the first
            response, elapsed = await timed_verify(client, scanner, token)
            assert response.status_code == 503
            assert "verdict" not in response.json()
            assert elapsed < DOWN_BOUND
        own_redis.start()  # same port, empty: principals and snapshots come back from SQL
        await verify_until_valid(client, runtime, scanner, card)

    async def test_frozen_redis_times_out_into_503_and_recovers_when_it_answers(
        self, client: httpx.AsyncClient, runtime: Runtime, own_redis: OwnRedis
    ) -> None:
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        card = await create_scannable_card(runtime)
        token = qr_token(runtime, card)
        own_redis.freeze()
        try:
            response, elapsed = await timed_verify(client, scanner, token)
        finally:
            own_redis.thaw()
        assert response.status_code == 503
        assert elapsed < DOWN_BOUND
        await verify_until_valid(client, runtime, scanner, card)
