"""`POST /v1/verify`: verdicts, exactly-once under concurrency, retries, no SQL, fail closed."""

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from app.cards.models import CardStatus
from app.cards.snapshot import CardSnapshot, card_key, publish_card_snapshot
from app.clients.service import principal_key
from app.runtime import Runtime
from app.store.redis import RedisStore
from app.verification import service as verification_service
from tests.factories import (
    ScannerCredentials,
    admin_headers,
    create_organisation,
    create_scannable_card,
    create_scanner,
    persisted_audit,
    qr_token,
)

PROBLEM = "application/problem+json"
CONCURRENT = 200


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
async def scanner(client: httpx.AsyncClient, runtime: Runtime) -> ScannerCredentials:
    return await create_scanner(client, runtime, scenes=["museum", "hotel"])


async def verify(
    client: httpx.AsyncClient,
    scanner: ScannerCredentials,
    token: str,
    scene: str | None = "museum",
    idempotency_key: str | None = None,
) -> httpx.Response:
    headers = dict(scanner.headers)
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    body: dict[str, Any] = {"token": token}
    if scene is not None:
        body["scene"] = scene
    return await client.post("/v1/verify", json=body, headers=headers)


async def verdict_of(client: httpx.AsyncClient, scanner: ScannerCredentials, token: str) -> str:
    response = await verify(client, scanner, token)
    assert response.status_code == 200, response.text
    verdict: str = response.json()["verdict"]
    return verdict


