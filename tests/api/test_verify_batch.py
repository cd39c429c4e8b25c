"""`POST /v1/verify/batch`: a verdict per scan in order, token or binary COSE alike, one claim."""

import base64
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.cards.models import CardStatus
from app.runtime import Runtime
from app.store import ScanClaim, ScanClaimResult, Store
from tests.factories import (
    ScannerCredentials,
    admin_headers,
    create_scannable_card,
    create_scanner,
    qr_token,
)
from token_service import PREFIX
from token_service._base45 import b45decode

PROBLEM = "application/problem+json"


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
async def scanner(client: httpx.AsyncClient, runtime: Runtime) -> ScannerCredentials:
    return await create_scanner(client, runtime, scenes=["museum", "hotel"])


def cose_of(token: str) -> str:
    """What a gateway sends instead of the string: base64url of the COSE_Sign1, unpadded."""
    message = b45decode(token.removeprefix(PREFIX))
    return base64.urlsafe_b64encode(message).rstrip(b"=").decode()


async def batch(
    client: httpx.AsyncClient, scanner: ScannerCredentials, scans: list[dict[str, Any]]
) -> httpx.Response:
    return await client.post("/v1/verify/batch", json={"scans": scans}, headers=scanner.headers)


async def verdicts(
    client: httpx.AsyncClient, scanner: ScannerCredentials, scans: list[dict[str, Any]]
) -> list[str]:
    response = await batch(client, scanner, scans)
    assert response.status_code == 200, response.text
    return [result["verdict"] for result in response.json()["results"]]


class CountingStore:
    """Wraps the app's store and counts its calls, to hold the batch to one claim."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.claim_calls = 0
        self.other_calls: list[str] = []

    async def claim_scans(
        self, claims: list[ScanClaim], *, epoch: bytes | None = None
    ) -> list[ScanClaimResult]:
        self.claim_calls += 1
        return await self.inner.claim_scans(claims, epoch=epoch)

    def __getattr__(self, name: str) -> Any:
        self.other_calls.append(name)
        return getattr(self.inner, name)


class TestBatchVerdicts:
    async def test_each_scan_gets_its_own_verdict_in_order(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        active = await create_scannable_card(runtime)
        lost = await create_scannable_card(runtime, status=CardStatus.lost)
        valid_token = qr_token(runtime, active)
        response = await batch(
            client,
            scanner,
            [
                {"token": valid_token, "scene": "museum", "scan_id": "a-1"},
                {"token": "SSC1:garbage"},
                {"token": qr_token(runtime, lost)},
                {"token": valid_token},
                {"token": qr_token(runtime, active), "scene": "metro"},
            ],
        )
        assert response.status_code == 200
        results = response.json()["results"]
        assert [result["verdict"] for result in results] == [
            "valid",
            "malformed",
            "card_lost",
            "replayed",
            "scene_not_allowed",
        ]
        assert results[0]["scan_id"] == "a-1"
        assert "scan_id" not in results[1]
        assert results[0]["holder"]["masked_name"]
        assert results[0]["checked_at"].endswith("Z")

    async def test_binary_cose_gets_the_same_verdicts_as_the_string(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        cards = [
            await create_scannable_card(runtime),
            await create_scannable_card(runtime, status=CardStatus.suspended),
        ]
        by_string = [qr_token(runtime, card) for card in cards]
        by_cose = [qr_token(runtime, card) for card in cards]
        forged = cose_of(by_cose[0])[:-4] + "AAAA"
        string_verdicts = await verdicts(client, scanner, [{"token": t} for t in by_string])
        cose_verdicts = await verdicts(client, scanner, [{"cose": cose_of(t)} for t in by_cose])
        assert cose_verdicts == string_verdicts == ["valid", "card_suspended"]
        assert await verdicts(client, scanner, [{"cose": cose_of(by_cose[0])}]) == ["replayed"]
        assert await verdicts(client, scanner, [{"cose": forged}]) == ["bad_signature"]

    @pytest.mark.parametrize("cose", ["", "AAAA", base64.urlsafe_b64encode(b"\xd2" * 200).decode()])
    async def test_unreadable_cose_is_malformed(
        self, client: httpx.AsyncClient, scanner: ScannerCredentials, cose: str
    ) -> None:
        assert await verdicts(client, scanner, [{"cose": cose}]) == ["malformed"]

    async def test_a_retried_batch_gets_the_first_verdicts_by_scan_id(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        scans = [
            {"token": qr_token(runtime, card), "scan_id": "g7-1"},
            {"token": qr_token(runtime, card)},
        ]
        assert await verdicts(client, scanner, scans) == ["valid", "valid"]
        assert await verdicts(client, scanner, scans) == ["valid", "replayed"]

    async def test_one_token_twice_in_one_batch_is_valid_once(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        token = qr_token(runtime, await create_scannable_card(runtime))
        found = await verdicts(client, scanner, [{"token": token}] * 10)
        assert Counter(found) == {"valid": 1, "replayed": 9}


class TestOneRoundTrip:
    async def test_a_batch_of_scans_is_one_claim(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        cards = [await create_scannable_card(runtime) for _ in range(3)]
        await verdicts(client, scanner, [{"token": qr_token(runtime, cards[0])}])  # warm
        counting = CountingStore(runtime.store)
        healthy, runtime.store = runtime.store, counting  # type: ignore[assignment]
        try:
            found = await verdicts(
                client, scanner, [{"token": qr_token(runtime, card)} for card in cards] * 2
            )
        finally:
            runtime.store = healthy
        assert found == ["valid"] * 3 + ["replayed"] * 3
        assert counting.claim_calls == 1
        assert counting.other_calls == []


class TestBatchRefusals:
    @pytest.mark.parametrize(
        "body",
        [
            {"scans": []},
            {"scans": [{"token": "x"}] * 101},
            {"scans": [{}]},
            {"scans": [{"token": "x", "cose": "AAAA"}]},
            {"scans": [{"token": 5}]},
            {"scans": [{"cose": "not base64!"}]},
            {"scans": [{"token": "x", "scan_id": "has space"}]},
            {"scans": [{"token": "x", "scene": "Metro"}]},
            {"scans": [{"token": "x", "extra": 1}]},
            {"scans": [{"token": "x"}], "extra": 1},
            {"scans": "x"},
            [],
        ],
    )
    async def test_bad_bodies_are_422_problems(
        self, client: httpx.AsyncClient, scanner: ScannerCredentials, body: Any
    ) -> None:
        response = await client.post("/v1/verify/batch", json=body, headers=scanner.headers)
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"]

    async def test_invalid_json_is_422(
        self, client: httpx.AsyncClient, scanner: ScannerCredentials
    ) -> None:
        response = await client.post(
            "/v1/verify/batch", content=b"{not json", headers=scanner.headers
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM

    async def test_without_a_scanner_token_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/verify/batch", json={"scans": [{"token": "x"}]})
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM


class TestScannerTokenCache:
    async def test_a_disabled_scanner_is_refused_although_its_token_is_cached(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        assert await verdicts(client, scanner, [{"token": "SSC1:x"}]) == ["malformed"]
        await client.post(
            f"/v1/admin/scanners/{scanner.client_id}/disable", headers=admin_headers(runtime)
        )
        refused = await batch(client, scanner, [{"token": qr_token(runtime, card)}])
        assert refused.status_code == 401
        assert refused.json()["type"] == "/problems/scanner-disabled"
