"""The verify hot path for venue scanners: one scan, or a batch of up to 100 from a gateway.

Both routes parse their small JSON bodies with orjson and hand-written checks instead of
pydantic models, and find the scanner through a per-application cache of decoded access
tokens (`ScannerTokenCache`): those two were the largest costs outside the signature check
(load/RESULTS.md). The pydantic models in `api.schemas.verify` still document the bodies.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from api.auth import BearerDep
from api.json_bodies import StrictJsonRoute
from api.middleware import (
    RequestMetrics,
    RequestTooLarge,
    declared_length,
    log_access,
    request_id_of,
    security_headers,
    send_too_large,
)
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
from app.errors import Unauthorized
from app.runtime import Runtime
from app.security.principals import ScannerPrincipal
from app.verification.scanners import ScannerTokenCache
from app.verification.service import Scan, verify_scans

router = APIRouter(tags=["verify"], route_class=StrictJsonRoute)
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
    """Serves the two verify routes before the rest of the app: past FastAPI's telemetry,
    Starlette's middleware stack, router, dependency solving and the request-context
    middleware (together more CPU than a scan's own checks, load/PROFILE.md).

    It does their duties for these two routes itself: request id (`X-Request-ID`), body size
    limit, the security headers (`api.middleware.SECURITY_HEADERS`), metrics, access log, and
    problem+json for every error through the app's own handlers, 500 included. The routes
    stay registered: they document the API and serve when the app is called without this
    layer.
    """

    def __init__(self, app: FastAPI, *, max_body: int, metrics: RequestMetrics) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics

    @staticmethod
    def serves(scope: Scope) -> bool:
        return (
            scope["type"] == "http"
            and scope["path"] in _FAST_ROUTES
            and (scope["method"] == "POST")
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path = scope["path"]
        scope["app"] = self.app
        request_id = request_id_of(scope)
        authorization = idempotency_key = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"idempotency-key":
                idempotency_key = value.decode("latin-1")
        declared = declared_length(scope)
        status = 200
        try:
            if declared is not None and declared > self.max_body:
                status = 413
                await send_too_large(send, scope, request_id, self.max_body)
                return
            state = self.app.state
            try:
                body = await _read_body(receive, self.max_body)
                if body is None:
                    status = 499  # the client left before sending its body: nobody to answer
                    return
                if path == "/v1/verify":
                    answer = await answer_verify(state, authorization, idempotency_key, body)
                else:
                    answer = await answer_batch(state, authorization, body)
            except RequestTooLarge:
                status = 413
                await send_too_large(send, scope, request_id, self.max_body)
                return
            except Exception as error:  # every error answers as the app would answer it
                response = await self._problem(scope, error)
                status = response.status_code
                response.headers["x-request-id"] = request_id
                response.raw_headers.extend(security_headers(scope))
                await response(scope, receive, send)
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"%d" % len(answer)),
                        (b"x-request-id", request_id.encode()),
                        *security_headers(scope),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": answer})
        finally:
            self.metrics.observe("POST", path, status, time.perf_counter() - started)
            log_access(scope, status, started, request_id)

    async def _problem(self, scope: Scope, error: Exception) -> Response:
        for kind in type(error).__mro__:
            handler = self.app.exception_handlers.get(kind)
            if handler is not None:
                response = handler(Request(scope), error)
                return await response if inspect.isawaitable(response) else response
        raise error


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body; None when the client disconnected first.

    :raises RequestTooLarge: past `limit` bytes (a body sent without Content-Length).
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


_FAST_ROUTES = frozenset(("/v1/verify", "/v1/verify/batch"))
