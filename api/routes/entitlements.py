"""Entitlements (GD7): granted and withdrawn by administrators, read by the scenes that list
them in the verify answer (`app.cards.entitlements`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.auth import CurrentAdmin
from api.deps import RuntimeDep
from api.json_bodies import StrictJsonRoute
from api.schemas.entitlements import EntitlementGrant, EntitlementResponse
from app.cards import entitlements as service
from app.catalog.scenes import Entitlement

router = APIRouter(tags=["entitlements"], route_class=StrictJsonRoute)

_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid admin token", **_PROBLEM},
    403: {"description": "Not a provincial administrator", **_PROBLEM},
    404: {"description": "card-not-found, entitlement-not-granted", **_PROBLEM},
    410: {"description": "card-number-retired (a replaced physical card)", **_PROBLEM},
    422: {"description": "validation-error, invalid-entitlement", **_PROBLEM},
}
CardNumber = Annotated[str, Path(min_length=1, max_length=32, description="The card number")]


@router.post(
    "/v1/admin/cards/{card_number}/entitlements",
    summary="Grant an entitlement to the card's holder until an expiry (or change its expiry)",
    responses=_ERRORS,
)
async def grant_entitlement(
    card_number: CardNumber, body: EntitlementGrant, admin: CurrentAdmin, runtime: RuntimeDep
) -> EntitlementResponse:
    granted = await service.grant_entitlement(
        runtime, admin.client_id, card_number, body.kind, body.expires_at
    )
    return EntitlementResponse(
        card_number=granted.card_number,
        kind=granted.kind,
        expires_at=granted.expires_at,
        granted_by=granted.granted_by,
    )


@router.delete(
    "/v1/admin/cards/{card_number}/entitlements/{kind}",
    summary="Withdraw an entitlement from the card's holder",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_ERRORS,
)
async def withdraw_entitlement(
    card_number: CardNumber, kind: Entitlement, admin: CurrentAdmin, runtime: RuntimeDep
) -> None:
    await service.withdraw_entitlement(runtime, admin.client_id, card_number, kind)
