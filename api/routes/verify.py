"""The verify hot path for venue scanners: one scan, or a batch of up to 100 from a gateway.

Both routes parse their small JSON bodies with orjson and hand-written checks instead of
pydantic models, and find the scanner through a per-application cache of decoded access
tokens (`ScannerTokenCache`): those two were the largest costs outside the signature check
(load/RESULTS.md). The pydantic models in `api.schemas.verify` still document the bodies.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

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
from app.errors import Unauthorized
from app.runtime import Runtime
from app.security.principals import ScannerPrincipal
from app.verification.scanners import ScannerTokenCache
from app.verification.service import Scan, verify_scans

router = APIRouter(tags=["verify"])

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


def _scanner(request: Request, credentials: BearerDep) -> ScannerPrincipal:
    if credentials is None:
        raise Unauthorized("a bearer access token is required")
    state = request.app.state
    cache: ScannerTokenCache | None = getattr(state, "scanner_tokens", None)
    if cache is None:
        runtime: Runtime = state.runtime
        cache = state.scanner_tokens = ScannerTokenCache(runtime.access_tokens)
    return cache.principal(credentials.credentials)


def _json(content: object) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


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
async def verify(request: Request, credentials: BearerDep) -> Response:
    """Any presentation of a token after its first is `replayed`, except a retry of that first
    scan by the same scanner with the same `Idempotency-Key`, which gets the first verdict."""
    scanner = _scanner(request, credentials)
    token, scene = parse_verify(await request.body())
    scan_id = parse_idempotency_key(request.headers.get("idempotency-key"))
    runtime: Runtime = request.app.state.runtime
    (result,) = await verify_scans(runtime, scanner, (Scan(token, scene, scan_id),))
    return _json(result.as_dict())


@router.post(
    "/v1/verify/batch",
    summary="Verify up to 100 scans in one request (gateways)",
    response_model=BatchVerifyResponse,
    response_class=Response,
    responses=_ERRORS,
    openapi_extra=_body(BatchVerifyRequest),
)
async def verify_batch(request: Request, credentials: BearerDep) -> Response:
    """Each scan gets its own verdict, in order, exactly as `POST /v1/verify` would give it
    (`scan_id` plays the `Idempotency-Key`); the whole batch costs one store round trip.
    A scan may carry the scanned string (`token`) or its binary COSE_Sign1 (`cose`,
    base64url): both give the same verdicts."""
    scanner = _scanner(request, credentials)
    parsed = parse_batch(await request.body())
    runtime: Runtime = request.app.state.runtime
    results = await verify_scans(
        runtime, scanner, [Scan(scan.token, scan.scene, scan.scan_id) for scan in parsed]
    )
    answers = []
    for scan, result in zip(parsed, results, strict=True):
        answer = result.as_dict()
        if scan.scan_id is not None:
            answer["scan_id"] = scan.scan_id
        answers.append(answer)
    return _json({"results": answers})
