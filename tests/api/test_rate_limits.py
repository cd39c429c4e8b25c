"""Rate limits: per client address and per card on login, per client address on the token
endpoint, per holder on QR issuance, per address on applications. Past a limit: 429
problem+json with `Retry-After`; counted in the store, so they hold across workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from app.config import Settings
from app.ratelimits import RateLimit, RateLimited, RateLimitRule, address_subject, enforce
from app.security.pii import PiiCipher
from app.store import Store, StoreUnavailable
from tests.factories import application_body, create_active_holder, issue_card

PROBLEM = "application/problem+json"
Service = Callable[..., AbstractAsyncContextManager[FastAPI]]


@pytest.fixture
def service(settings: Settings) -> Service:
    """A running service whose settings differ from `settings` by `overrides`."""

    @asynccontextmanager
    async def started(**overrides: Any) -> AsyncIterator[FastAPI]:
        application = create_app(settings.model_copy(update=overrides))
        async with application.router.lifespan_context(application):
            yield application

    return started


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    """A client whose requests come from `address` (the ASGI client)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def login_body(card_number: str, pin: str = "000000") -> dict[str, str]:
    return {"card_number": card_number, "pin": pin, "device_id": "phone-rate-limits"}


WINDOW = 3600
"""The limits' window in these tests: counts are kept per fixed window, so a test that ran
across a window's end would start counting anew (an hour makes that all but impossible)."""


