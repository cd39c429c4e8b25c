"""The API skeleton: health, readiness, metrics, problem+json, request ids, size limits, keys."""

import base64

import cbor2
import httpx
import pytest
from fastapi import FastAPI

from app.audit.log import record
from app.config import Settings
from app.db import Database

PROBLEM = "application/problem+json"


class TestHealth:
    async def test_healthz_answers_while_the_process_is_up(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_reports_database_and_store(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        """Ready; `degraded` while the store does not persist (the test Redis runs without
        an AOF; tests/app/store/test_durability.py starts Redis both ways)."""
        response = await client.get("/readyz")
        assert response.status_code == 200
        body = response.json()
        assert (body["database"], body["store"]) == ("ok", "ok")
        if settings.redis_url:
            persistence = body["store_persistence"]
            assert persistence in {"ok", "degraded", "unknown"}
            assert body["status"] == ("ok" if persistence == "ok" else "degraded")
        else:
            assert (body["status"], body["store_persistence"]) == ("ok", "in-process")

    async def test_readyz_is_503_when_the_database_is_gone(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        healthy = app.state.runtime.database
        app.state.runtime.database = Database("postgresql+asyncpg://postgres@127.0.0.1:1/closed")
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["database"] == "down"
        await app.state.runtime.database.dispose()
        app.state.runtime.database = healthy


class TestMetrics:
    async def test_counts_requests_by_route_template(self, client: httpx.AsyncClient) -> None:
        await client.get("/healthz")
        await client.get("/healthz")
        text = (await client.get("/metrics")).text
        assert 'ssc_http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in text
        assert "ssc_http_request_duration_seconds_bucket" in text

    async def test_reports_the_audit_backlog_of_the_workers_consumer(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        consumer = app.state.audit_consumer
        assert consumer is not None  # the API runs its consumer by default
        await record(app.state.runtime.store, "test.event", "tester")
        backlog = await consumer.trim_once()
        text = (await client.get("/metrics")).text
        assert f"ssc_audit_backlog_entries {float(backlog)}" in text

    async def test_the_backlog_is_unknown_when_the_consumer_runs_elsewhere(
        self, app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(app.state, "audit_consumer", None)
        text = (await client.get("/metrics")).text
        assert "ssc_audit_backlog_entries NaN" in text


class TestProblemDetails:
    async def test_unknown_route_is_a_404_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/no/such/route")
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body["type"] == "/problems/not-found"
        assert body["status"] == 404
        assert body["instance"] == "/no/such/route"
        assert body["request_id"] == response.headers["x-request-id"]

    async def test_wrong_method_is_a_405_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/healthz")
        assert response.status_code == 405
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "/problems/method-not-allowed"

    async def test_oversized_body_is_a_413_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/healthz", content=b"x" * (65 * 1024))
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM
        assert "65536" in response.json()["detail"]


class TestRequestId:
    async def test_is_generated_when_absent(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert len(response.headers["x-request-id"]) == 32

    async def test_a_valid_incoming_id_is_kept(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "scan-42.a_b"})
        assert response.headers["x-request-id"] == "scan-42.a_b"

    async def test_a_hostile_incoming_id_is_replaced(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "a\tb" + "x" * 100})
        assert response.headers["x-request-id"] != "a\tb" + "x" * 100


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class TestPublishedKeys:
    async def test_jwks_has_exactly_one_active_es256_signing_key(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/.well-known/jwks.json")
        assert response.status_code == 200
        keys = response.json()["keys"]
        active = [key for key in keys if key.get("status") == "active"]
        assert len(active) == 1
        key = active[0]
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
        assert len(_b64url(key["kid"])) == 8
        assert len(_b64url(key["x"])) == len(_b64url(key["y"])) == 32

    async def test_jwks_is_cacheable_with_etag(self, client: httpx.AsyncClient) -> None:
        first = await client.get("/.well-known/jwks.json")
        assert "max-age" in first.headers["cache-control"]
        again = await client.get(
            "/.well-known/jwks.json", headers={"If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304
        assert again.content == b""

    async def test_cose_key_set_names_the_same_keys(self, client: httpx.AsyncClient) -> None:
        jwks = (await client.get("/.well-known/jwks.json")).json()["keys"]
        response = await client.get("/.well-known/cose-keys")
        assert response.status_code == 200
        assert response.headers["etag"]
        cose_keys = cbor2.loads(response.content)
        assert sorted(key[2] for key in cose_keys) == sorted(_b64url(k["kid"]) for k in jwks)
        for key in cose_keys:
            assert (key[1], key[3], key[-1]) == (2, -7, 1)


@pytest.mark.parametrize("path", ["/.well-known/jwks.json", "/.well-known/cose-keys"])
async def test_key_documents_are_stable_between_requests(
    client: httpx.AsyncClient, path: str
) -> None:
    first = await client.get(path)
    second = await client.get(path)
    assert first.headers["etag"] == second.headers["etag"]
