"""Card applications (citizens) and their decision (administrators)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from api.auth import CardCounterAdmin
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.rate_limits import APPLICATION_LIMITS, RATE_LIMITED
from api.schemas.cards import (
    ApplicationRequest,
    ApplicationResponse,
    IssuedCardResponse,
    RejectionRequest,
    RejectionResponse,
)
from app.cards import service
from app.cards.models import CardStatus

router = APIRouter(tags=["applications"], route_class=StrictJsonRoute)

_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_ADMIN_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid admin token", **_PROBLEM},
    403: {"description": "Token lacks the admin scope", **_PROBLEM},
    404: {"description": "application-not-found", **_PROBLEM},
    409: {"description": "application-decided, card-exists", **_PROBLEM},
}


def _admin(admin_id: str) -> str:
    return f"admin:{admin_id}"


@router.post(
    "/v1/applications",
    status_code=status.HTTP_201_CREATED,
    summary="Apply for a social security card (one card per person)",
    responses={
        409: {"description": "application-exists", **_PROBLEM},
        422: {"description": "invalid-document, invalid-application, validation-error", **_PROBLEM},
        **RATE_LIMITED,
    },
    dependencies=APPLICATION_LIMITS,
)
async def apply(
    body: ApplicationRequest, session: SessionDep, runtime: RuntimeDep
) -> ApplicationResponse:
    """With auto-approval on (demo), the card is issued at once and its number returned.

    An application for a person who already has a card is accepted like any other (the answer
    says nothing about another person's card); review refuses it and the holder is notified."""
    submitted = await service.submit_application(
        session,
        runtime,
        service.ApplicationForm(
            document_type=body.document_type,
            document_number=body.document_number,
            name=body.name,
            phone=body.phone,
            bank_code=body.bank_code,
            region_code=body.region_code,
        ),
    )
    application, card = submitted.application, submitted.card
    return ApplicationResponse(
        id=application.id,
        status=application.status,
        created_at=application.created_at,
        card_id=application.card_id,
        card_number=card.card_number if card else None,
    )


@router.post(
    "/v1/admin/applications/{application_id}/approve",
    summary="Approve an application: issues the card",
    responses=_ADMIN_ERRORS,
)
async def approve(
    application_id: uuid.UUID, admin: CardCounterAdmin, session: SessionDep, runtime: RuntimeDep
) -> IssuedCardResponse:
    card = await service.approve_application(
        session, runtime, application_id, _admin(admin.client_id)
    )
    return IssuedCardResponse(
        application_id=application_id,
        card_id=card.id,
        card_number=card.card_number,
        region_code=card.region_code,
        bank_code=card.bank_code,
        status=CardStatus(card.status),
    )


@router.post(
    "/v1/admin/applications/{application_id}/reject",
    summary="Reject an application; the person may apply again",
    responses=_ADMIN_ERRORS,
)
async def reject(
    application_id: uuid.UUID,
    body: RejectionRequest,
    admin: CardCounterAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> RejectionResponse:
    application = await service.reject_application(
        session, runtime, application_id, _admin(admin.client_id), body.reason
    )
    assert application.decided_at is not None
    return RejectionResponse(
        id=application.id,
        status=application.status,
        decided_at=application.decided_at,
        reason=body.reason,
    )
