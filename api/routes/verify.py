"""The verify hot path for venue scanners: one scan, or a batch of up to 100 from a gateway.

Both routes parse their small JSON bodies with orjson and hand-written checks instead of
pydantic models, and find the scanner through a per-application cache of decoded access
tokens (`ScannerTokenCache`): those two were the largest costs outside the signature check
(load/RESULTS.md). The pydantic models in `api.schemas.verify` still document the bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import BearerDep
from api.schemas.verify import (
    IDEMPOTENCY_KEY_PATTERN,
    BatchVerifyRequest,
    BatchVerifyResponse,
    VerifyRequest,
    VerifyResponse,
    parse_batch,
    parse_idempotency_key,
    parse_verify,
)
from app.errors import DomainError, Unauthorized
from app.runtime import Runtime
from app.security.principals import ScannerPrincipal
from app.store import StoreUnavailable
from app.verification.scanners import ScannerTokenCache
from app.verification.service import Scan, verify_scans

router = APIRouter(tags=["verify"])
JSON = "application/json"

_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}}},
    401: {"description": "No, invalid or disabled scanner token", **_PROBLEM},
    403: {"description": "Token lacks the verify scope", **_PROBLEM},
    422: {"description": "Invalid body or Idempotency-Key", **_PROBLEM},
    503: {"description": "Store unavailable: no verdict can be given", **_PROBLEM},
}


def _body(model: type[VerifyRequest] | type[BatchVerifyRequest]) -> dict[str, Any]:
    """The request body's OpenAPI entry, from the model that documents it (`$defs` inlined:
    OpenAPI resolves references from the document's root)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: object) -> object:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return inline(definitions[reference.removeprefix("#/$defs/")])
            return {name: inline(value) for name, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline(schema)}},
        }
    }


def _scanner(app_state: State, authorization: str | None) -> ScannerPrincipal:
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        raise Unauthorized("a bearer access token is required")
    cache: ScannerTokenCache | None = getattr(app_state, "scanner_tokens", None)
    if cache is None:
        runtime: Runtime = app_state.runtime
        cache = app_state.scanner_tokens = ScannerTokenCache(runtime.access_tokens)
    return cache.principal(credentials)


async def answer_verify(
    app_state: State, authorization: str | None, idempotency_key: str | None, body: bytes
) -> bytes:
    """The JSON answer of `POST /v1/verify`, shared by the route and the fast path.

    :raises DomainError, RequestValidationError, StoreUnavailable: mapped to problem+json.
    """
    scanner = _scanner(app_state, authorization)
    token, scene = parse_verify(body)
    scan_id = parse_idempotency_key(idempotency_key)
    (result,) = await verify_scans(app_state.runtime, scanner, (Scan(token, scene, scan_id),))
    return orjson.dumps(result.as_dict())


async def answer_batch(app_state: State, authorization: str | None, body: bytes) -> bytes:
    """The JSON answer of `POST /v1/verify/batch`, shared by the route and the fast path."""
    scanner = _scanner(app_state, authorization)
    parsed = parse_batch(body)
    results = await verify_scans(
        app_state.runtime, scanner, [Scan(scan.token, scan.scene, scan.scan_id) for scan in parsed]
    )
    answers = []
    for scan, result in zip(parsed, results, strict=True):
        answer = result.as_dict()
        if scan.scan_id is not None:
            answer["scan_id"] = scan.scan_id
        answers.append(answer)
    return orjson.dumps({"results": answers})


@router.post(
    "/v1/verify",
    summary="Verify a scanned QR token, once",
    response_model=VerifyResponse,
    response_class=Response,
    responses=_ERRORS,
    openapi_extra={
        **_body(VerifyRequest),
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Scanner-chosen scan id: a retry with the same id gets the "
                "first verdict",
                "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
            }
        ],
    },
)
async def verify(request: Request, _: BearerDep) -> Response:
    """Any presentation of a token after its first is `replayed`, except a retry of that first
    scan by the same scanner with the same `Idempotency-Key`, which gets the first verdict."""
    headers = request.headers
    answer = await answer_verify(
        request.app.state,
        headers.get("authorization"),
        headers.get("idempotency-key"),
        await request.body(),
    )
    return Response(answer, media_type=JSON)


@router.post(
    "/v1/verify/batch",
    summary="Verify up to 100 scans in one request (gateways)",
    response_model=BatchVerifyResponse,
    response_class=Response,
    responses=_ERRORS,
    openapi_extra=_body(BatchVerifyRequest),
)
async def verify_batch(request: Request, _: BearerDep) -> Response:
    """Each scan gets its own verdict, in order, exactly as `POST /v1/verify` would give it
    (`scan_id` plays the `Idempotency-Key`); the whole batch costs one store round trip.
    A scan may carry the scanned string (`token`) or its binary COSE_Sign1 (`cose`,
    base64url): both give the same verdicts."""
    answer = await answer_batch(
        request.app.state, request.headers.get("authorization"), await request.body()
    )
    return Response(answer, media_type=JSON)


class VerifyFastPath:
    """Serves the two verify routes straight from ASGI, past FastAPI's router, dependency
    solving and inner middlewares (a third of a scan's CPU outside the signature check,
    load/RESULTS.md); every other request goes on to the app.

    It runs inside `RequestContextMiddleware` (request id, body limit, metrics, access log).
    Errors become the same problem+json as on the routes, through the app's own handlers.
    The routes stay registered: they document the API and serve if this layer is absent.
    """

    def __init__(
        self, app: ASGIApp, *, handlers: Mapping[Any, Callable[[Request, Exception], Any]]
    ) -> None:
        self.app = app
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or scope["method"] != "POST" or path not in _FAST_ROUTES:
            await self.app(scope, receive, send)
            return
        scope["route"] = _FAST_ROUTES[path]
        authorization = idempotency_key = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"idempotency-key":
                idempotency_key = value.decode("latin-1")
        body = await _read_body(receive)
        if body is None:
            return  # the client left before sending its body: nobody to answer
        try:
            state = scope["app"].state
            if path == "/v1/verify":
                answer = await answer_verify(state, authorization, idempotency_key, body)
            else:
                answer = await answer_batch(state, authorization, body)
        except (DomainError, RequestValidationError, StoreUnavailable) as error:
            response = await self._problem(scope, error)
            await response(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def _problem(self, scope: Scope, error: Exception) -> Response:
        for kind in type(error).__mro__:
            handler = self.handlers.get(kind)
            if handler is not None:
                response: Response = await handler(Request(scope), error)
                return response
        raise error


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class _RouteTemplate:
    """What `RequestContextMiddleware` reads from `scope["route"]` for its metrics labels."""

    path: str


_FAST_ROUTES = {path: _RouteTemplate(path) for path in ("/v1/verify", "/v1/verify/batch")}