def assert_rate_limited(response: httpx.Response, window: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/too-many-requests"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= window
    assert response.json()["retry_after"] == retry_after


class TestLogin:
    async def test_per_address_then_429_while_other_addresses_go_on(self, service: Service) -> None:
        async with service(rate_limit_login_per_address="3/3600") as app:
            async with client_at(app, "203.0.113.7") as http:
                answers = [
                    await http.post("/v1/auth/login", json=login_body(f"36{n:010d}"))
                    for n in range(4)
                ]
            async with client_at(app, "203.0.113.8") as other:
                elsewhere = await other.post("/v1/auth/login", json=login_body("360000000009"))
        assert [answer.status_code for answer in answers[:3]] == [401, 401, 401]
        assert_rate_limited(answers[3], WINDOW)
        assert elsewhere.status_code == 401

    async def test_per_card_across_addresses_alike_for_unknown_and_real_cards(
        self, service: Service, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async with service(rate_limit_login_per_card="2/3600") as app:
            store: Store = app.state.runtime.store
            counted: list[str] = []
            original_incr = store.incr

            async def recording_incr(key: str, *args: Any, **kwargs: Any) -> int:
                counted.append(key)
                return await original_incr(key, *args, **kwargs)

            monkeypatch.setattr(store, "incr", recording_incr)
            async with client_at(app, "198.51.100.1") as http:
                real = await create_active_holder(http, app)
            answers: dict[str, list[httpx.Response]] = {}
            for kind, number in (("real", real.card_number), ("unknown", "369999999990")):
                answers[kind] = []
                for attempt in range(3):  # from a new address each time
                    async with client_at(app, f"198.51.100.{10 + attempt}") as http:
                        answers[kind].append(
                            await http.post("/v1/auth/login", json=login_body(number))
                        )
            # full-width digits and spaces are the same card, not a new budget
            async with client_at(app, "198.51.100.20") as http:
                variant = " ".join(chr(ord(digit) + 0xFEE0) for digit in real.card_number)
                disguised = await http.post("/v1/auth/login", json=login_body(variant))
        for kind in ("real", "unknown"):
            assert [answer.status_code for answer in answers[kind]] == [401, 401, 429], kind
            assert_rate_limited(answers[kind][2], WINDOW)
        assert_rate_limited(disguised, WINDOW)

        def comparable(response: httpx.Response) -> dict[str, Any]:
            body: dict[str, Any] = response.json()
            body.pop("request_id")
            body.pop("retry_after")
            body["detail"] = "retry after" in body["detail"]
            return body

        assert comparable(answers["real"][2]) == comparable(answers["unknown"][2])
        assert counted, "the limits count in the store"
        assert not [key for key in counted if real.card_number in key or "198.51" in key]

    async def test_the_right_pin_is_refused_too_past_the_card_limit(self, service: Service) -> None:
        async with (
            service(rate_limit_login_per_card="1/3600") as app,
            client_at(app, "192.0.2.1") as http,
        ):
            holder = await create_active_holder(http, app)
            body = {
                "card_number": holder.card_number,
                "pin": holder.pin,
                "device_id": holder.device_id,
            }
            first = await http.post("/v1/auth/login", json=body)
            second = await http.post("/v1/auth/login", json=body)
        assert first.status_code == 200
        assert_rate_limited(second, WINDOW)

    async def test_a_pin_reset_spends_the_login_budget_of_its_card(self, service: Service) -> None:
        async with (
            service(rate_limit_login_per_card="2/3600") as app,
            client_at(app, "192.0.2.2") as http,
        ):
            holder = await create_active_holder(http, app)
            login = await http.post("/v1/auth/login", json=login_body(holder.card_number))
            reset_body = {
                "card_number": holder.card_number,
                "document_number": holder.card.document_number,
                "device_id": holder.device_id,
                "new_pin": "604182",
            }
            reset = await http.post("/v1/auth/pin-reset", json=reset_body)
            again = await http.post("/v1/auth/pin-reset", json=reset_body)
        assert (login.status_code, reset.status_code) == (401, 204)
        assert_rate_limited(again, WINDOW)

    async def test_a_limit_holds_across_workers_sharing_the_store(
        self, service: Service, settings: Settings
    ) -> None:
        if not settings.redis_url:
            pytest.skip("one process only: the memory store is per process")
        async with (
            service(rate_limit_login_per_address="2/3600") as worker_a,
            service(rate_limit_login_per_address="2/3600") as worker_b,
            client_at(worker_a, "203.0.113.50") as a,
            client_at(worker_b, "203.0.113.50") as b,
        ):
            statuses = [
                (await a.post("/v1/auth/login", json=login_body("360000000001"))).status_code,
                (await b.post("/v1/auth/login", json=login_body("360000000002"))).status_code,
            ]
            third = await a.post("/v1/auth/login", json=login_body("360000000003"))
            fourth = await b.post("/v1/auth/login", json=login_body("360000000004"))
        assert statuses == [401, 401]
        assert_rate_limited(third, WINDOW)
        assert_rate_limited(fourth, WINDOW)


async def test_token_endpoint_per_client_address(service: Service) -> None:
    async with service(rate_limit_token_per_address="2/3600") as app:
        async with client_at(app, "203.0.113.30") as http:
            answers = [
                await http.post(
                    "/v1/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=("scn_nobody", "wrong-secret"),
                )
                for _ in range(3)
            ]
        async with client_at(app, "203.0.113.31") as other:
            elsewhere = await other.post(
                "/v1/oauth/token", data={"grant_type": "client_credentials"}
            )
    assert [answer.status_code for answer in answers[:2]] == [401, 401]
    assert_rate_limited(answers[2], WINDOW)
    assert elsewhere.status_code != 429


async def test_qr_issuance_per_holder(service: Service) -> None:
    async with (
        service(rate_limit_qr_per_holder="2/3600") as app,
        client_at(app, "203.0.113.40") as http,
    ):
        holder = await create_active_holder(http, app)
        other = await create_active_holder(http, app)
        answers = [
            await http.get("/v1/me/qr", headers=holder.headers),
            await http.get("/v1/me/qr.svg", headers=holder.headers),
            await http.get("/v1/me/qr.png", headers=holder.headers),
            await http.get("/v1/me/qr", headers=holder.headers),
        ]
        others = await http.get("/v1/me/qr", headers=other.headers)
        anonymous = await http.get("/v1/me/qr")
    assert [answer.status_code for answer in answers[:2]] == [200, 200]
    assert_rate_limited(answers[2], WINDOW)
    assert_rate_limited(answers[3], WINDOW)
    assert others.status_code == 200
    assert anonymous.status_code == 401


async def test_applications_per_client_address(service: Service) -> None:
    async with service(rate_limit_applications_per_address="2/3600") as app:
        async with client_at(app, "203.0.113.60") as http:
            answers = [
                await http.post("/v1/applications", json=application_body()) for _ in range(3)
            ]
        async with client_at(app, "203.0.113.61") as other:
            elsewhere = await other.post("/v1/applications", json=application_body())
            # the admin's approval is not an application: not limited by it
            await issue_card(other, app)
    assert [answer.status_code for answer in answers[:2]] == [201, 201]
    assert_rate_limited(answers[2], 3600)
    assert elsewhere.status_code == 201


async def test_a_limit_that_cannot_be_counted_is_not_waived(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*args: Any, **kwargs: Any) -> int:
        raise StoreUnavailable("store down")

    monkeypatch.setattr(app.state.runtime.store, "incr", unreachable)
    response = await client.post("/v1/applications", json=application_body())
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) >= 1


def test_the_429_is_documented_on_every_limited_operation(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    for path, method in (
        ("/v1/auth/login", "post"),
        ("/v1/auth/pin-reset", "post"),
        ("/v1/oauth/token", "post"),
        ("/v1/applications", "post"),
        ("/v1/me/qr", "get"),
        ("/v1/me/qr.png", "get"),
        ("/v1/me/qr.svg", "get"),
    ):
        documented = paths[path][method]["responses"]["429"]
        assert "Retry-After" in documented["headers"], path


class TestCounting:
    async def test_retry_after_is_the_rest_of_the_window(self, store: Store) -> None:
        limited = Settings(environment="test", rate_limit_qr_per_holder="2/60")
        pii = PiiCipher.from_master_key(b"k" * 32)
        start = 1_000_040.0  # 20 s into the window [1_000_020, 1_000_080)
        for offset in (0.0, 10.0):
            await enforce(store, pii, limited, RateLimitRule.qr_per_holder, "h", now=start + offset)
        with pytest.raises(RateLimited) as refused:
            await enforce(store, pii, limited, RateLimitRule.qr_per_holder, "h", now=start + 15.5)
        assert refused.value.retry_after == 25  # 1_000_080 - 1_000_055.5, rounded up
        # the next window starts afresh; another subject never shared this one's budget
        await enforce(store, pii, limited, RateLimitRule.qr_per_holder, "h", now=start + 40.0)
        await enforce(store, pii, limited, RateLimitRule.qr_per_holder, "g", now=start + 15.5)

    def test_limits_are_settings_with_production_defaults(self) -> None:
        defaults = Settings(environment="test")  # the same in every environment
        assert RateLimit.of(defaults, RateLimitRule.login_per_card) == RateLimit(10, 60)
        assert RateLimit.of(defaults, RateLimitRule.applications_per_address).seconds == 3600


@pytest.mark.parametrize(
    ("host", "subject"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        (None, "unknown"),
    ],
)
def test_an_ipv6_client_counts_by_its_64_prefix(host: str | None, subject: str) -> None:
    assert address_subject(host) == subject
