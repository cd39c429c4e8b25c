"""The public scene catalog and its administration (versions, city supplements)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from api.auth import CurrentAdmin, RegionalAdmin
from api.caching import cacheable_response
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.schemas.catalog import (
    CatalogOut,
    CatalogSceneOut,
    ProvincialVersionCreate,
    PublicVersionOut,
    RegionCode,
    SupplementCreate,
    SupplementDecision,
    SupplementRef,
    VersionOut,
)
from app.catalog import service
from app.catalog.scenes import city_of
from app.security.roles import AdminRole, require_region

router = APIRouter(tags=["catalog"], route_class=StrictJsonRoute)

CATALOG_MAX_AGE = 60
"""Seconds a cache may keep the public catalog (a change reaches every worker within 1 s)."""

_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_ADMIN_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid admin token", **_PROBLEM},
    403: {"description": "Token lacks the admin scope, or the role may not", **_PROBLEM},
}
VersionNumber = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.get(
    "/v1/catalog",
    summary="The scene catalog in effect (public): the province's, plus a city's supplement",
    response_model=CatalogOut,
    responses={
        200: {"description": "The catalog; strong ETag, Cache-Control public"},
        304: {"description": "Not modified (If-None-Match)"},
    },
)
async def current_catalog(
    request: Request,
    runtime: RuntimeDep,
    region: Annotated[
        RegionCode | None,
        Query(description="A city or county code: adds that city's approved supplement"),
    ] = None,
) -> Response:
    """From this worker's snapshot (no database read). A proposed or rejected supplement is
    never included."""
    catalog = runtime.catalog
    supplement = None if region is None else catalog.supplements.get(city_of(region))
    body = CatalogOut(
        province=catalog.province,
        version=catalog.version,
        region=region,
        supplements=[]
        if supplement is None
        else [SupplementRef(region=supplement.region, version=supplement.version)],
        scenes=[
            CatalogSceneOut(**scene.as_row(), region=scene.region)
            for scene in catalog.for_region(region)
        ],
    )
    data = json.dumps(body.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))
    response = cacheable_response(
        request, data.encode(), "application/json", max_age=CATALOG_MAX_AGE
    )
    return response


@router.get(
    "/v1/catalog/versions/{number}",
    summary="One published catalog version (provincial, or a city's approved supplement)",
    response_model=PublicVersionOut,
    responses={404: {"description": "No such published version", **_PROBLEM}},
)
async def catalog_version(number: VersionNumber, session: SessionDep) -> PublicVersionOut:
    version = await service.public_version(session, number)
    return PublicVersionOut.model_validate(version, from_attributes=True)


@router.get(
    "/v1/admin/catalog/versions",
    response_model=list[VersionOut],
    responses=_ADMIN_ERRORS,
)
async def list_catalog_versions(admin: RegionalAdmin, session: SessionDep) -> list[VersionOut]:
    """Every version, newest first, proposals and rejections included, with who and when (a
    city administrator: its own city's supplements only)."""
    region = admin.region if admin.role is AdminRole.city_admin else None
    versions = await service.list_versions(session, region=region)
    return [VersionOut.of(version) for version in versions]


@router.post(
    "/v1/admin/catalog/versions",
    status_code=201,
    response_model=VersionOut,
    responses={
        **_ADMIN_ERRORS,
        409: {"description": "Another version was published meanwhile", **_PROBLEM},
        422: {
            "description": "Invalid body, a repeated scene code, or a code of a city's supplement",
            **_PROBLEM,
        },
    },
)
async def publish_catalog_version(
    body: ProvincialVersionCreate, admin: CurrentAdmin, runtime: RuntimeDep
) -> VersionOut:
    """A new provincial catalog, in effect on every worker within a second; the previous
    version is kept (superseded)."""
    version = await service.publish_provincial_version(
        runtime,
        admin.client_id,
        region=runtime.settings.issuer,
        scenes=[scene.scene() for scene in body.scenes],
        note=body.note,
    )
    return VersionOut.of(version)


@router.post(
    "/v1/admin/catalog/supplements",
    status_code=201,
    response_model=VersionOut,
    responses={
        **_ADMIN_ERRORS,
        403: {"description": "Role may not, or outside-region: another city's", **_PROBLEM},
        409: {"description": "Another version was written meanwhile", **_PROBLEM},
        422: {
            "description": "Invalid body, not a city of this province, a repeated scene code, "
            "or a code already in the catalog",
            **_PROBLEM,
        },
    },
)
async def propose_supplement(
    body: SupplementCreate, admin: RegionalAdmin, runtime: RuntimeDep
) -> VersionOut:
    """A city's supplement (its own scenes), proposed for the province's decision; not
    public until approved. A city administrator proposes for its own city only."""
    require_region(admin, body.region)
    version = await service.propose_supplement(
        runtime,
        admin.client_id,
        region=body.region,
        scenes=[scene.scene() for scene in body.scenes],
        note=body.note,
    )
    return VersionOut.of(version)


@router.post(
    "/v1/admin/catalog/supplements/{number}/decision",
    response_model=VersionOut,
    responses={
        **_ADMIN_ERRORS,
        404: {"description": "No such supplement", **_PROBLEM},
        409: {"description": "Decided already", **_PROBLEM},
        422: {"description": "Invalid body, or its codes have been taken since", **_PROBLEM},
    },
)
async def decide_supplement(
    number: VersionNumber, body: SupplementDecision, admin: CurrentAdmin, runtime: RuntimeDep
) -> VersionOut:
    """The province approves (in effect within a second, replacing the city's previous
    supplement) or rejects (never public) a proposed supplement."""
    version = await service.decide_supplement(
        runtime,
        admin.client_id,
        number,
        service.Decision(body.decision),
        region=runtime.settings.issuer,
        reason=body.reason,
    )
    return VersionOut.of(version)
