"""Card lifecycle: the holder's own actions in the app, operators' actions at the desks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.auth import CardCounterAdmin, CurrentHolder
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.schemas.lifecycle import (
    CardHistoryEntry,
    HolderReplacementRequest,
    HolderReplacementResponse,
    HolderTransitionResponse,
    OperatorAction,
    OperatorPinResetRequest,
    OperatorTransitionResponse,
    PinConfirmation,
)
from app.cards import lifecycle_service as service
from app.cards.lifecycle import OPERATOR_CHANNELS, CardAction, Channel
from app.cards.models import CardStatus
from app.holders import pin_reset
from app.security.principals import AdminPrincipal

router = APIRouter(tags=["card lifecycle"], route_class=StrictJsonRoute)

_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_HOLDER_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid holder token; invalid-credentials (PIN)", **_PROBLEM},
    403: {"description": "device-unbound", **_PROBLEM},
    409: {"description": "card-transition-not-allowed, with `card_status`", **_PROBLEM},
}
_PIN_ERRORS: dict[int | str, dict[str, object]] = {
    **_HOLDER_ERRORS,
    423: {"description": "pin-locked, with `unlocks_at`", **_PROBLEM},
}
_ADMIN_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid admin token", **_PROBLEM},
    403: {"description": "Token lacks the admin scope; holder-not-verified", **_PROBLEM},
    404: {"description": "card-not-found", **_PROBLEM},
    409: {"description": "card-transition-not-allowed, with `card_status`", **_PROBLEM},
    410: {"description": "card-number-retired (a replaced physical card)", **_PROBLEM},
    422: {"description": "validation-error, channel-not-allowed", **_PROBLEM},
}
CardNumber = Annotated[str, Path(min_length=1, max_length=32, description="The card number")]


def _holder_response(transition: service.Transition) -> HolderTransitionResponse:
    return HolderTransitionResponse(
        action=transition.action,
        from_status=transition.from_status,
        to_status=transition.to_status,
        at=transition.at,
    )


@router.post(
    "/v1/me/card/report-loss",
    summary="Report your card lost (挂失): every QR code of it stops passing at once",
    responses=_HOLDER_ERRORS,
)
async def report_loss(holder: CurrentHolder, runtime: RuntimeDep) -> HolderTransitionResponse:
    transition = await service.holder_transition(runtime, holder, CardAction.report_loss)
    return _holder_response(transition)


@router.post(
    "/v1/me/card/cancel-loss",
    summary="Cancel the loss report (解挂) with your PIN",
    responses=_PIN_ERRORS,
)
async def cancel_loss(
    body: PinConfirmation, holder: CurrentHolder, runtime: RuntimeDep
) -> HolderTransitionResponse:
    transition = await service.holder_transition(
        runtime, holder, CardAction.cancel_loss, pin=body.pin
    )
    return _holder_response(transition)


@router.post(
    "/v1/me/card/cancel",
    summary="Cancel your card for good (注销) with your PIN",
    responses=_PIN_ERRORS,
)
async def cancel_card(
    body: PinConfirmation, holder: CurrentHolder, runtime: RuntimeDep
) -> HolderTransitionResponse:
    transition = await service.holder_transition(runtime, holder, CardAction.cancel, pin=body.pin)
    return _holder_response(transition)


@router.post(
    "/v1/me/card/replace",
    summary="Replace your card online (补换) with your PIN: a new card number, the e-card "
    "re-issued",
    responses=_PIN_ERRORS,
)
async def replace_card(
    body: HolderReplacementRequest, holder: CurrentHolder, runtime: RuntimeDep
) -> HolderReplacementResponse:
    """From an active or lost card. The old card number is dead for good, and every QR code
    fetched before the replacement stops passing at once (`card_cancelled`): fetch a new one.
    Your phones stay bound and your sessions stay open."""
    transition = await service.holder_transition(
        runtime, holder, CardAction.replace_card, pin=body.pin, reason=body.reason
    )
    return HolderReplacementResponse(
        action=transition.action,
        from_status=transition.from_status,
        to_status=transition.to_status,
        at=transition.at,
        card_number=transition.card_number,
    )


@router.get(
    "/v1/me/card/history",
    summary="Every state change of your card: what, when, through which channel, why",
    responses={401: _HOLDER_ERRORS[401], 403: _HOLDER_ERRORS[403]},
)
async def card_history(holder: CurrentHolder, session: SessionDep) -> list[CardHistoryEntry]:
    holder_actor = f"holder:{holder.card_id}"
    return [
        CardHistoryEntry(
            action=CardAction(event.action),
            from_status=CardStatus(event.from_status),
            to_status=CardStatus(event.to_status),
            channel=Channel(event.channel),
            by="holder" if event.actor == holder_actor else "operator",
            reason=event.reason,
            at=event.created_at,
        )
        for event in await service.card_history(session, holder)
    ]


async def _operator(
    runtime: RuntimeDep,
    admin: AdminPrincipal,
    card_number: str,
    action: CardAction,
    body: OperatorAction,
) -> OperatorTransitionResponse:
    channel = Channel(body.channel.value)
    assert channel in OPERATOR_CHANNELS
    transition = await service.operator_transition(
        runtime,
        admin,
        service.OperatorRequest(
            card_number=card_number,
            action=action,
            channel=channel,
            reason=body.reason,
            holder_document_number=body.holder_document_number,
        ),
    )
    return OperatorTransitionResponse(
        action=transition.action,
        from_status=transition.from_status,
        to_status=transition.to_status,
        at=transition.at,
        channel=transition.channel,
        card_number=transition.card_number,
    )


@router.post(
    "/v1/admin/cards/{card_number}/report-loss",
    summary="Report a card lost for its holder (counter, hotline on the caller's behalf, ...)",
    responses=_ADMIN_ERRORS,
)
async def operator_report_loss(
    card_number: CardNumber, body: OperatorAction, admin: CardCounterAdmin, runtime: RuntimeDep
) -> OperatorTransitionResponse:
    return await _operator(runtime, admin, card_number, CardAction.report_loss, body)


@router.post(
    "/v1/admin/cards/{card_number}/cancel-loss",
    summary="Cancel a loss report after checking the holder's identity document",
    responses=_ADMIN_ERRORS,
)
async def operator_cancel_loss(
    card_number: CardNumber, body: OperatorAction, admin: CardCounterAdmin, runtime: RuntimeDep
) -> OperatorTransitionResponse:
    return await _operator(runtime, admin, card_number, CardAction.cancel_loss, body)


@router.post(
    "/v1/admin/cards/{card_number}/replace",
    summary="Replace the physical card (补换): a new card number, the old one is dead forever",
    responses=_ADMIN_ERRORS,
)
async def operator_replace(
    card_number: CardNumber, body: OperatorAction, admin: CardCounterAdmin, runtime: RuntimeDep
) -> OperatorTransitionResponse:
    """The e-card follows the card: tokens already on the holder's phone keep working."""
    return await _operator(runtime, admin, card_number, CardAction.replace_card, body)