class TestValidScan:
    async def test_answers_verdict_holder_and_metadata(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime, name="张三丰")
        response = await verify(client, scanner, qr_token(runtime, card))
        assert response.status_code == 200
        body = response.json()
        assert body["verdict"] == "valid"
        assert body["iss"] == runtime.settings.issuer
        assert body["scene"] == "museum"
        assert body["kid"]
        assert body["checked_at"].endswith("Z")
        assert set(body["holder"]) == {"masked_name", "pseudonym"}
        assert body["holder"]["masked_name"] == "张*丰"
        assert len(body["holder"]["pseudonym"]) == 22

    async def test_pseudonym_is_stable_in_one_organisation_and_differs_across(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        same_org = await create_scanner(client, runtime, scanner.organisation_id, ["museum"])
        other_org = await create_scanner(client, runtime)
        pseudonyms = []
        for who in (scanner, same_org, other_org):
            response = await verify(client, who, qr_token(runtime, card))
            assert response.json()["verdict"] == "valid"
            pseudonyms.append(response.json()["holder"]["pseudonym"])
        assert pseudonyms[0] == pseudonyms[1]
        assert pseudonyms[0] != pseudonyms[2]

    async def test_without_a_scene_only_the_base_attributes_are_given(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        response = await verify(client, scanner, qr_token(runtime, card), scene=None)
        assert response.json()["verdict"] == "valid"
        assert response.json()["scene"] is None
        assert set(response.json()["holder"]) == {"masked_name", "pseudonym"}

    async def test_a_card_missing_from_the_store_is_read_from_the_database(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        await runtime.store.delete(card_key(card.handle))
        assert await verdict_of(client, scanner, qr_token(runtime, card)) == "valid"
        assert await runtime.store.get(card_key(card.handle)) is not None


class TestRefusedScans:
    async def test_forged_token_is_bad_signature(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        token = qr_token(runtime, card)
        position = len(token) - 3
        forged = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
        verdict = await verdict_of(client, scanner, forged)
        assert verdict in {"bad_signature", "malformed"}
        assert await verdict_of(client, scanner, token) == "valid"  # the forgery consumed nothing

    @pytest.mark.parametrize("token", ["", "SSC1:", "not a token", "SSC1:" + "A" * 5000])
    async def test_garbage_is_malformed(
        self, client: httpx.AsyncClient, scanner: ScannerCredentials, token: str
    ) -> None:
        assert await verdict_of(client, scanner, token) == "malformed"

    async def test_old_token_is_expired(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        token = qr_token(runtime, card, clock=lambda: time.time() - 600)
        assert await verdict_of(client, scanner, token) == "expired"

    @pytest.mark.parametrize(
        ("status", "verdict"),
        [
            (CardStatus.lost, "card_lost"),
            (CardStatus.suspended, "card_suspended"),
            (CardStatus.cancelled, "card_cancelled"),
        ],
    )
    async def test_card_status_decides(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        scanner: ScannerCredentials,
        status: CardStatus,
        verdict: str,
    ) -> None:
        card = await create_scannable_card(runtime)
        await publish_card_snapshot(
            runtime.store, card.handle, CardSnapshot.of(status, card.id, "张*丰")
        )
        response = await verify(client, scanner, qr_token(runtime, card))
        assert response.json()["verdict"] == verdict
        assert "holder" not in response.json()

    async def test_scene_outside_the_scanner_binding_does_not_consume_the_token(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        token = qr_token(runtime, card)
        response = await verify(client, scanner, token, scene="hospital")
        assert response.json()["verdict"] == "scene_not_allowed"
        assert "holder" not in response.json()
        assert await verdict_of(client, scanner, token) == "valid"

    async def test_second_presentation_is_replayed(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        token = qr_token(runtime, card)
        assert await verdict_of(client, scanner, token) == "valid"
        assert await verdict_of(client, scanner, token) == "replayed"

    @pytest.mark.parametrize("key", ["", "has space", "x" * 65, "a.b"])
    async def test_malformed_idempotency_key_is_422(
        self, client: httpx.AsyncClient, scanner: ScannerCredentials, key: str
    ) -> None:
        response = await verify(client, scanner, "SSC1:", idempotency_key=key)
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM

    async def test_unknown_fields_are_422(
        self, client: httpx.AsyncClient, scanner: ScannerCredentials
    ) -> None:
        response = await client.post(
            "/v1/verify", json={"token": "x", "extra": 1}, headers=scanner.headers
        )
        assert response.status_code == 422

    async def test_a_holder_or_admin_token_cannot_verify(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        response = await client.post(
            "/v1/verify", json={"token": "x"}, headers=admin_headers(runtime)
        )
        assert response.status_code == 401


class TestIdempotentRetry:
    async def test_retry_returns_the_first_verdict_even_after_the_card_changed(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        token = qr_token(runtime, card)
        first = await verify(client, scanner, token, idempotency_key="scan-1")
        assert first.json()["verdict"] == "valid"
        await publish_card_snapshot(
            runtime.store, card.handle, CardSnapshot.of(CardStatus.lost, card.id, "张*丰")
        )
        retry = await verify(client, scanner, token, idempotency_key="scan-1")
        assert retry.json()["verdict"] == "valid"
        assert retry.json()["holder"] == first.json()["holder"]

    async def test_another_key_or_another_scanner_is_replayed(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        token = qr_token(runtime, card)
        other = await create_scanner(client, runtime, scanner.organisation_id, ["museum"])
        assert (await verify(client, scanner, token, idempotency_key="k1")).json()[
            "verdict"
        ] == "valid"
        assert (await verify(client, scanner, token, idempotency_key="k2")).json()[
            "verdict"
        ] == "replayed"
        assert (await verify(client, scanner, token)).json()["verdict"] == "replayed"
        assert (await verify(client, other, token, idempotency_key="k1")).json()[
            "verdict"
        ] == "replayed"


class TestConcurrentPresentations:
    async def test_many_scanners_at_once_yield_exactly_one_valid(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        organisation_id = await create_organisation(client, runtime)
        scanners = [
            await create_scanner(client, runtime, organisation_id, ["museum"]) for _ in range(5)
        ]
        token = qr_token(runtime, await create_scannable_card(runtime))
        responses = await asyncio.gather(
            *(verify(client, scanners[i % len(scanners)], token) for i in range(CONCURRENT))
        )
        verdicts = Counter(response.json()["verdict"] for response in responses)
        assert verdicts == {"valid": 1, "replayed": CONCURRENT - 1}

    async def test_one_scanner_without_keys_yields_exactly_one_valid(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        token = qr_token(runtime, await create_scannable_card(runtime))
        responses = await asyncio.gather(
            *(verify(client, scanner, token) for _ in range(CONCURRENT))
        )
        verdicts = Counter(response.json()["verdict"] for response in responses)
        assert verdicts == {"valid": 1, "replayed": CONCURRENT - 1}

    async def test_retries_with_one_key_all_get_the_first_verdict(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        token = qr_token(runtime, await create_scannable_card(runtime))
        key = uuid.uuid4().hex
        responses = await asyncio.gather(
            *(verify(client, scanner, token, idempotency_key=key) for _ in range(CONCURRENT))
        )
        verdicts = Counter(response.json()["verdict"] for response in responses)
        assert verdicts == {"valid": CONCURRENT}
        assert len({response.json()["holder"]["pseudonym"] for response in responses}) == 1


@contextmanager
def counted_statements(runtime: Runtime) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = runtime.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


class TestNoSqlOnTheHotPath:
    async def test_a_warm_verify_runs_no_sql(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        assert await verdict_of(client, scanner, qr_token(runtime, card)) == "valid"
        token = qr_token(runtime, card)
        with counted_statements(runtime) as statements:
            response = await verify(client, scanner, token, idempotency_key="warm")
        assert response.json()["verdict"] == "valid"
        assert statements == []


class TestStoreDown:
    @pytest.mark.parametrize("idempotency_key", [None, "scan-42"])
    async def test_answers_503_never_valid(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        scanner: ScannerCredentials,
        idempotency_key: str | None,
    ) -> None:
        token = qr_token(runtime, await create_scannable_card(runtime))
        healthy = runtime.store
        runtime.store = RedisStore.from_url("redis://127.0.0.1:1/0")
        try:
            response = await verify(client, scanner, token, idempotency_key=idempotency_key)
        finally:
            await runtime.store.close()
            runtime.store = healthy
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
        assert "verdict" not in response.json()


class TestScannerDisablement:
    async def test_an_issued_token_stops_at_once_and_works_again_after_enable(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        base = f"/v1/admin/scanners/{scanner.client_id}"
        await client.post(f"{base}/disable", headers=admin_headers(runtime))
        token = qr_token(runtime, card)
        refused = await verify(client, scanner, token)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["type"] == "/problems/scanner-disabled"
        await client.post(f"{base}/enable", headers=admin_headers(runtime))
        assert await verdict_of(client, scanner, token) == "valid"  # refusal consumed nothing

    async def test_a_flushed_principal_is_refilled_from_the_database(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        await runtime.store.delete(principal_key(scanner.client_id))
        assert await verdict_of(client, scanner, qr_token(runtime, card)) == "valid"
        assert await runtime.store.get(principal_key(scanner.client_id)) == b"1"

    async def test_a_scan_after_a_flushed_principal_is_audited_as_answered(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        """One scan, one audit row, with the outcome that was answered (the first claim found
        no scanner mirror and must leave no `principal_rejected` behind)."""
        card = await create_scannable_card(runtime)
        token = qr_token(runtime, card)
        cti = runtime.token_verifier.verify(token).cti
        assert cti is not None
        await runtime.store.delete(principal_key(scanner.client_id))
        assert await verdict_of(client, scanner, token) == "valid"
        rows = await persisted_audit(runtime, "verify", lambda data: data.get("cti") == cti.hex())
        assert [(row["outcome"], row["status"] != "") for row in rows] == [("first", True)]

    async def test_a_principal_missing_even_after_the_refill_is_audited_once_as_rejected(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        scanner: ScannerCredentials,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async def refill_lost_again(*args: object) -> None:
            return None

        monkeypatch.setattr(verification_service, "refill_scanner_principal", refill_lost_again)
        card = await create_scannable_card(runtime)
        token = qr_token(runtime, card)
        cti = runtime.token_verifier.verify(token).cti
        assert cti is not None
        await runtime.store.delete(principal_key(scanner.client_id))
        response = await verify(client, scanner, token)
        assert response.json()["type"] == "/problems/scanner-disabled"
        rows = await persisted_audit(runtime, "verify", lambda data: data.get("cti") == cti.hex())
        assert [row["outcome"] for row in rows] == ["principal_rejected"]


class TestRequestContext:
    """The verify routes are served ahead of the app's middleware; they keep its duties."""

    async def test_answers_carry_the_request_id_given_or_a_new_one(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        headers = {**scanner.headers, "X-Request-ID": "gate-7.scan-1"}
        given = await client.post(
            "/v1/verify", json={"token": qr_token(runtime, card)}, headers=headers
        )
        assert given.headers["x-request-id"] == "gate-7.scan-1"
        refused = await client.post("/v1/verify", json={"token": "garbage"}, headers=headers)
        assert refused.headers["x-request-id"] == "gate-7.scan-1"
        fresh = await verify(client, scanner, qr_token(runtime, card))
        other = await verify(client, scanner, qr_token(runtime, card))
        assert len(fresh.headers["x-request-id"]) == 32
        assert fresh.headers["x-request-id"] != other.headers["x-request-id"]

    async def test_problems_name_the_request(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/verify", json={"token": "x"}, headers={"X-Request-ID": "rid-1"}
        )
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["request_id"] == "rid-1"

    @pytest.mark.parametrize("path", ["/v1/verify", "/v1/verify/batch"])
    async def test_oversized_bodies_are_413_with_or_without_a_length(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials, path: str
    ) -> None:
        too_big = b'{"token": "' + b"A" * runtime.settings.max_request_bytes + b'"}'
        declared = await client.post(path, content=too_big, headers=scanner.headers)

        async def chunks() -> Any:
            for start in range(0, len(too_big), 4096):
                yield too_big[start : start + 4096]

        streamed = await client.post(path, content=chunks(), headers=scanner.headers)
        for response in (declared, streamed):
            assert response.status_code == 413
            assert response.headers["content-type"] == PROBLEM

    async def test_an_unexpected_error_is_a_500_problem(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        scanner: ScannerCredentials,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        def broken(token: str) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(runtime.token_verifier, "verify", broken)
        card = await create_scannable_card(runtime)
        response = await verify(client, scanner, qr_token(runtime, card))
        assert response.status_code == 500
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "/problems/internal-error"

    async def test_requests_are_counted_by_route_and_status(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        await verify(client, scanner, qr_token(runtime, card))
        await client.post("/v1/verify", json={"token": "x"})
        text = (await client.get("/metrics")).text
        assert 'ssc_http_requests_total{method="POST",route="/v1/verify",status="200"} 1.0' in text
        assert 'ssc_http_requests_total{method="POST",route="/v1/verify",status="401"} 1.0' in text
