"""The verify hot path for venue scanners: one scan, or a batch of up to 100 from a gateway.

Both routes go through the app's one middleware stack (request id, body limit, security
headers, metrics, access log, problem+json: `api.middleware`, `api.problems`) like every other
route. What they skip is FastAPI's per-request dependency solving and body binding, which cost
more than the rest of a scan outside its signature check (load/PROFILE.md): they are
`PlainRoute`s, whose endpoint takes the `Request` and returns the JSON body of its 200
answer, which the route sends as two ASGI messages. The body is
read by the same strict JSON reader as every route's (`api.json_bodies.loads`) and validated
by the pydantic models the OpenAPI document is generated from (`api.schemas.verify`); the
scanner is found through the runtime's cache of decoded access tokens
(`Runtime.scanner_tokens`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from api.auth import bearer
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
from app.verification.service import Scan, verify_scans

JSON = "application/json"
_JSON = JSON.encode()


class PlainRoute(APIRoute):
    """A route whose endpoint takes the `Request` and returns the JSON body of its 200 answer:
    FastAPI documents it from its decorator (response model, responses, `openapi_extra`) but
    solves no dependencies and binds no body for it. The middleware stack, routing,
    exception handlers and metrics are every route's; an error is an exception, mapped to
    problem+json by the app's handlers as any route's.

    Its only dependency may be the bearer scheme, which documents the security requirement
    and is read by the endpoint itself; anything else would silently not run, so it is
    refused when the route is built.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        documented = [dependency.call for dependency in self.dependant.dependencies]
        if documented != [bearer] or self.dependant.body_params or self.dependant.query_params:
            raise TypeError(
                f"{self.path}: a PlainRoute takes only the Request (and documents the bearer "
                "scheme); its dependencies and parameters would not run"
            )
        handler: Callable[[Request], Coroutine[Any, Any, bytes]] = self.endpoint

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            # The answer as Starlette's `Response(payload, media_type=JSON)` sends it, without
            # building one: its header list and the two messages are all there is to it.
            payload = await handler(Request(scope, receive, send))
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-length", str(len(payload)).encode()),
                        (b"content-type", _JSON),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})

        self.app = app


async def request_body(request: Request) -> bytes:
    """The whole body, read straight from the ASGI `receive` (what `Request.body()` does
    through an async generator, for a fraction of its cost).

    :raises ClientDisconnect: when the client went away before sending all of it.
    """
    receive = request.receive
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        if chunk:
            chunks.append(chunk)


def _scan_headers(request: Request) -> tuple[str | None, str | None]:
    """`Authorization` and `Idempotency-Key`, in one pass over the raw headers (the first of
    each, as `request.headers.get` gives it)."""
    authorization = idempotency_key = None
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif name == b"idempotency-key" and idempotency_key is None:
            idempotency_key = value.decode("latin-1")
    return authorization, idempotency_key


_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}}},
    401: {"description": "No, invalid or disabled scanner token", **_PROBLEM},
    403: {"description": "Token lacks the verify scope", **_PROBLEM},
    422: {"description": "Invalid body or Idempotency-Key", **_PROBLEM},
    503: {"description": "Store unavailable: no verdict can be given", **_PROBLEM},
}


def _body(model: type[VerifyRequest] | type[BatchVerifyRequest]) -> dict[str, Any]:
    """The request body's OpenAPI entry, from the model that validates it (`$defs` inlined:
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


def _scanner(runtime: Runtime, authorization: str | None) -> ScannerPrincipal:
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        raise Unauthorized("a bearer access token is required")
    return runtime.scanner_tokens.principal(credentials)


async def verify(request: Request) -> bytes:
    """Any presentation of a token after its first is `replayed`, except a retry of that first
    scan by the same scanner with the same `Idempotency-Key`, which gets the first verdict."""
    state = request.app.state
    runtime: Runtime = state.runtime
    authorization, idempotency_key = _scan_headers(request)
    scanner = _scanner(runtime, authorization)
    scan_id = parse_idempotency_key(idempotency_key)
    token, scene = parse_verify(await request_body(request))
    (result,) = await verify_scans(runtime, scanner, (Scan(token, scene, scan_id),))
    state.metrics.count_verdict(result.verdict.value)
    return orjson.dumps(result.as_dict())


async def verify_batch(request: Request) -> bytes:
    """Each scan gets its own verdict, in order, exactly as `POST /v1/verify` would give it
    (`scan_id` plays the `Idempotency-Key`); the whole batch costs one store round trip.
    A scan may carry the scanned string (`token`) or its binary COSE_Sign1 (`cose`,
    base64url): both give the same verdicts."""
    state = request.app.state
    runtime: Runtime = state.runtime
    authorization, _ = _scan_headers(request)
    scanner = _scanner(runtime, authorization)
    parsed = parse_batch(await request_body(request))
    results = await verify_scans(runtime, scanner, parsed)
    metrics = state.metrics
    answers = []
    for scan, result in zip(parsed, results, strict=True):
        metrics.count_verdict(result.verdict.value)
        answer = result.as_dict()
        if scan.idempotency_key is not None:
            answer["scan_id"] = scan.idempotency_key
        answers.append(answer)
    return orjson.dumps({"results": answers})


def install(app: FastAPI) -> None:
    """Adds the two routes to the app's own router, ahead of every other route: the router
    tries routes in order, and an included router costs a second matching step (about 10 us
    of a scan's CPU, `load/bench_pipeline.py`). Call before including any router."""
    common: dict[str, Any] = {
        "methods": ["POST"],
        "response_class": Response,
        "responses": _ERRORS,
        "tags": ["verify"],
        "dependencies": [Depends(bearer)],
        "route_class_override": PlainRoute,
    }
    app.router.add_api_route(
        "/v1/verify",
        verify,
        summary="Verify a scanned QR token, once",
        response_model=VerifyResponse,
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
        **common,
    )
    app.router.add_api_route(
        "/v1/verify/batch",
        verify_batch,
        summary="Verify up to 100 scans in one request (gateways)",
        response_model=BatchVerifyResponse,
        openapi_extra=_body(BatchVerifyRequest),
        **common,
    )
