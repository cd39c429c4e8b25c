"""The phone's QR routes read the store, not SQL, and still refuse at once after a change.

`GET /v1/me/qr`, `.png` and `.svg` take the session mark, the phone's binding, the card's
status and handle and its index pool from the store (`app.holders.qr_state`). These tests
prove that no SQL runs once the store holds them, that a missing key is refilled from SQL,
and that a loss, a suspension or an unbinding refuses the next QR at once: in one process
on the memory store and on Redis, and across two `ssc serve` processes sharing Redis and
PostgreSQL within the 1 s bound of the card lifecycle.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from app.cards.snapshot import card_pool_key, card_state_key
from app.holders.devices import device_state_key
from app.runtime import Runtime
from app.security.tokens import PrincipalKind
from tests.api.test_instant_effect import EFFECT_BOUND_SECONDS, POLL_SECONDS
from tests.conftest import Cluster
from tests.factories import (
    DEFAULT_PIN,
    activate,
    admin_headers,
    application_body,
    bearer,
    create_active_holder,
)

QR_ROUTES = ["/v1/me/qr", "/v1/me/qr.png", "/v1/me/qr.svg"]
HOLDER_TABLES = ("cards", "devices", "card_status_indexes", "persons")


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    kind: str = response.json()["type"]
    return kind.rsplit("/", 1)[-1]


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    running: Runtime = app.state.runtime
    return running


@contextmanager
def holder_sql(runtime: Runtime) -> Iterator[list[str]]:
    """The SQL statements reading or writing the holder's card, devices or pool meanwhile
    (the audit consumer's own statements in the background are not counted)."""
    seen: list[str] = []
    engine = runtime.database.engine.sync_engine

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        lowered = statement.lower()
        if any(f" {table}" in lowered for table in HOLDER_TABLES):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


async def all_qr(client: httpx.AsyncClient, headers: dict[str, str]) -> list[int]:
    return [(await client.get(route, headers=headers)).status_code for route in QR_ROUTES]


class TestNoSql:
    async def test_once_the_store_holds_the_state_no_sql_runs(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder = await create_active_holder(client, app)
        assert (await client.get("/v1/me/qr", headers=holder.headers)).status_code == 200
        with holder_sql(runtime) as statements:
            assert await all_qr(client, holder.headers) == [200, 200, 200]
            prefetched = await client.get("/v1/me/qr?prefetch=5", headers=holder.headers)
        assert prefetched.status_code == 200
        assert len(prefetched.json()["upcoming"]) == 5
        assert statements == []

    async def test_a_lost_store_is_refilled_from_sql(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder = await create_active_holder(client, app)
        card_id = uuid.UUID(holder.card.card_id)
        assert (await client.get("/v1/me/qr", headers=holder.headers)).status_code == 200
        store = runtime.store
        state = await store.get(card_state_key(card_id))
        assert state is not None
        assert state.startswith(b"active|")
        for key in (card_state_key(card_id), card_pool_key(card_id)):
            await store.delete(key)
        with holder_sql(runtime) as statements:
            assert (await client.get("/v1/me/qr", headers=holder.headers)).status_code == 200
        assert statements != []
        assert await store.get(card_state_key(card_id)) == state
        pool = await store.get(card_pool_key(card_id))
        assert pool is not None
        assert len(pool.split(b",")) == runtime.settings.status_index_pool


class TestRefusedAtOnce:
    async def test_a_lost_card_gets_no_qr(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        holder = await create_active_holder(client, app)
        assert await all_qr(client, holder.headers) == [200, 200, 200]
        reported = await client.post("/v1/me/card/report-loss", headers=holder.headers)
        assert reported.status_code == 200, reported.text
        assert await all_qr(client, holder.headers) == [409, 409, 409]
        refused = await client.get("/v1/me/qr", headers=holder.headers)
        assert problem_type(refused) == "card-lost"
        taken_back = await client.post(
            "/v1/me/card/cancel-loss", json={"pin": holder.pin}, headers=holder.headers
        )
        assert taken_back.status_code == 200, taken_back.text
        assert await all_qr(client, holder.headers) == [200, 200, 200]

    async def test_a_suspended_card_gets_no_qr(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder = await create_active_holder(client, app)
        assert await all_qr(client, holder.headers) == [200, 200, 200]
        suspended = await client.post(
            f"/v1/admin/cards/{holder.card_number}/suspend",
            json={"channel": "administration", "reason": "misuse"},
            headers=admin_headers(runtime),
        )
        assert suspended.status_code == 200, suspended.text
        assert await all_qr(client, holder.headers) == [409, 409, 409]
        assert problem_type(await client.get("/v1/me/qr", headers=holder.headers)) == (
            "card-suspended"
        )

    async def test_an_unbound_phone_gets_no_qr_and_a_rebound_one_does(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder = await create_active_holder(client, app)
        second = await activate(client, holder.card, device_id="second-phone")
        second_headers = bearer(second.json()["access_token"])
        assert await all_qr(client, second_headers) == [200, 200, 200]
        unbound = await client.delete("/v1/me/devices/second-phone", headers=holder.headers)
        assert unbound.status_code == 204
        assert await all_qr(client, second_headers) == [403, 403, 403]
        assert problem_type(await client.get("/v1/me/qr", headers=second_headers)) == (
            "device-unbound"
        )
        assert await all_qr(client, holder.headers) == [200, 200, 200]
        again = await activate(client, holder.card, device_id="second-phone")
        assert again.status_code == 201
        assert await all_qr(client, bearer(again.json()["access_token"])) == [200, 200, 200]

    async def test_an_unbound_phone_stays_refused_when_the_store_forgot_it(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        """The `unbound` mark expires with the phone's access tokens; a refill then reads SQL
        and caches nothing for an unbound phone."""
        holder = await create_active_holder(client, app)
        second = await activate(client, holder.card, device_id="second-phone")
        second_headers = bearer(second.json()["access_token"])
        assert (await client.get("/v1/me/qr", headers=second_headers)).status_code == 200
        await client.delete("/v1/me/devices/second-phone", headers=holder.headers)
        device_pk = await _device_pk(runtime, second.json()["access_token"])
        await runtime.store.delete(device_state_key(device_pk))
        assert await all_qr(client, second_headers) == [403, 403, 403]
        assert await runtime.store.get(device_state_key(device_pk)) is None

    async def test_a_revoked_session_gets_no_qr(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        assert (await client.get("/v1/me/qr", headers=holder.headers)).status_code == 200
        first = await client.post("/v1/auth/refresh", json={"refresh_token": holder.refresh_token})
        assert first.status_code == 200
        reused = await client.post("/v1/auth/refresh", json={"refresh_token": holder.refresh_token})
        assert reused.status_code == 401  # reuse revokes the whole family
        assert await all_qr(client, holder.headers) == [401, 401, 401]
        assert problem_type(await client.get("/v1/me/qr", headers=holder.headers)) == (
            "session-revoked"
        )


async def _device_pk(runtime: Runtime, access_token: str) -> uuid.UUID:
    claims = runtime.access_tokens.decode(access_token, PrincipalKind.holder)
    return uuid.UUID(claims.extra["device"])


async def refused_within_bound(
    http: httpx.AsyncClient, headers: dict[str, str], changed_at: float, expected: int
) -> float:
    """Polls every QR route until each answers `expected`; returns the seconds it took."""
    while True:
        statuses = await all_qr(http, headers)
        elapsed = time.monotonic() - changed_at
        if statuses == [expected] * len(QR_ROUTES) or elapsed > EFFECT_BOUND_SECONDS:
            assert statuses == [expected] * len(QR_ROUTES), (statuses, elapsed)
            return elapsed
        await asyncio.sleep(POLL_SECONDS)


@dataclass
class TwoPhones:
    card_number: str
    first: dict[str, str]
    second: dict[str, str]


async def two_phones_on(servers: Cluster) -> TwoPhones:
    """Apply, approve and activate two phones through process A."""
    body = application_body()
    applied = await servers.a.post("/v1/applications", json=body)
    assert applied.status_code == 201, applied.text
    approved = await servers.a.post(
        f"/v1/admin/applications/{applied.json()['id']}/approve",
        headers=admin_headers(servers.runtime),
    )
    assert approved.status_code == 200, approved.text
    card_number = approved.json()["card_number"]
    headers = []
    for phone in ("phone-one", "phone-two"):
        activated = await servers.a.post(
            "/v1/ecard/activate",
            json={
                "card_number": card_number,
                "document_number": body["document_number"],
                "device_id": phone,
                "pin": DEFAULT_PIN,
            },
        )
        assert activated.status_code == 201, activated.text
        headers.append(bearer(activated.json()["access_token"]))
    return TwoPhones(card_number, headers[0], headers[1])


@pytest.fixture
def servers(request: pytest.FixtureRequest) -> Cluster:
    """Two `ssc serve` processes sharing PostgreSQL and Redis (the shared `cluster` fixture)."""
    started: Cluster = request.getfixturevalue("cluster")
    return started


@pytest.mark.timeout(120)
class TestAcrossProcesses:
    """A change made through process A refuses the QR of process B within 1 s (and back)."""

    async def test_loss_and_suspension(self, servers: Cluster) -> None:
        phones = await two_phones_on(servers)
        headers = phones.first
        assert await all_qr(servers.b, headers) == [200, 200, 200]
        reported = await servers.a.post("/v1/me/card/report-loss", headers=headers)
        assert reported.status_code == 200, reported.text
        await refused_within_bound(servers.b, headers, time.monotonic(), 409)

        taken_back = await servers.b.post(
            "/v1/me/card/cancel-loss", json={"pin": DEFAULT_PIN}, headers=headers
        )
        assert taken_back.status_code == 200, taken_back.text
        await refused_within_bound(servers.a, headers, time.monotonic(), 200)

        suspended = await servers.b.post(
            f"/v1/admin/cards/{phones.card_number}/suspend",
            json={"channel": "administration", "reason": "misuse"},
            headers=admin_headers(servers.runtime),
        )
        assert suspended.status_code == 200, suspended.text
        await refused_within_bound(servers.a, headers, time.monotonic(), 409)

    async def test_an_unbound_phone(self, servers: Cluster) -> None:
        phones = await two_phones_on(servers)
        assert await all_qr(servers.b, phones.second) == [200, 200, 200]
        unbound = await servers.a.delete("/v1/me/devices/phone-two", headers=phones.first)
        assert unbound.status_code == 204
        await refused_within_bound(servers.b, phones.second, time.monotonic(), 403)
        assert await all_qr(servers.b, phones.first) == [200, 200, 200]
