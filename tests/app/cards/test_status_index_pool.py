"""Each card's pool of status list indexes: a different index in each token, all set together
in the status list, a fresh pool on replacement (the old one INVALID for good)."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from app.cards.models import Card, CardStatusIndex
from app.cards.status_indexes import pool_entries
from app.config import Settings
from app.runtime import Runtime
from app.trust.status_lists import published_status_list
from tests.app.trust.support import status_pool
from tests.factories import (
    ActiveHolder,
    admin_headers,
    application_body,
    create_active_holder,
    create_scannable_card,
)
from token_service import Status, StatusList, decode_token, verify_status_list_cwt


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
async def holder(client: httpx.AsyncClient, app: FastAPI) -> ActiveHolder:
    return await create_active_holder(client, app)


async def card_of(runtime: Runtime, holder: ActiveHolder) -> Card:
    async with runtime.database.session() as session:
        card = await session.get(Card, uuid.UUID(holder.card.card_id))
        assert card is not None
        return card


async def token_indexes(client: httpx.AsyncClient, holder: ActiveHolder) -> list[int]:
    """The status indexes of the six tokens one QR fetch hands out (now and 5 prefetched)."""
    response = await client.get("/v1/me/qr?prefetch=5", headers=holder.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    tokens = [body["token"], *(upcoming["token"] for upcoming in body["upcoming"])]
    indexes = [decode_token(token).claims.status_index for token in tokens]
    assert all(index is not None for index in indexes)
    return [index for index in indexes if index is not None]


async def published(runtime: Runtime) -> StatusList:
    document = await published_status_list(runtime, runtime.settings.issuer)
    return verify_status_list_cwt(document.cwt, runtime.keyring, now=time.time()).status_list


async def act(client: httpx.AsyncClient, runtime: Runtime, number: str, action: str) -> str:
    response = await client.post(
        f"/v1/admin/cards/{number}/{action}",
        json={"channel": "counter", "reason": f"test: {action}"},
        headers=admin_headers(runtime),
    )
    assert response.status_code == 200, response.text
    card_number: str = response.json()["card_number"]
    return card_number


class TestTokensOfACard:
    async def test_carry_different_indexes_of_the_cards_pool(
        self, client: httpx.AsyncClient, runtime: Runtime, holder: ActiveHolder
    ) -> None:
        pool = await status_pool(runtime, await card_of(runtime, holder))
        assert len(pool) == runtime.settings.status_index_pool == 16
        indexes = await token_indexes(client, holder)
        assert len(set(indexes)) == len(indexes) == 6
        assert set(indexes) <= set(pool)

    async def test_a_card_from_before_the_pools_gets_its_full_pool_at_its_next_qr_fetch(
        self, client: httpx.AsyncClient, runtime: Runtime, holder: ActiveHolder
    ) -> None:
        card = await card_of(runtime, holder)
        async with runtime.database.session() as session:  # as migration 0008 leaves it
            await session.exec(
                delete(CardStatusIndex).where(
                    CardStatusIndex.card_id == card.id,  # type: ignore[arg-type]
                    CardStatusIndex.status_index != card.status_index,  # type: ignore[arg-type]
                )
            )
        assert await status_pool(runtime, card) == [card.status_index]
        listed_before = await published(runtime)
        indexes = await token_indexes(client, holder)
        pool = await status_pool(runtime, card)
        assert len(pool) == 16 and card.status_index in pool
        assert len(set(indexes)) == 6 and set(indexes) <= set(pool)
        assert await published(runtime) == listed_before


class TestStatusChanges:
    async def test_set_every_index_of_the_pool_together(
        self, client: httpx.AsyncClient, runtime: Runtime, holder: ActiveHolder
    ) -> None:
        pool = await status_pool(runtime, await card_of(runtime, holder))
        lost = await client.post("/v1/me/card/report-loss", headers=holder.headers)
        assert lost.status_code == 200, lost.text
        listed = await published(runtime)
        assert {listed.get(index) for index in pool} == {Status.LOST}
        found = await client.post(
            f"/v1/admin/cards/{holder.card_number}/cancel-loss",
            json={
                "channel": "counter",
                "reason": "found",
                "holder_document_number": holder.card.document_number,
            },
            headers=admin_headers(runtime),
        )
        assert found.status_code == 200, found.text
        listed = await published(runtime)
        assert {listed.get(index) for index in pool} == {Status.VALID}

    async def test_replacement_draws_a_fresh_pool_and_retires_the_old_one_as_invalid(
        self, client: httpx.AsyncClient, runtime: Runtime, holder: ActiveHolder
    ) -> None:
        old_pool = await status_pool(runtime, await card_of(runtime, holder))
        lost = await client.post("/v1/me/card/report-loss", headers=holder.headers)
        assert lost.status_code == 200, lost.text
        new_number = await act(client, runtime, holder.card_number, "replace")
        card = await card_of(runtime, holder)
        new_pool = await status_pool(runtime, card)
        assert len(new_pool) == 16 and not set(new_pool) & set(old_pool)
        assert card.status_index in new_pool
        listed = await published(runtime)
        assert {listed.get(index) for index in old_pool} == {Status.INVALID}
        assert {listed.get(index) for index in new_pool} == {Status.VALID}
        assert set(await token_indexes(client, holder)) <= set(new_pool)

        # The retired pool stays INVALID and is never drawn again, whatever comes next.
        await act(client, runtime, new_number, "replace")
        listed = await published(runtime)
        assert {listed.get(index) for index in old_pool} == {Status.INVALID}
        assert {listed.get(index) for index in new_pool} == {Status.INVALID}
        newest = await status_pool(runtime, await card_of(runtime, holder))
        assert not set(newest) & (set(old_pool) | set(new_pool))


class TestAFullList:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"status_list_size": 1024})

    async def test_refuses_a_new_card_with_a_problem_naming_it(
        self, client: httpx.AsyncClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
    ) -> None:
        card = await create_scannable_card(runtime)
        async with runtime.database.session() as session:
            session.add_all(pool_entries(card.id, range(1024)))
        applied = await client.post("/v1/applications", json=application_body())
        assert applied.status_code == 201, applied.text
        approved = await client.post(
            f"/v1/admin/applications/{applied.json()['id']}/approve",
            headers=admin_headers(runtime),
        )
        assert approved.status_code == 507
        assert approved.headers["content-type"] == "application/problem+json"
        assert approved.json()["type"] == "/problems/status-list-full"
        assert "SSC_STATUS_LIST_SIZE" in caplog.text
