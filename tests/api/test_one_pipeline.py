"""One request pipeline: every route, the verify hot path included, passes through every
middleware of the app, so a middleware added later cannot be skipped by a route that serves
itself; and the verify path keeps what it caches on the runtime, not in module globals."""

from __future__ import annotations

import copy
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from api.app import create_app
from app.config import Settings
from app.runtime import Runtime
from tests.factories import create_scannable_card, create_scanner, qr_token


class Recorder:
    """A middleware added after the fact, as a later change would add one."""

    def __init__(self, app: ASGIApp, seen: list[tuple[str, str]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


@pytest.fixture
def seen() -> list[tuple[str, str]]:
    return []


@pytest.fixture
async def recorded_app(settings: Settings, seen: list[tuple[str, str]]) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    application.add_middleware(Recorder, seen=seen)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def recorded_client(recorded_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=recorded_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def _operations(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path))
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
class TestNoRouteSkipsAMiddleware:
    async def test_a_middleware_added_later_sees_every_documented_operation(
        self,
        recorded_app: FastAPI,
        recorded_client: httpx.AsyncClient,
        seen: list[tuple[str, str]],
    ) -> None:
        operations = _operations(recorded_app)
        assert ("POST", "/v1/verify") in operations
        assert ("POST", "/v1/verify/batch") in operations
        for method, path in operations:
            await recorded_client.request(method, path, json={})
        assert seen == operations

    async def test_it_sees_valid_scans_single_and_batched(
        self,
        recorded_app: FastAPI,
        recorded_client: httpx.AsyncClient,
        seen: list[tuple[str, str]],
    ) -> None:
        runtime: Runtime = recorded_app.state.runtime
        scanner = await create_scanner(recorded_client, runtime, scenes=["museum"])
        card = await create_scannable_card(runtime)
        seen.clear()
        single = await recorded_client.post(
            "/v1/verify", json={"token": qr_token(runtime, card)}, headers=scanner.headers
        )
        batch = await recorded_client.post(
            "/v1/verify/batch",
            json={"scans": [{"token": qr_token(runtime, card)}]},
            headers=scanner.headers,
        )
        assert single.json()["verdict"] == "valid"
        assert batch.json()["results"][0]["verdict"] == "valid"
        assert seen == [("POST", "/v1/verify"), ("POST", "/v1/verify/batch")]


def _module_state() -> dict[str, Any]:
    """Every mutable container held in a global of the verify path's modules."""
    names = [
        name
        for name in sys.modules
        if name.startswith(("app.verification", "api.routes.verify", "api.schemas.verify"))
    ]
    state = {}
    for module_name in names:
        for name, value in vars(sys.modules[module_name]).items():
            if isinstance(value, dict | list | set | bytearray) and not name.startswith("__"):
                state[f"{module_name}.{name}"] = copy.deepcopy(value)
    return state


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
async def test_verifying_changes_no_module_global(app: FastAPI, client: httpx.AsyncClient) -> None:
    runtime: Runtime = app.state.runtime
    scanner = await create_scanner(client, runtime, scenes=["museum"])
    card = await create_scannable_card(runtime)
    before = _module_state()
    for scene in (None, "museum"):
        response = await client.post(
            "/v1/verify",
            json={"token": qr_token(runtime, card), "scene": scene},
            headers=scanner.headers,
        )
        assert response.json()["verdict"] == "valid"
    assert _module_state() == before


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
class TestMetricsOfTheDashboard:
    async def test_verdicts_are_counted_per_scan_by_verdict(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        runtime: Runtime = app.state.runtime
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        token = qr_token(runtime, await create_scannable_card(runtime))
        await client.post("/v1/verify", json={"token": token}, headers=scanner.headers)
        await client.post(
            "/v1/verify/batch",
            json={"scans": [{"token": token}, {"token": "SSC1:X"}]},
            headers=scanner.headers,
        )
        text = (await client.get("/metrics")).text
        assert 'ssc_verify_verdicts_total{verdict="valid"} 1.0' in text
        assert 'ssc_verify_verdicts_total{verdict="replayed"} 1.0' in text
        assert 'ssc_verify_verdicts_total{verdict="malformed"} 1.0' in text

    async def test_every_series_the_dashboard_reads_is_served(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        dashboard = json.loads(DASHBOARD.read_text())
        expressions = [
            target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
        ]
        wanted = {name for expr in expressions for name in re.findall(r"ssc_[a-z_]+", expr)}
        assert "ssc_verify_verdicts_total" in wanted
        await client.post(
            "/v1/verify", json={"token": "SSC1:X"}, headers=await _scanner(app, client)
        )
        served = (await client.get("/metrics")).text
        for name in wanted:
            assert re.search(rf"^{name}[{{ ]", served, re.M), name


DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"


async def _scanner(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    return (await create_scanner(client, app.state.runtime, scenes=["museum"])).headers
