"""The issuer registry: departments (and other issuers), their clients and signing keys."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path

from api.auth import CurrentAdmin, CurrentIssuer
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.schemas.departments import (
    IssuerCreate,
    IssuerCreated,
    IssuerKeyOut,
    IssuerOut,
    IssuerSelf,
    IssuerUpdate,
    KeyRegister,
    KeyRevoke,
)
from app.departments import service
from app.departments.models import Issuer, IssuerKey

router = APIRouter(tags=["issuers"], route_class=StrictJsonRoute)

_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"description": "issuer-not-found, issuer-key-not-found", **_PROBLEM}
}
Kid = Annotated[str, Path(min_length=1, max_length=128, description="The key's kid")]


def _issuer_out(issuer: Issuer, client_ids: list[str]) -> IssuerOut:
    return IssuerOut(
        id=issuer.id,
        code=issuer.code,
        name=issuer.name,
        kind=issuer.kind,
        region_code=issuer.region_code,
        issued_types=issuer.issued_types,
        created_at=issuer.created_at,
        disabled_at=issuer.disabled_at,
        client_ids=client_ids,
    )


def _key_out(key: IssuerKey) -> IssuerKeyOut:
    return IssuerKeyOut.model_validate(key, from_attributes=True)


@router.post(
    "/v1/admin/issuers",
    status_code=201,
    summary="Register an issuer (a department) and its first API client",
    responses={
        409: {"description": "issuer-exists", **_PROBLEM},
        422: {"description": "validation-error, unknown-document-type", **_PROBLEM},
    },
)
async def create_issuer(
    body: IssuerCreate, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> IssuerCreated:
    """The client secret is in this answer only; the client gets tokens at `/v1/oauth/token`."""
    created = await service.create_issuer(
        session,
        runtime.store,
        runtime.secret_hash_key,
        admin.client_id,
        code=body.code,
        name=body.name,
        kind=body.kind,
        issued_types=body.issued_types,
        region_code=body.region_code,
    )
    out = _issuer_out(created.issuer, [created.client.client.client_id])
    return IssuerCreated(**out.model_dump(), client_secret=created.client.client_secret)


@router.get("/v1/admin/issuers", summary="List the issuers")
async def list_issuers(admin: CurrentAdmin, session: SessionDep) -> list[IssuerOut]:
    issuers = await service.list_issuers(session)
    return [
        _issuer_out(issuer, [c.client_id for c in await service.issuer_clients(session, issuer.id)])
        for issuer in issuers
    ]


@router.patch(
    "/v1/admin/issuers/{issuer_id}",
    summary="Change the types an issuer may issue, or disable / re-enable it",
    responses={**_NOT_FOUND, 422: {"description": "unknown-document-type", **_PROBLEM}},
)
async def update_issuer(
    issuer_id: uuid.UUID,
    body: IssuerUpdate,
    admin: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> IssuerOut:
    issuer = await service.update_issuer(
        session,
        runtime.store,
        admin.client_id,
        issuer_id,
        issued_types=body.issued_types,
        enabled=body.enabled,
    )
    clients = await service.issuer_clients(session, issuer.id)
    return _issuer_out(issuer, [client.client_id for client in clients])


@router.post(
    "/v1/admin/issuers/{issuer_id}/keys",
    status_code=201,
    summary="Register a public signing key (JWK, ES256 or EdDSA) of the issuer",
    responses={
        **_NOT_FOUND,
        409: {"description": "issuer-key-exists", **_PROBLEM},
        422: {"description": "validation-error, invalid-issuer-key", **_PROBLEM},
    },
)
async def register_key(
    issuer_id: uuid.UUID,
    body: KeyRegister,
    admin: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> IssuerKeyOut:
    key = await service.register_key(session, runtime.store, admin.client_id, issuer_id, body.jwk)
    return _key_out(key)


@router.get(
    "/v1/admin/issuers/{issuer_id}/keys",
    summary="The issuer's keys, in every state",
    responses=_NOT_FOUND,
)
async def list_keys(
    issuer_id: uuid.UUID, admin: CurrentAdmin, session: SessionDep
) -> list[IssuerKeyOut]:
    return [_key_out(key) for key in await service.list_keys(session, issuer_id)]


@router.post(
    "/v1/admin/issuers/{issuer_id}/keys/{kid}/retire",
    summary="Retire a key (rotation): it signs no new push, what it signed still verifies",
    responses={**_NOT_FOUND, 409: {"description": "issuer-key-revoked", **_PROBLEM}},
)
async def retire_key(
    issuer_id: uuid.UUID, kid: Kid, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> IssuerKeyOut:
    key = await service.retire_key(session, runtime.store, admin.client_id, issuer_id, kid)
    return _key_out(key)


@router.post(
    "/v1/admin/issuers/{issuer_id}/keys/{kid}/revoke",
    summary="Revoke a key (compromise): nothing it signed verifies any more",
    responses=_NOT_FOUND,
)
async def revoke_key(
    issuer_id: uuid.UUID,
    kid: Kid,
    body: KeyRevoke,
    admin: CurrentAdmin,
    session: SessionDep,
    *,
    runtime: RuntimeDep,
) -> IssuerKeyOut:
    key = await service.revoke_key(
        session, runtime.store, admin.client_id, issuer_id, kid, reason=body.reason
    )
    return _key_out(key)


@router.get(
    "/v1/issuer",
    summary="The calling issuer's registry entry: what it may issue, its keys",
)
async def who_am_i(issuer: CurrentIssuer, session: SessionDep) -> IssuerSelf:
    """For an issuer's client: check its set-up (types, which keys are active) before pushing."""
    entry = await service.get_issuer(session, issuer.issuer_id)
    keys = await service.list_keys(session, entry.id)
    return IssuerSelf(
        id=entry.id,
        code=entry.code,
        name=entry.name,
        issued_types=entry.issued_types,
        scopes=sorted(issuer.scopes),
        keys=[_key_out(key) for key in keys],
    )
