"""What every response says about itself (security headers, on the FastAPI stack and on the
verify fast path alike), and what is exposed: `/metrics` and the API docs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from api.app import create_app
from app.config import Environment, Settings
from tests.factories import create_scannable_card, create_scanner, qr_token

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
}
ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def assert_security_headers(response: httpx.Response, *, tls: bool) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], name
    if tls:
        assert response.headers["strict-transport-security"] == "max-age=31536000"
    else:
        assert "strict-transport-security" not in response.headers


@pytest.fixture
def service(settings: Settings) -> ClientFactory:
    """A client of a service built from `settings` with some of them changed."""

    @asynccontextmanager
    async def started(
        base_url: str = "http://testserver", **overrides: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        application = create_app(settings.model_copy(update=overrides))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
                yield http

    return started


class TestSecurityHeaders:
    @pytest.mark.parametrize("base_url", ["http://testserver", "https://testserver"])
    async def test_every_kind_of_answer_carries_them_and_hsts_only_over_tls(
        self, app: FastAPI, base_url: str
    ) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            card = await create_scannable_card(app.state.runtime)
            scanner = await create_scanner(http, app.state.runtime)
            answers = [
                await http.get("/healthz"),
                await http.get("/no/such/route"),
                await http.post("/healthz", content=b"x" * (65 * 1024)),
                await http.get("/.well-known/jwks.json"),
                # the verify fast path: a verdict, a problem, a body too large
                await http.post(
                    "/v1/verify",
                    json={"token": qr_token(app.state.runtime, card)},
                    headers=scanner.headers,
                ),
                await http.post("/v1/verify", json={"token": "x"}),
                await http.post("/v1/verify/batch", content=b"x" * (65 * 1024)),
            ]
        assert [answer.status_code for answer in answers] == [200, 404, 413, 200, 200, 401, 413]
        assert answers[4].json()["verdict"] == "valid"
        for answer in answers:
            assert_security_headers(answer, tls=base_url.startswith("https"))


class TestMetricsExposure:
    async def test_with_a_token_set_metrics_need_it(self, service: ClientFactory) -> None:
        async with service(metrics_token=SecretStr("s3cret-metrics-token")) as http:
            anonymous = await http.get("/metrics")
            wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
            right = await http.get(
                "/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"}
            )
        assert anonymous.status_code == wrong.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert right.status_code == 200
        assert "ssc_http_requests_total" in right.text

    async def test_production_without_a_token_or_a_listener_refuses(
        self, service: ClientFactory
    ) -> None:
        async with service(environment=Environment.production) as http:
            response = await http.get("/metrics")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert "ssc_http" not in response.text

    async def test_with_a_metrics_listener_they_are_served_there_only(
        self, service: ClientFactory
    ) -> None:
        async with service(
            "http://testserver:9464", environment=Environment.production, metrics_port=9464
        ) as on_listener:
            served = await on_listener.get("/metrics")
        async with service(
            "http://testserver:8000", environment=Environment.production, metrics_port=9464
        ) as on_api:
            refused = await on_api.get("/metrics")
        assert served.status_code == 200 and "ssc_http_requests_total" in served.text
        assert refused.status_code == 404

    async def test_development_serves_them_without_a_token(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/metrics")).status_code == 200


class TestDocs:
    DOCS = ("/docs", "/openapi.json", "/docs/assets/swagger-ui-bundle.js")

    async def test_served_outside_production(self, client: httpx.AsyncClient) -> None:
        for path in self.DOCS:
            assert (await client.get(path)).status_code == 200, path

    async def test_off_in_production_by_default(self, service: ClientFactory) -> None:
        async with service(environment=Environment.production) as http:
            for path in self.DOCS:
                assert (await http.get(path)).status_code == 404, path

    async def test_the_setting_decides_either_way(self, service: ClientFactory) -> None:
        async with service(environment=Environment.production, expose_docs=True) as http:
            assert (await http.get("/openapi.json")).status_code == 200
        async with service(expose_docs=False) as http:
            assert (await http.get("/openapi.json")).status_code == 404

    async def test_swagger_ui_loads_its_assets_from_this_service_only(
        self, client: httpx.AsyncClient
    ) -> None:
        page = await client.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
        assert urls, page.text
        assert [url for url in urls if not url.startswith("/")] == []
        for url in urls:
            answer = await client.get(url)
            assert answer.status_code == 200, url
            assert answer.content, url
        assert "/openapi.json" in urls
        assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(urls)

    async def test_assets_outside_the_distribution_are_not_found(
        self, client: httpx.AsyncClient
    ) -> None:
        for name in ("__init__.py", "..%2F..%2Fmain.py", "missing.js"):
            answer = await client.get(f"/docs/assets/{name}")
            assert answer.status_code == 404, name
            assert answer.headers["content-type"] == "application/problem+json"

    async def test_redoc_is_off(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/redoc")).status_code == 404

    async def test_metrics_label_them_by_their_path(self, client: httpx.AsyncClient) -> None:
        for path in self.DOCS:
            assert (await client.get(path)).status_code == 200, path
        metrics = (await client.get("/metrics")).text
        for route in ("/docs", "/openapi.json", "/docs/assets/{name}"):
            assert f'method="GET",route="{route}",status="200"' in metrics, route
        assert 'route="unmatched"' not in metrics