@router.post(
    "/v1/admin/cards/{card_number}/cancel",
    summary="Cancel a card for good (注销)",
    responses=_ADMIN_ERRORS,
)
async def operator_cancel(
    card_number: CardNumber, body: OperatorAction, admin: CardCounterAdmin, runtime: RuntimeDep
) -> OperatorTransitionResponse:
    return await _operator(runtime, admin, card_number, CardAction.cancel, body)


@router.post(
    "/v1/admin/cards/{card_number}/suspend",
    summary="Suspend a card's functions for misuse (SY17; administration channel, with reason)",
    responses=_ADMIN_ERRORS,
)
async def operator_suspend(
    card_number: CardNumber, body: OperatorAction, admin: CardCounterAdmin, runtime: RuntimeDep
) -> OperatorTransitionResponse:
    return await _operator(runtime, admin, card_number, CardAction.suspend, body)


@router.post(
    "/v1/admin/cards/{card_number}/unsuspend",
    summary="Lift a suspension (administration channel, with reason)",
    responses=_ADMIN_ERRORS,
)
async def operator_unsuspend(
    card_number: CardNumber, body: OperatorAction, admin: CardCounterAdmin, runtime: RuntimeDep
) -> OperatorTransitionResponse:
    return await _operator(runtime, admin, card_number, CardAction.unsuspend, body)


@router.post(
    "/v1/admin/cards/{card_number}/pin-reset",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Reset the holder's PIN at the counter after checking their identity document",
    responses={
        **{code: _ADMIN_ERRORS[code] for code in (401, 403, 404, 410)},
        422: {"description": "validation-error, weak-pin", **_PROBLEM},
    },
)
async def operator_pin_reset(
    card_number: CardNumber,
    body: OperatorPinResetRequest,
    admin: CardCounterAdmin,
    runtime: RuntimeDep,
) -> None:
    """The document type and number must be the card's holder's (else 403
    holder-not-verified, audited as `holder.pin_reset_refused`). The new PIN takes effect at
    once and every PIN lock of the card is lifted; audited as `holder.pin_reset`."""
    await pin_reset.operator_reset_pin(
        runtime,
        admin,
        pin_reset.OperatorPinReset(
            card_number=card_number,
            document_type=body.document_type.value,
            document_number=body.document_number,
            new_pin=body.new_pin,
            reason=body.reason,
        ),
    )
