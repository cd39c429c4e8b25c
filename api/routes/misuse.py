"""Misuse signals for administrators: alerts to review and close, credit-record notes.

Suspending a card is the lifecycle route `/v1/admin/cards/{card_number}/suspend`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.auth import CurrentAdmin
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.schemas.misuse import AlertClose, AlertOut, CreditRecordCreate, CreditRecordOut
from app.misuse import service
from app.misuse.models import AlertKind, AlertStatus, CreditRecord, MisuseAlert

router = APIRouter(tags=["misuse"], route_class=StrictJsonRoute)

_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_ADMIN_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid admin token", **_PROBLEM},
    403: {"description": "Token lacks the admin scope", **_PROBLEM},
}
_CARD_ERRORS: dict[int | str, dict[str, object]] = {
    **_ADMIN_ERRORS,
    404: {"description": "card-not-found", **_PROBLEM},
    410: {"description": "card-number-retired (a replaced physical card)", **_PROBLEM},
}
CardNumber = Annotated[str, Path(min_length=1, max_length=32, description="The card number")]


def _alert_out(alert: MisuseAlert, card_number: str) -> AlertOut:
    return AlertOut(
        id=alert.id,
        card_number=card_number,
        kind=AlertKind(alert.kind),
        details=alert.details,
        status=AlertStatus(alert.status),
        created_at=alert.created_at,
        closed_at=alert.closed_at,
        closed_by=alert.closed_by,
    )


def _record_out(entry: CreditRecord) -> CreditRecordOut:
    return CreditRecordOut.model_validate(entry, from_attributes=True)


@router.get(
    "/v1/admin/misuse/alerts",
    summary="Misuse alerts, newest first (filter by status)",
    responses=_ADMIN_ERRORS,
)
async def list_alerts(
    admin: CurrentAdmin,
    session: SessionDep,
    status: AlertStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AlertOut]:
    rows = await service.list_alerts(session, status=status, limit=limit)
    return [_alert_out(alert, number) for alert, number in rows]


@router.post(
    "/v1/admin/misuse/alerts/{alert_id}/close",
    summary="Close an alert once it has been looked into",
    responses={
        **_ADMIN_ERRORS,
        404: {"description": "alert-not-found", **_PROBLEM},
        409: {"description": "alert-closed", **_PROBLEM},
    },
)
async def close_alert(
    alert_id: uuid.UUID,
    body: AlertClose,
    admin: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> AlertOut:
    alert, number = await service.close_alert(
        session, runtime.store, admin.client_id, alert_id, body.note
    )
    return _alert_out(alert, number)


@router.post(
    "/v1/admin/cards/{card_number}/credit-records",
    status_code=201,
    summary="Write a note into the holder's credit record (JX18, SY13)",
    responses={**_CARD_ERRORS, 422: {"description": "validation-error", **_PROBLEM}},
)
async def add_credit_record(
    card_number: CardNumber,
    body: CreditRecordCreate,
    admin: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> CreditRecordOut:
    entry = await service.add_credit_record(
        session, runtime.store, admin.client_id, card_number, body.note
    )
    return _record_out(entry)


@router.get(
    "/v1/admin/cards/{card_number}/credit-records",
    summary="The credit record notes of a card, oldest first",
    responses=_CARD_ERRORS,
)
async def list_credit_records(
    card_number: CardNumber, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> list[CreditRecordOut]:
    """The read shows in the holder's access log (`GET /v1/me/access-log`)."""
    found = await service.list_credit_records(session, runtime.store, admin.client_id, card_number)
    return [_record_out(entry) for entry in found]
