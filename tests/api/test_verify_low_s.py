"""`POST /v1/verify` refuses the high-S twin `(r, n - s)` of a valid token as `bad_signature`,
without spending the token: the real one is still `valid` afterwards."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.factories import create_scannable_card, create_scanner, qr_token
from tests.token_service.support import high_s_twin


async def test_the_high_s_twin_of_a_valid_token_is_refused_and_spends_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    runtime = app.state.runtime
    scanner = await create_scanner(client, runtime, scenes=["museum"])
    token = qr_token(runtime, await create_scannable_card(runtime))
    verdicts = []
    for scanned in (high_s_twin(token), token, high_s_twin(token)):
        response = await client.post(
            "/v1/verify", json={"token": scanned, "scene": "museum"}, headers=scanner.headers
        )
        assert response.status_code == 200, response.text
        verdicts.append(response.json()["verdict"])
    assert verdicts == ["bad_signature", "valid", "bad_signature"]
