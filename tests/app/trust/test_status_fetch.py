"""Another issuer's status list, fetched from its announced URL: over real HTTP, the other
issuer being a second instance of this service served by uvicorn on a free port.

A small ASGI layer in front of the other issuer records what it was asked and can spoil its
answers (a flipped signature byte, an oversized body, a stalled answer), as a broken or
hostile server would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.app import create_app
from app.cards.models import Card, CardStatus
from app.config import Settings, load_settings, new_secret
from app.runtime import Runtime
from app.trust.status_fetch import FetchOutcome, fetch_period, fetch_status_lists, fetch_tick
from tests.app.trust.support import create_listed_card, set_card_status, status_pool
from tests.factories import ScannerCredentials, admin_headers, create_scanner
from tests.servers import free_port
from token_service import Verdict

OTHER = "500000"


@dataclass
class Spoiler:
    """ASGI layer of the other issuer: records requests to its status list, spoils answers."""

    app: ASGIApp
    mode: str = "pass"
    """pass | flip (last body byte) | oversize (chunked, no length) | announce (Content-Length
    over the limit) | stall (no answer until `released` is set, at the server's shutdown)"""
    limit: int = 0
    released: asyncio.Event = field(default_factory=asyncio.Event)
    seen: list[tuple[str | None, int]] = field(default_factory=list)
    """(If-None-Match sent to us, status we answered) per status list request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/status-lists/"):
            await self.app(scope, receive, send)
            return
        asked = dict(scope["headers"]).get(b"if-none-match")
        if self.mode == "stall":
            await self.released.wait()
        if self.mode in ("oversize", "announce"):
            await self._oversized(send)
            self.seen.append((asked and asked.decode(), 200))
            return
        start: dict[str, object] = {}
        body = bytearray()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                body.extend(message.get("body", b""))

        await self.app(scope, receive, capture)
        if self.mode == "flip" and body:
            body[-1] ^= 0x01
        self.seen.append((asked and asked.decode(), int(start["status"])))
        await send(start)
        await send({"type": "http.response.body", "body": bytes(body)})

    async def _oversized(self, send: Send) -> None:
        headers = [(b"content-type", b"application/statuslist+cwt")]
        if self.mode == "announce":
            headers.append((b"content-length", str(self.limit + 1).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if self.mode == "announce":
            return  # the fetcher must give up on the header alone
        chunk = b"\0" * 65536
        for _ in range(self.limit // len(chunk) + 2):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


@dataclass
class OtherIssuer:
    runtime: Runtime
    spoiler: Spoiler
    url: str

    @property
    def list_url(self) -> str:
        return f"{self.url}/v1/status-lists/{OTHER}"


@contextlib.asynccontextmanager
async def other_issuer(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[OtherIssuer]:
    """Another deployment of this service (SQLite, memory store) on a real uvicorn server."""
    port = free_port()
    database = tmp_path / "other.db"
    database.write_bytes(sqlite_template.read_bytes())
    settings = load_settings(
        environment="test",
        issuer=OTHER,
        public_url=f"http://127.0.0.1:{port}",
        database_url=f"sqlite+aiosqlite:///{database}",
        redis_url=None,
        var_dir=tmp_path / "other",
        key_dir=tmp_path / "other" / "keys",
        key_encryption_key=new_secret(),
        data_key=new_secret(),
        token_secret=new_secret(),
        status_list_ttl=10,
        status_list_size=1 << 16,
    )
    application = create_app(settings)
    spoiler = Spoiler(application)
    server = uvicorn.Server(
        uvicorn.Config(spoiler, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    async with application.router.lifespan_context(application):
        serving = asyncio.create_task(server.serve())
        while not server.started:
            assert not serving.done(), "the other issuer's server did not start"
            await asyncio.sleep(0.02)
        try:
            yield OtherIssuer(application.state.runtime, spoiler, f"http://127.0.0.1:{port}")
        finally:
            spoiler.released.set()
            server.should_exit = True
            await serving


@pytest.fixture
async def other(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[OtherIssuer]:
    async with other_issuer(tmp_path, sqlite_template) as issuer:
        yield issuer


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def register(client: httpx.AsyncClient, runtime: Runtime, other: OtherIssuer) -> None:
    response = await client.post(
        "/v1/admin/trusted-issuers",
        json={
            "code": OTHER,
            "name": "Chongqing",
            "token_lifetime": 60,
            "jwks": other.runtime.keyring.jwks(),
            "status_list_uri": other.list_url,
        },
        headers=admin_headers(runtime),
    )
    assert response.status_code == 201, response.text


async def tokens_of(other: OtherIssuer, card: Card) -> list[str]:
    """One token per index of the card's pool, as the other issuer's phones get them."""
    pool = await status_pool(other.runtime, card)
    handle = bytes.fromhex(card.handle)
    return [other.runtime.token_issuer.issue(handle, status_index=i).token for i in pool]


async def verdict(client: httpx.AsyncClient, scanner: ScannerCredentials, token: str) -> str:
    response = await client.post("/v1/verify", json={"token": token}, headers=scanner.headers)
    assert response.status_code == 200, response.text
    answer: str = response.json()["verdict"]
    return answer


def held_issued_at(runtime: Runtime) -> int | None:
    held = runtime.foreign_status_lists.get(OTHER)
    return None if held is None else held.issued_at


class TestFetchedStatusList:
    async def test_a_card_lost_at_the_other_issuer_is_card_lost_here(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        other: OtherIssuer,
        http: httpx.AsyncClient,
    ) -> None:
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        card = await create_listed_card(other.runtime)
        tokens = await tokens_of(other, card)
        await register(client, runtime, other)
        assert await verdict(client, scanner, tokens[0]) == Verdict.ISSUER_UNTRUSTED

        assert await fetch_status_lists(runtime, http) == {OTHER: FetchOutcome.updated}
        assert await verdict(client, scanner, tokens[1]) == Verdict.VALID

        await set_card_status(other.runtime, card, CardStatus.lost)
        assert await fetch_status_lists(runtime, http, force=True) == {OTHER: FetchOutcome.updated}
        assert await verdict(client, scanner, tokens[2]) == Verdict.CARD_LOST

    async def test_an_unchanged_list_is_asked_with_its_etag_and_the_304_honoured(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        other: OtherIssuer,
        http: httpx.AsyncClient,
    ) -> None:
        await register(client, runtime, other)
        assert await fetch_status_lists(runtime, http) == {OTHER: FetchOutcome.updated}
        held = held_issued_at(runtime)
        assert await fetch_status_lists(runtime, http, force=True) == {
            OTHER: FetchOutcome.not_modified
        }
        (first_asked, first_status), (etag, status) = other.spoiler.seen
        assert (first_asked, first_status) == (None, 200)
        assert etag is not None and status == 304
        assert held_issued_at(runtime) == held

    async def test_a_list_is_not_fetched_again_before_it_is_due(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        other: OtherIssuer,
        http: httpx.AsyncClient,
    ) -> None:
        await register(client, runtime, other)
        assert await fetch_status_lists(runtime, http) == {OTHER: FetchOutcome.updated}
        assert await fetch_status_lists(runtime, http) == {OTHER: FetchOutcome.not_due}
        assert len(other.spoiler.seen) == 1
        # Due again one check interval before the list's TTL (10 s there) runs out.
        held = runtime.foreign_status_lists[OTHER]
        assert held.ttl == 10
        assert fetch_period(runtime, OTHER) + fetch_tick(runtime) <= held.ttl

    @pytest.mark.parametrize("mode", ["flip", "oversize", "announce"])
    async def test_a_bad_signature_or_an_oversized_body_is_refused_and_the_old_list_kept(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        other: OtherIssuer,
        http: httpx.AsyncClient,
        mode: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        card = await create_listed_card(other.runtime)
        tokens = await tokens_of(other, card)
        await register(client, runtime, other)
        assert await fetch_status_lists(runtime, http) == {OTHER: FetchOutcome.updated}
        held = held_issued_at(runtime)

        await set_card_status(other.runtime, card, CardStatus.lost)
        other.spoiler.mode, other.spoiler.limit = mode, runtime.settings.status_list_fetch_max_bytes
        with caplog.at_level(logging.WARNING, logger="ssc.trust.status_fetch"):
            outcome = await fetch_status_lists(runtime, http, force=True)
        assert outcome == {OTHER: FetchOutcome.refused}
        assert held_issued_at(runtime) == held
        assert await verdict(client, scanner, tokens[0]) == Verdict.VALID
        (warning,) = [  # this fetcher's warning (a loaded machine may add others' warnings)
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.WARNING and r.name == "ssc.trust.status_fetch"
        ]
        assert OTHER in warning and other.list_url in warning and "keeping the list" in warning
        expected = {"flip": "bad_signature", "oversize": "over the limit", "announce": "announced"}
        assert expected[mode] in warning

        other.spoiler.mode = "pass"  # the issuer recovers: its next list is taken
        assert await fetch_status_lists(runtime, http, force=True) == {OTHER: FetchOutcome.updated}
        assert await verdict(client, scanner, tokens[1]) == Verdict.CARD_LOST


class TestFetchFailures:
    TIMEOUT = 3.0
    """Long enough for the first, normal fetch on a loaded machine (1.6 s seen under CI)."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"status_list_fetch_timeout": self.TIMEOUT})

    async def test_a_stalled_or_unreachable_server_keeps_the_old_list(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        other: OtherIssuer,
        http: httpx.AsyncClient,
    ) -> None:
        await register(client, runtime, other)
        assert await fetch_status_lists(runtime, http) == {OTHER: FetchOutcome.updated}
        held = held_issued_at(runtime)
        other.spoiler.mode = "stall"
        started = time.monotonic()
        assert await fetch_status_lists(runtime, http, force=True) == {OTHER: FetchOutcome.failed}
        waited = time.monotonic() - started
        # Given up at the timeout (the event loop may run a timer up to its clock's resolution
        # early, hence the small margin below it).
        assert self.TIMEOUT - 0.05 <= waited < self.TIMEOUT + 2
        assert held_issued_at(runtime) == held


class TestScheduled:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"key_sync_interval": 1})

    async def test_the_background_sync_sees_a_loss_there_within_the_lists_ttl(
        self, client: httpx.AsyncClient, runtime: Runtime, other: OtherIssuer
    ) -> None:
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        card = await create_listed_card(other.runtime)
        pool = await status_pool(other.runtime, card)
        handle = bytes.fromhex(card.handle)

        async def scan() -> str:
            index = pool[secrets.randbelow(len(pool))]
            token = other.runtime.token_issuer.issue(handle, status_index=index).token
            return await verdict(client, scanner, token)

        async def first_answer(wanted: str, within: float) -> float:
            started = time.monotonic()
            while (answer := await scan()) != wanted:
                assert time.monotonic() - started < within, answer
                await asyncio.sleep(0.2)
            return time.monotonic() - started

        await register(client, runtime, other)
        await first_answer(Verdict.VALID, within=5)  # fetched by the background sync
        await set_card_status(other.runtime, card, CardStatus.lost)
        ttl = 10  # the other issuer's SSC_STATUS_LIST_TTL: its lists' `ttl` claim
        await first_answer(Verdict.CARD_LOST, within=ttl + 1)
