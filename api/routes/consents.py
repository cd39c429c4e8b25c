"""Consent-based department reads: a department asks, the holder decides, the department
reads exactly what was approved until the expiry (`app.consents`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter

from api.auth import ConsentingIssuer, CurrentHolder
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.schemas.consents import (
    ConsentApprove,
    ConsentData,
    ConsentRequestCreate,
    ConsentRequestOut,
)
from app.cards.models import Person
from app.consents import service
from app.consents.models import ConsentRequest, ConsentStatus
from app.departments.models import Issuer
from app.licences.service import licences_of_types

router = APIRouter(tags=["consents"], route_class=StrictJsonRoute)

_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"description": "consent-request-not-found", **_PROBLEM}
}


def _out(request: ConsentRequest, issuer: Issuer, status: ConsentStatus) -> ConsentRequestOut:
    return ConsentRequestOut(
        id=request.id,
        issuer=f"{issuer.code} {issuer.name}",
        items=request.items,
        purpose=request.purpose,
        access_days=request.access_seconds // 86400,
        status=status.value,
        created_at=request.created_at,
        request_expires_at=request.request_expires_at,
        decided_at=request.decided_at,
        access_until=request.access_until,
    )


async def _issuer(session: SessionDep, request: ConsentRequest) -> Issuer:
    issuer = await session.get(Issuer, request.issuer_id)
    assert issuer is not None, "consent requests reference their issuer"
    return issuer


@router.post(
    "/v1/consent-requests",
    status_code=201,
    summary="Ask a holder for consent to read items for a stated purpose and duration",
    responses={
        404: {"description": "holder-not-found", **_PROBLEM},
        422: {"description": "invalid-consent-request, invalid-document", **_PROBLEM},
    },
)
async def request_consent(
    body: ConsentRequestCreate, issuer: ConsentingIssuer, session: SessionDep, runtime: RuntimeDep
) -> ConsentRequestOut:
    request = await service.request_consent(
        runtime,
        issuer,
        document_type=body.document_type,
        document_number=body.document_number,
        items=body.items,
        purpose=body.purpose,
        access_days=body.access_days,
    )
    entry = await session.get(Issuer, issuer.issuer_id)
    assert entry is not None
    return _out(request, entry, ConsentStatus.pending)


@router.get(
    "/v1/consent-requests/{request_id}",
    summary="One of your consent requests, with its status now",
    responses=_NOT_FOUND,
)
async def get_request(
    request_id: uuid.UUID, issuer: ConsentingIssuer, session: SessionDep
) -> ConsentRequestOut:
    request = await service.issuer_request(session, issuer, request_id)
    status = service.effective_status(request, datetime.now(UTC))
    return _out(request, await _issuer(session, request), status)


@router.get(
    "/v1/consent-requests/{request_id}/data",
    summary="Read exactly the approved items (only while the consent is in effect)",
    responses={403: {"description": "consent-required (audited)", **_PROBLEM}},
)
async def read_data(
    request_id: uuid.UUID, issuer: ConsentingIssuer, session: SessionDep, runtime: RuntimeDep
) -> ConsentData:
    request, card = await service.require_consent(session, runtime, issuer, request_id)
    person = await session.get(Person, card.person_id)
    assert person is not None
    documents = [
        {
            "type": view.licence.document_type,
            "issuer": f"{view.issuer.code} {view.issuer.name}",
            "number": view.payload.number,
            "holder_name": view.payload.holder.name,
            "category": view.payload.category,
            "valid_from": view.payload.valid_from.isoformat(),
            "valid_until": None
            if view.payload.valid_until is None
            else view.payload.valid_until.isoformat(),
            "status": view.verification.status,
            "verified": view.verification.verified,
            "reason": view.verification.reason,
        }
        for view in await licences_of_types(session, runtime, person.id, request.items)
    ]
    return ConsentData(
        consent_id=request.id,
        purpose=request.purpose,
        attributes=service.read_attributes(runtime, person, request.items),
        documents=documents,
    )


_HOLDER_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid holder token", **_PROBLEM},
    403: {"description": "device-unbound, pin-incorrect", **_PROBLEM},
    **_NOT_FOUND,
}


@router.get(
    "/v1/me/consent-requests",
    summary="Departments' requests to read your data, newest first, with their status now",
    responses={401: _HOLDER_ERRORS[401], 403: _HOLDER_ERRORS[403]},
)
async def my_requests(holder: CurrentHolder, session: SessionDep) -> list[ConsentRequestOut]:
    return [
        _out(item.request, item.issuer, item.status)
        for item in await service.holder_requests(session, holder)
    ]


@router.post(
    "/v1/me/consent-requests/{request_id}/approve",
    summary="Approve a request with your PIN: the department reads exactly its items until "
    "the access time ends",
    responses={
        **_HOLDER_ERRORS,
        409: {"description": "consent-request-not-pending", **_PROBLEM},
        423: {"description": "PIN locked", **_PROBLEM},
    },
)
async def approve(
    request_id: uuid.UUID,
    body: ConsentApprove,
    holder: CurrentHolder,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ConsentRequestOut:
    request = await service.decide(runtime, holder, request_id, approve=True, pin=body.pin)
    return _out(request, await _issuer(session, request), ConsentStatus(request.status))


@router.post(
    "/v1/me/consent-requests/{request_id}/decline",
    summary="Decline a request",
    responses={**_HOLDER_ERRORS, 409: {"description": "consent-request-not-pending", **_PROBLEM}},
)
async def decline(
    request_id: uuid.UUID, holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> ConsentRequestOut:
    request = await service.decide(runtime, holder, request_id, approve=False)
    return _out(request, await _issuer(session, request), ConsentStatus(request.status))


@router.post(
    "/v1/me/consent-requests/{request_id}/revoke",
    summary="Revoke an approval now: the department's next read is refused",
    responses={**_HOLDER_ERRORS, 409: {"description": "consent-not-active", **_PROBLEM}},
)
async def revoke(
    request_id: uuid.UUID, holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> ConsentRequestOut:
    request = await service.revoke(runtime, holder, request_id)
    return _out(request, await _issuer(session, request), ConsentStatus.revoked)
