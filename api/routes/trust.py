"""Published status list and trust list, the registry of other issuers, scanner bundles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from api.auth import CurrentAdmin, CurrentScanner
from api.caching import cacheable_response
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.schemas.trust import IssuerCreate, IssuerOut, StatusListUpload, decode_base64url
from app.trust import bundles, issuers, status_lists, trust_lists
from app.trust.documents import SignedDocument
from app.verification.scanners import ensure_scanner_enabled

router = APIRouter(tags=["trust"], route_class=StrictJsonRoute)

_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_ADMIN_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid admin token", **_PROBLEM},
    403: {"description": "Token lacks the admin scope", **_PROBLEM},
}
IssuerCodePath = Annotated[str, Path(pattern=r"^[0-9A-Z]{2,12}$")]


def _negotiated(
    request: Request, document: SignedDocument, cwt_type: str, jwt_type: str, max_age: int
) -> Response:
    """CWT unless the client asks for the JWT form; caches keyed by `Accept`."""
    if jwt_type in request.headers.get("accept", ""):
        response = cacheable_response(request, document.jwt.encode(), jwt_type, max_age=max_age)
    else:
        response = cacheable_response(request, document.cwt, cwt_type, max_age=max_age)
    response.headers["Vary"] = "Accept"
    return response


@router.get(
    "/v1/status-lists/{issuer}",
    summary="Our signed Token Status List (2 bits per card), CWT or JWT by Accept",
    response_class=Response,
    responses={
        200: {
            "content": {status_lists.CWT_MEDIA_TYPE: {}, status_lists.JWT_MEDIA_TYPE: {}},
            "description": "The list; Cache-Control max-age is SSC_STATUS_LIST_TTL",
        },
        304: {"description": "Not modified (If-None-Match)"},
        404: {"description": "We publish no list for this issuer", **_PROBLEM},
    },
)
async def status_list(request: Request, issuer: IssuerCodePath, runtime: RuntimeDep) -> Response:
    document = await status_lists.published_status_list(runtime, issuer)
    return _negotiated(
        request,
        document,
        status_lists.CWT_MEDIA_TYPE,
        status_lists.JWT_MEDIA_TYPE,
        runtime.settings.status_list_ttl,
    )


@router.get(
    "/v1/trust-list",
    summary="The signed list of issuers we accept (ourselves included), CWT or JWT by Accept",
    response_class=Response,
    responses={
        200: {"content": {trust_lists.CWT_MEDIA_TYPE: {}, trust_lists.JWT_MEDIA_TYPE: {}}},
        304: {"description": "Not modified (If-None-Match)"},
    },
)
async def trust_list(request: Request, runtime: RuntimeDep) -> Response:
    document = await trust_lists.published_trust_list(runtime)
    return _negotiated(
        request,
        document,
        trust_lists.CWT_MEDIA_TYPE,
        trust_lists.JWT_MEDIA_TYPE,
        runtime.settings.status_list_ttl,
    )


@router.get("/v1/admin/trusted-issuers", response_model=list[IssuerOut], responses=_ADMIN_ERRORS)
async def list_trusted_issuers(admin: CurrentAdmin, session: SessionDep) -> list[IssuerOut]:
    """Other issuers whose tokens we accept (ourselves not included)."""
    return [IssuerOut.of(record) for record in await issuers.list_issuers(session)]


@router.post(
    "/v1/admin/trusted-issuers",
    status_code=201,
    response_model=IssuerOut,
    responses={
        **_ADMIN_ERRORS,
        409: {"description": "The issuer is registered already", **_PROBLEM},
        422: {"description": "Invalid body, unusable keys, or our own code", **_PROBLEM},
    },
)
async def register_trusted_issuer(
    body: IssuerCreate, admin: CurrentAdmin, runtime: RuntimeDep
) -> IssuerOut:
    """Its tokens verify on every worker within a second of this answer."""
    record = await issuers.register_issuer(runtime, admin.client_id, body.registration())
    return IssuerOut.of(record)


@router.delete(
    "/v1/admin/trusted-issuers/{code}",
    status_code=204,
    response_class=Response,
    responses={**_ADMIN_ERRORS, 404: {"description": "No such issuer", **_PROBLEM}},
)
async def remove_trusted_issuer(
    code: IssuerCodePath, admin: CurrentAdmin, runtime: RuntimeDep
) -> Response:
    await issuers.remove_issuer(runtime, admin.client_id, code)
    return Response(status_code=204)


@router.put(
    "/v1/admin/trusted-issuers/{code}/status-list",
    response_model=IssuerOut,
    responses={
        **_ADMIN_ERRORS,
        404: {"description": "No such issuer", **_PROBLEM},
        422: {"description": "Not a current list signed by the issuer", **_PROBLEM},
    },
)
async def upload_status_list(
    code: IssuerCodePath, body: StatusListUpload, admin: CurrentAdmin, runtime: RuntimeDep
) -> IssuerOut:
    """The issuer's latest signed status list, embedded in scanners' offline bundles."""
    signed = decode_base64url(body.status_list, "status_list")
    record = await issuers.store_status_list(runtime, admin.client_id, code, signed)
    return IssuerOut.of(record)


@router.get(
    "/v1/scanner/bundle",
    summary="This scanner's signed offline verifier bundle",
    response_class=Response,
    responses={
        200: {"content": {bundles.MEDIA_TYPE: {}}},
        304: {"description": "Nothing changed since the bundle with this ETag"},
        401: {"description": "No or invalid scanner token, or scanner disabled", **_PROBLEM},
        403: {"description": "Token lacks the verify scope", **_PROBLEM},
    },
)
async def scanner_bundle(
    request: Request, scanner: CurrentScanner, runtime: RuntimeDep, session: SessionDep
) -> Response:
    """Keys of trusted issuers, their status lists, this scanner's scenes; signed by us. A
    disabled scanner, or one of a withdrawn organisation, gets none (401 scanner-disabled)."""
    await ensure_scanner_enabled(session, runtime.store, scanner.client_id)
    bundle = await bundles.scanner_bundle(runtime, scanner)
    headers = {"ETag": bundle.etag, "Cache-Control": "private, no-cache"}
    candidates = {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}
    if bundle.etag in candidates:
        return Response(status_code=304, headers=headers)
    return Response(bundle.data, media_type=bundles.MEDIA_TYPE, headers=headers)
