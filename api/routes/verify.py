"""The verify hot path for venue scanners."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Header
from starlette.responses import Response

from api.auth import CurrentScanner
from api.deps import RuntimeDep
from api.schemas.verify import IDEMPOTENCY_KEY_PATTERN, VerifyRequest, VerifyResponse
from app.verification.service import Scan, verify_scans

router = APIRouter(tags=["verify"])

_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}


@router.post(
    "/v1/verify",
    summary="Verify a scanned QR token, once",
    response_model=VerifyResponse,
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}}},
        401: {"description": "No, invalid or disabled scanner token", **_PROBLEM},
        403: {"description": "Token lacks the verify scope", **_PROBLEM},
        422: {"description": "Invalid body or Idempotency-Key", **_PROBLEM},
        503: {"description": "Store unavailable: no verdict can be given", **_PROBLEM},
    },
)
async def verify(
    body: VerifyRequest,
    scanner: CurrentScanner,
    runtime: RuntimeDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Scanner-chosen scan id: a retry with the same id gets the first verdict",
        ),
    ] = None,
) -> Response:
    """Any presentation of a token after its first is `replayed`, except a retry of that first
    scan by the same scanner with the same `Idempotency-Key`, which gets the first verdict."""
    (result,) = await verify_scans(
        runtime, scanner, (Scan(body.token, body.scene, idempotency_key),)
    )
    return Response(orjson.dumps(result.as_dict()), media_type="application/json")
