"""Replay protection when the store loses its data (issue 10, defect 5b): a token answered
`valid` before the loss is never `valid` again; it is `reissue_required`, and so is every
token valid from before the new store epoch; a token issued after it works."""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from app.config import Settings, load_settings, new_secret
from app.runtime import Runtime
from app.store import EPOCH_KEY
from app.verification.epoch import EPOCH_ACTION
from tests.factories import (
    ScannerCredentials,
    create_scannable_card,
    create_scanner,
    persisted_audit,
    qr_token,
)
from tests.servers import OwnRedis

TOKENS = 20
RECOVERY_BOUND = 10.0
"""Seconds within which the app must answer again after Redis is back (a correctness bound
of its reconnection, far above what it needs)."""


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


async def answer(client: httpx.AsyncClient, scanner: ScannerCredentials, token: str) -> str:
    """The verdict, waiting out the 503s of a store coming back."""
    deadline = time.monotonic() + RECOVERY_BOUND
    while True:
        response = await client.post("/v1/verify", json={"token": token}, headers=scanner.headers)
        if response.status_code == 200:
            verdict: str = response.json()["verdict"]
            return verdict
        assert response.status_code == 503, response.text
        assert time.monotonic() < deadline, "the store did not come back"
        await asyncio.sleep(0.05)


def resets(metrics: str) -> float:
    (line,) = [x for x in metrics.splitlines() if x.startswith("ssc_store_epoch_resets_total ")]
    return float(line.split()[1])


async def wait_until(moment: float) -> None:
    """Until the wall clock's whole second (a token's `iat`) has reached `moment`."""
    await asyncio.sleep(max(0.0, math.ceil(moment) - time.time() + 0.01))


class TestStoreLoss:
    """On both stores, through the API: the loss simulated by removing the epoch and the
    replay records, as a flush does."""

    async def test_a_token_answered_valid_before_the_loss_is_reissue_required_after(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        card = await create_scannable_card(runtime)
        token = qr_token(runtime, card)
        assert await answer(client, scanner, token) == "valid"
        assert await answer(client, scanner, token) == "replayed"
        cti = runtime.token_verifier.verify(token).cti
        assert cti is not None
        before = runtime.store_epochs.current
        assert before is not None
        await runtime.store.delete(EPOCH_KEY)
        await runtime.store.delete(f"cti:{cti.hex()}")
        assert await answer(client, scanner, token) == "reissue_required"
        assert await answer(client, scanner, token) == "reissue_required"
        assert runtime.store_epochs.current not in (None, before)
        assert resets((await client.get("/metrics")).text) == 1
        (event,) = await persisted_audit(runtime, EPOCH_ACTION, lambda data: data["after_loss"])
        assert event["previous"] == before.id
        refused = await persisted_audit(
            runtime,
            "verify",
            lambda data: data.get("cti") == cti.hex() and data.get("verdict") == "reissue_required",
            count=2,
        )
        assert len(refused) == 2

    async def test_the_periodic_check_notices_a_loss_without_any_scan(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        before = await runtime.store_epochs.check()
        assert await runtime.store_epochs.check() == before  # nothing changed: nothing done
        await runtime.store.delete(EPOCH_KEY)
        after = await runtime.store_epochs.check()
        assert after != before and after.after_loss
        assert (
            runtime.store_epochs.refuse_before == after.started_at + 2 * runtime.settings.clock_skew
        )
        assert await runtime.store.get(EPOCH_KEY) == after.value
        assert resets((await client.get("/metrics")).text) == 1
        events = await persisted_audit(runtime, EPOCH_ACTION, count=2)
        assert [(event["epoch"], event["after_loss"]) for event in events] == [
            (before.id, False),
            (after.id, True),
        ]

    async def test_a_fresh_store_refuses_nothing(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        """The first epoch of a deployment: no token can have been recorded before it."""
        epoch = runtime.store_epochs.current
        assert epoch is not None and not epoch.after_loss
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        card = await create_scannable_card(runtime)
        assert await answer(client, scanner, qr_token(runtime, card)) == "valid"
        assert resets((await client.get("/metrics")).text) == 0


def own_settings(tmp_path: Path, sqlite_template: Path, redis_url: str | None) -> Settings:
    database = tmp_path / "ssc.db"
    if not database.exists():
        shutil.copyfile(sqlite_template, database)
    return load_settings(
        environment="test",
        var_dir=tmp_path / "var",
        key_dir=tmp_path / "var" / "keys",
        key_encryption_key=SECRETS["kek"],
        data_key=SECRETS["data"],
        token_secret=SECRETS["token"],
        database_url=f"sqlite+aiosqlite:///{database}",
        redis_url=redis_url,
        redis_namespace="storeloss",
        clock_skew=1,
    )


SECRETS = {"kek": new_secret(), "data": new_secret(), "token": new_secret()}


@pytest.fixture
async def app_on_own_redis(
    own_redis: OwnRedis, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[FastAPI]:
    application = create_app(own_settings(tmp_path, sqlite_template, own_redis.url))
    async with application.router.lifespan_context(application):
        yield application


class TestRedisKilled:
    async def test_tokens_valid_before_a_kill_9_are_never_valid_after_and_new_ones_work(
        self, app_on_own_redis: FastAPI, own_redis: OwnRedis
    ) -> None:
        runtime: Runtime = app_on_own_redis.state.runtime
        transport = httpx.ASGITransport(app=app_on_own_redis)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            scanner = await create_scanner(client, runtime, scenes=["museum"])
            card = await create_scannable_card(runtime)
            tokens = [qr_token(runtime, card) for _ in range(TOKENS)]
            assert [await answer(client, scanner, t) for t in tokens] == ["valid"] * TOKENS

            own_redis.kill()
            own_redis.start()  # same port, no persistence: it comes back empty

            after = [await answer(client, scanner, token) for token in tokens]
            assert after == ["reissue_required"] * TOKENS
            epoch = runtime.store_epochs.current
            assert epoch is not None and epoch.after_loss
            assert resets((await client.get("/metrics")).text) == 1

            await wait_until(runtime.store_epochs.refuse_before)
            fresh = qr_token(runtime, card)
            assert await answer(client, scanner, fresh) == "valid"
            assert await answer(client, scanner, fresh) == "replayed"
            assert [await answer(client, scanner, t) for t in tokens] == [
                "reissue_required"
            ] * TOKENS
            events = await persisted_audit(runtime, EPOCH_ACTION, count=2)
            assert [event["after_loss"] for event in events] == [False, True]


class TestRestartOfTheMemoryStore:
    async def test_a_restart_without_redis_is_a_loss_too(
        self, tmp_path: Path, sqlite_template: Path
    ) -> None:
        """The memory store starts empty in every process; the database remembers that an
        epoch existed, so the restarted service refuses the tokens of before."""
        settings = own_settings(tmp_path, sqlite_template, None)
        first = create_app(settings)
        async with first.router.lifespan_context(first):
            runtime: Runtime = first.state.runtime
            transport = httpx.ASGITransport(app=first)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                scanner = await create_scanner(client, runtime, scenes=["museum"])
                card = await create_scannable_card(runtime)
                token = qr_token(runtime, card)
                assert await answer(client, scanner, token) == "valid"
        second = create_app(settings)
        async with second.router.lifespan_context(second):
            runtime = second.state.runtime
            epoch = runtime.store_epochs.current
            assert epoch is not None and epoch.after_loss
            transport = httpx.ASGITransport(app=second)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert await answer(client, scanner, token) == "reissue_required"
