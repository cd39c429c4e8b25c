"""Published verification keys: JWKS for JOSE clients, a COSE key set for QR scanners."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from api.caching import cacheable_response
from api.deps import RuntimeDep
from api.json_bodies import StrictJsonRoute

router = APIRouter(tags=["keys"], route_class=StrictJsonRoute)

# Shorter than the time a next key is published before it signs, so caches pick it up.
KEYS_MAX_AGE = 300
COSE_KEY_SET_MEDIA_TYPE = "application/cose-key-set"


@router.get(
    "/.well-known/jwks.json",
    summary="Signing keys as a JWK set (next, active and still-verifying retired keys)",
    response_class=Response,
    responses={200: {"content": {"application/jwk-set+json": {}}}, 304: {}},
)
async def jwks(request: Request, runtime: RuntimeDep) -> Response:
    body = orjson.dumps(runtime.keyring.jwks())
    return cacheable_response(request, body, "application/jwk-set+json", max_age=KEYS_MAX_AGE)


@router.get(
    "/.well-known/cose-keys",
    summary="Signing keys as a CBOR COSE_KeySet for scanners",
    response_class=Response,
    responses={200: {"content": {COSE_KEY_SET_MEDIA_TYPE: {}}}, 304: {}},
)
async def cose_keys(request: Request, runtime: RuntimeDep) -> Response:
    body = runtime.keyring.cose_key_set()
    return cacheable_response(request, body, COSE_KEY_SET_MEDIA_TYPE, max_age=KEYS_MAX_AGE)
