"""Organisations (venues) and API clients (scanners), and the OAuth2 token endpoint."""

from __future__ import annotations

import uuid

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from api.auth import CurrentAdmin
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.rate_limits import RATE_LIMITED, TOKEN_LIMITS
from api.schemas.clients import (
    TOKEN_REQUEST_BODY,
    OrganisationCreate,
    OrganisationOut,
    ScannerCreate,
    ScannerCreated,
    ScannerOut,
    TokenResponse,
    VenueCreate,
    VenueOut,
    token_request,
)
from app.clients import service
from app.clients.models import ApiClient

router = APIRouter(tags=["clients"], route_class=StrictJsonRoute)

_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_ADMIN_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid admin token", **_PROBLEM},
    403: {"description": "Token lacks the admin scope", **_PROBLEM},
}


def _scanner_out(client: ApiClient) -> ScannerOut:
    return ScannerOut.model_validate(client, from_attributes=True)


@router.post(
    "/v1/oauth/token",
    summary="OAuth2 client credentials grant (RFC 6749 section 4.4)",
    response_model=TokenResponse,
    response_class=Response,
    openapi_extra={"requestBody": TOKEN_REQUEST_BODY},
    responses={
        400: {"description": "invalid_request, unsupported_grant_type, invalid_scope", **_PROBLEM},
        401: {"description": "invalid_client", **_PROBLEM},
        **RATE_LIMITED,
    },
    dependencies=TOKEN_LIMITS,
)
async def oauth_token(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Errors are problem+json that also carry RFC 6749's `error` and `error_description`."""
    credentials = token_request(
        await request.body(),
        request.headers.get("content-type"),
        request.headers.get("authorization"),
    )
    grant = await service.grant_client_credentials(
        session,
        runtime.access_tokens,
        runtime.secret_hash_key,
        credentials,
        scanner_ttl=runtime.settings.scanner_token_ttl,
        admin_ttl=runtime.settings.access_token_ttl,
    )
    body = TokenResponse(
        access_token=grant.access_token, expires_in=grant.expires_in, scope=" ".join(grant.scopes)
    )
    return Response(
        orjson.dumps(body.model_dump()),
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.post(
    "/v1/admin/organisations",
    status_code=201,
    response_model=OrganisationOut,
    responses={**_ADMIN_ERRORS, 422: {"description": "Invalid body or unknown scene", **_PROBLEM}},
)
async def create_organisation(
    body: OrganisationCreate, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> OrganisationOut:
    organisation = await service.create_organisation(
        session,
        runtime.store,
        admin.client_id,
        name=body.name,
        venue_type=body.venue_type,
        region_code=body.region_code,
        scenes=body.scenes,
        latitude=body.latitude,
        longitude=body.longitude,
        catalog=runtime.catalog,
    )
    return OrganisationOut.model_validate(organisation, from_attributes=True)


@router.get(
    "/v1/admin/organisations", response_model=list[OrganisationOut], responses=_ADMIN_ERRORS
)
async def list_organisations(admin: CurrentAdmin, session: SessionDep) -> list[OrganisationOut]:
    return [
        OrganisationOut.model_validate(organisation, from_attributes=True)
        for organisation in await service.list_organisations(session)
    ]


@router.post(
    "/v1/admin/organisations/{organisation_id}/scanners",
    status_code=201,
    response_model=ScannerCreated,
    responses={
        **_ADMIN_ERRORS,
        404: {"description": "No such organisation, or no such venue of it", **_PROBLEM},
        422: {"description": "Invalid body, or a scene the organisation lacks", **_PROBLEM},
    },
)
async def create_scanner(
    organisation_id: uuid.UUID,
    body: ScannerCreate,
    admin: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ScannerCreated:
    """The client secret is in this answer only."""
    issued = await service.create_scanner(
        session,
        runtime.store,
        runtime.secret_hash_key,
        admin.client_id,
        organisation_id,
        name=body.name,
        scenes=body.scenes,
        venue_id=body.venue_id,
        catalog=runtime.catalog,
    )
    return ScannerCreated(
        **_scanner_out(issued.client).model_dump(), client_secret=issued.client_secret
    )


@router.get(
    "/v1/admin/organisations/{organisation_id}/scanners",
    response_model=list[ScannerOut],
    responses={**_ADMIN_ERRORS, 404: {"description": "No such organisation", **_PROBLEM}},
)
async def list_scanners(
    organisation_id: uuid.UUID, admin: CurrentAdmin, session: SessionDep
) -> list[ScannerOut]:
    return [
        _scanner_out(client) for client in await service.list_scanners(session, organisation_id)
    ]


_ORGANISATION_ERRORS: dict[int | str, dict[str, object]] = {
    **_ADMIN_ERRORS,
    404: {"description": "No such organisation", **_PROBLEM},
}


@router.post(
    "/v1/admin/organisations/{organisation_id}/venues",
    status_code=201,
    response_model=VenueOut,
    responses={**_ORGANISATION_ERRORS, 422: {"description": "Invalid body", **_PROBLEM}},
)
async def add_venue(
    organisation_id: uuid.UUID,
    body: VenueCreate,
    admin: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> VenueOut:
    """Another venue of the organisation; its scanners are placed at one venue each."""
    venue = await service.add_venue(
        session,
        runtime.store,
        admin.client_id,
        organisation_id,
        name=body.name,
        region_code=body.region_code,
        latitude=body.latitude,
        longitude=body.longitude,
    )
    return VenueOut.model_validate(venue, from_attributes=True)


@router.get(
    "/v1/admin/organisations/{organisation_id}/venues",
    response_model=list[VenueOut],
    responses=_ORGANISATION_ERRORS,
)
async def list_venues(
    organisation_id: uuid.UUID, admin: CurrentAdmin, session: SessionDep
) -> list[VenueOut]:
    """The default venue first."""
    return [
        VenueOut.model_validate(venue, from_attributes=True)
        for venue in await service.list_venues(session, organisation_id)
    ]


@router.post(
    "/v1/admin/organisations/{organisation_id}/withdraw",
    response_model=OrganisationOut,
    responses=_ORGANISATION_ERRORS,
)
async def withdraw_organisation(
    organisation_id: uuid.UUID, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> OrganisationOut:
    """Withdraws the organisation's approval: every one of its scanners is refused at its
    next scan on every worker (already-issued access tokens included) and gets no new token."""
    organisation = await service.set_organisation_withdrawn(
        session, runtime.store, admin.client_id, organisation_id, withdrawn=True
    )
    return OrganisationOut.model_validate(organisation, from_attributes=True)


@router.post(
    "/v1/admin/organisations/{organisation_id}/reinstate",
    response_model=OrganisationOut,
    responses=_ORGANISATION_ERRORS,
)
async def reinstate_organisation(
    organisation_id: uuid.UUID, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> OrganisationOut:
    """Restores the approval: its enabled scanners verify again at their next scan."""
    organisation = await service.set_organisation_withdrawn(
        session, runtime.store, admin.client_id, organisation_id, withdrawn=False
    )
    return OrganisationOut.model_validate(organisation, from_attributes=True)


_SCANNER_ERRORS: dict[int | str, dict[str, object]] = {
    **_ADMIN_ERRORS,
    404: {"description": "No such scanner", **_PROBLEM},
}


@router.post(
    "/v1/admin/scanners/{client_id}/disable",
    response_model=ScannerOut,
    responses=_SCANNER_ERRORS,
)
async def disable_scanner(
    client_id: str, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> ScannerOut:
    """Takes effect at the scanner's next scan, even with an access token already issued."""
    scanner = await service.set_scanner_enabled(
        session, runtime.store, admin.client_id, client_id, enabled=False
    )
    return _scanner_out(scanner)


@router.post(
    "/v1/admin/scanners/{client_id}/enable",
    response_model=ScannerOut,
    responses=_SCANNER_ERRORS,
)
async def enable_scanner(
    client_id: str, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> ScannerOut:
    scanner = await service.set_scanner_enabled(
        session, runtime.store, admin.client_id, client_id, enabled=True
    )
    return _scanner_out(scanner)
