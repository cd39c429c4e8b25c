"""The app's stack is its own middlewares around the router (`EcardApi.build_middleware_stack`):
`RequestContextMiddleware` maps exceptions as Starlette's `ExceptionMiddleware` and
`ServerErrorMiddleware` did, and sets what FastAPI's routes read from the scope. The verify
routes read their body straight from `receive` (`api.routes.verify.request_body`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.app import ExactPostRoutes, create_app
from api.middleware import RequestContextMiddleware, RequestMetrics
from api.routes.verify import request_body
from app.config import Settings


class Recorder:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
async def test_the_stack_is_the_apps_middlewares_around_the_router(settings: Settings) -> None:
    app = create_app(settings)
    app.add_middleware(Recorder)
    stack: Any = app.build_middleware_stack()
    assert isinstance(stack, Recorder)
    assert isinstance(stack.app, RequestContextMiddleware)
    assert isinstance(stack.app.app, ExactPostRoutes)
    assert stack.app.app.router is app.router


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
async def test_the_verify_routes_are_found_by_their_exact_path(settings: Settings) -> None:
    """What the router would pick for them, and only for POST on the exact path: every other
    method or spelling goes to the router, which answers as before."""
    app = create_app(settings)
    routes = ExactPostRoutes(app.router)
    assert set(routes.routes) == {"/v1/verify", "/v1/verify/batch"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            unauthenticated = await http.post("/v1/verify", json={"token": "x"})
            wrong_method = await http.get("/v1/verify")
            other_spelling = await http.post("/v1/verify/", json={"token": "x"})
            metrics = (await http.get("/metrics")).text
    assert unauthenticated.status_code == 401
    assert wrong_method.status_code == 405
    assert other_spelling.status_code in (307, 404)
    assert 'route="/v1/verify",status="401"' in metrics


async def test_requests_for_the_router_get_fastapis_stack_that_closes_uploaded_files() -> None:
    seen: list[object] = []

    async def router(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope.get("fastapi_middleware_astack"))

    routes = ExactPostRoutes(Router())
    routes.router = router  # type: ignore[assignment]
    await routes({"type": "http", "method": "GET", "path": "/x"}, _receive(), _drop)
    assert len(seen) == 1 and isinstance(seen[0], AsyncExitStack)


async def _drop(message: Message) -> None:
    raise AssertionError("nothing is sent")


def _raising(error: Exception, *, after_start: bool = False) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["starlette.exception_handlers"][0]
        if after_start:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise error

    return app


def _answering(text: str) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handler(request: Request, error: Exception) -> Response:
        return PlainTextResponse(text, status_code=418)

    return handler


def _client(inner: ASGIApp, handlers: dict[Any, Any]) -> httpx.AsyncClient:
    middleware = RequestContextMiddleware(
        inner,
        max_body=1000,
        metrics=RequestMetrics(CollectorRegistry()),
        exception_handlers=handlers,
    )
    transport = httpx.ASGITransport(app=middleware, raise_app_exceptions=True)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


class TestExceptionsAreMappedAsStarletteMappedThem:
    async def test_by_the_nearest_class_of_the_error(self) -> None:
        handlers = {LookupError: _answering("lookup"), Exception: _answering("any")}
        async with _client(_raising(KeyError("k")), handlers) as http:
            response = await http.get("/")
        assert (response.status_code, response.text) == (418, "lookup")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-request-id"]

    async def test_by_status_first_for_an_http_exception(self) -> None:
        handlers = {404: _answering("status"), HTTPException: _answering("class")}
        async with _client(_raising(HTTPException(404)), handlers) as http:
            response = await http.get("/")
        assert response.text == "status"

    async def test_what_nothing_maps_goes_to_the_apps_500_handler(self) -> None:
        handlers = {KeyError: _answering("key"), Exception: _answering("any")}
        async with _client(_raising(ValueError("v")), handlers) as http:
            response = await http.get("/")
        assert response.text == "any"

    async def test_without_a_500_handler_the_answer_is_the_internal_error_problem(self) -> None:
        async with _client(_raising(ValueError("v")), {KeyError: _answering("key")}) as http:
            response = await http.get("/")
        assert response.status_code == 500
        assert orjson.loads(response.content)["type"] == "/problems/internal-error"

    async def test_an_error_after_the_answer_started_reaches_the_server(self) -> None:
        handlers = {ValueError: _answering("value")}
        async with _client(_raising(ValueError("v"), after_start=True), handlers) as http:
            with pytest.raises(ValueError):
                await http.get("/")


def _receive(*messages: Message) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0)

    return receive


def _request(receive: Receive) -> Request:
    return Request({"type": "http", "method": "POST", "headers": []}, receive)


class TestRequestBody:
    async def test_in_one_message(self) -> None:
        receive = _receive({"type": "http.request", "body": b'{"a":1}'})
        assert await request_body(_request(receive)) == b'{"a":1}'

    async def test_in_chunks_as_request_body_joins_them(self) -> None:
        receive = _receive(
            {"type": "http.request", "body": b'{"a"', "more_body": True},
            {"type": "http.request", "body": b"", "more_body": True},
            {"type": "http.request", "body": b":1}", "more_body": False},
        )
        assert await request_body(_request(receive)) == b'{"a":1}'

    async def test_a_client_gone_before_the_end_is_a_disconnect(self) -> None:
        receive = _receive(
            {"type": "http.request", "body": b'{"a"', "more_body": True},
            {"type": "http.disconnect"},
        )
        with pytest.raises(ClientDisconnect):
            await request_body(_request(receive))
