"""A revoked session family loses its access tokens at once, on every worker."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from app.config import Settings
from tests.factories import bearer, create_active_holder

HOLDER_READS = ("/v1/me/card", "/v1/me/qr")


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    kind: str = response.json()["type"]
    return kind.rsplit("/", 1)[-1]


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/v1/auth/refresh", json={"refresh_token": token})


class TestReuseRevokesAccessTokens:
    async def test_every_access_token_of_the_family_is_refused_after_a_reuse(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        rotated = await refresh(client, holder.refresh_token)
        assert rotated.status_code == 200
        newest = rotated.json()["access_token"]
        for path in HOLDER_READS:
            assert (await client.get(path, headers=holder.headers)).status_code == 200

        reused = await refresh(client, holder.refresh_token)
        assert problem_type(reused) == "refresh-token-reused"

        for token in (holder.access_token, newest):
            for path in HOLDER_READS:
                response = await client.get(path, headers=bearer(token))
                assert response.status_code == 401, (path, response.text)
                assert problem_type(response) == "session-revoked"

    async def test_another_session_of_the_same_holder_keeps_working(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        other = await client.post(
            "/v1/auth/login",
            json={
                "card_number": holder.card_number,
                "pin": holder.pin,
                "device_id": holder.device_id,
            },
        )
        await refresh(client, holder.refresh_token)
        await refresh(client, holder.refresh_token)
        other_headers = bearer(other.json()["access_token"])
        for path in HOLDER_READS:
            assert (await client.get(path, headers=other_headers)).status_code == 200


class TestRevocationReachesEveryWorker:
    async def test_a_revocation_through_one_instance_is_refused_by_the_other(
        self, settings: Settings, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        if settings.redis_url is None:
            pytest.skip("the memory store serves one process; workers share Redis")
        holder = await create_active_holder(client, app)
        other_app = create_app(settings)
        async with other_app.router.lifespan_context(other_app):
            transport = httpx.ASGITransport(app=other_app)
            async with httpx.AsyncClient(transport=transport, base_url="http://other") as other:
                before = await other.get("/v1/me/card", headers=holder.headers)
                reused = [await refresh(client, holder.refresh_token) for _ in range(2)]
                after = [await other.get(path, headers=holder.headers) for path in HOLDER_READS]
        assert before.status_code == 200
        assert problem_type(reused[1]) == "refresh-token-reused"
        assert [response.status_code for response in after] == [401, 401]
