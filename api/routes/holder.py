"""E-card activation, holder sessions, the holder's own card and QR code."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from starlette.responses import Response

from api.auth import CurrentHolder, QrHolder
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.rate_limits import LOGIN_LIMITS, PIN_RESET_LIMITS, RATE_LIMITED
from api.schemas.holder import (
    ActivationRequest,
    HolderCardResponse,
    HolderNoticeResponse,
    LoginRequest,
    PinChangeRequest,
    PinResetRequest,
    QrResponse,
    RefreshRequest,
    SessionResponse,
    UpcomingQr,
)
from app.holders import pin_reset, qr_tokens, service
from app.holders.sessions import HolderSession

router = APIRouter(tags=["holder"], route_class=StrictJsonRoute)

NO_STORE = {"Cache-Control": "no-store"}
_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
_CREDENTIAL_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "invalid-credentials (never says which part was wrong)", **_PROBLEM},
    422: {"description": "validation-error, weak-pin", **_PROBLEM},
    423: {"description": "pin-locked, with `unlocks_at`", **_PROBLEM},
}
_HOLDER_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "No or invalid holder token, or session-revoked", **_PROBLEM},
    403: {"description": "device-unbound", **_PROBLEM},
}


def _session_response(opened: HolderSession, response: Response) -> SessionResponse:
    response.headers.update(NO_STORE)
    return SessionResponse(
        access_token=opened.access_token,
        expires_in=opened.access_expires_in,
        expires_at=opened.access_expires_at,
        refresh_token=opened.refresh_token,
        refresh_expires_at=opened.refresh_expires_at,
    )


@router.post(
    "/v1/ecard/activate",
    status_code=status.HTTP_201_CREATED,
    summary="Activate the e-card on a phone (the first activation sets the PIN)",
    responses={
        **_CREDENTIAL_ERRORS,
        422: {"description": "validation-error, weak-pin, invalid-device-key", **_PROBLEM},
    },
)
async def activate(
    body: ActivationRequest, runtime: RuntimeDep, response: Response
) -> SessionResponse:
    opened = await service.activate(
        runtime,
        service.Activation(
            card_number=body.card_number,
            document_number=body.document_number,
            device_id=body.device_id,
            pin=body.pin,
            device_public_key=body.device_public_key,
        ),
    )
    return _session_response(opened, response)


@router.post(
    "/v1/auth/login",
    summary="Log in with card number (or document) and PIN on an activated phone",
    responses={
        **_CREDENTIAL_ERRORS,
        403: {"description": "device-not-activated", **_PROBLEM},
        **RATE_LIMITED,
    },
    dependencies=LOGIN_LIMITS,
)
async def login(body: LoginRequest, runtime: RuntimeDep, response: Response) -> SessionResponse:
    opened = await service.login(
        runtime,
        service.Login(
            pin=body.pin,
            device_id=body.device_id,
            card_number=body.card_number,
            document_type=body.document_type,
            document_number=body.document_number,
        ),
    )
    return _session_response(opened, response)


@router.post(
    "/v1/auth/refresh",
    summary="Exchange a refresh token for a new session (the old token is spent)",
    responses={
        401: {"description": "invalid-refresh-token, refresh-token-reused", **_PROBLEM},
    },
)
async def refresh(body: RefreshRequest, runtime: RuntimeDep, response: Response) -> SessionResponse:
    """Presenting a spent refresh token revokes every token of its family."""
    opened = await service.refresh(runtime, body.refresh_token)
    return _session_response(opened, response)


@router.post(
    "/v1/me/pin",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change the PIN (the current PIN is required)",
    responses={**_HOLDER_ERRORS, **_CREDENTIAL_ERRORS},
)
async def change_pin(body: PinChangeRequest, holder: CurrentHolder, runtime: RuntimeDep) -> None:
    await service.change_pin(runtime, holder, body.old_pin, body.new_pin)


@router.post(
    "/v1/auth/pin-reset",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Reset a forgotten or locked PIN on one of your phones, with your document number",
    responses={
        **_CREDENTIAL_ERRORS,
        409: {
            "description": "card-lost, card-suspended, card-cancelled (reset at a counter)",
            **_PROBLEM,
        },
        **RATE_LIMITED,
    },
    dependencies=PIN_RESET_LIMITS,
)
async def reset_pin(body: PinResetRequest, runtime: RuntimeDep) -> None:
    """Only from a phone the e-card is activated on (`device_id`). Each attempt counts: a wrong
    document number is a failed PIN attempt of your phones, and after `SSC_PIN_MAX_FAILURES`
    failed resets they lock for `SSC_PIN_LOCKOUT_SECONDS`. Log in with the new PIN afterwards.
    Only for an active card: a lost card's PIN is reset at a counter.
    """
    await pin_reset.holder_reset_pin(
        runtime,
        pin_reset.HolderPinReset(
            card_number=body.card_number,
            document_number=body.document_number,
            device_id=body.device_id,
            new_pin=body.new_pin,
        ),
    )


@router.delete(
    "/v1/me/devices/{device_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Unbind one of your phones; its sessions can no longer be refreshed",
    responses={**_HOLDER_ERRORS, 404: {"description": "device-not-found", **_PROBLEM}},
)
async def unbind_device(
    device_id: Annotated[str, Path(min_length=1, max_length=128)],
    holder: CurrentHolder,
    session: SessionDep,
    runtime: RuntimeDep,
) -> None:
    await service.unbind_device(session, runtime, holder, device_id)


@router.get("/v1/me/card", summary="Your own card, masked", responses=_HOLDER_ERRORS)
async def my_card(
    holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> HolderCardResponse:
    card = await service.holder_card(session, runtime, holder)
    return HolderCardResponse(
        card_number=card.masked_card_number,
        status=card.status,
        region_code=card.region_code,
        bank_code=card.bank_code,
        bank_name=card.bank_name,
        name=card.masked_name,
    )


@router.get(
    "/v1/me/notices",
    summary="What you should know about your card, newest first (e.g. someone applied "
    "for a card with your document)",
    responses=_HOLDER_ERRORS,
)
async def my_notices(holder: CurrentHolder, session: SessionDep) -> list[HolderNoticeResponse]:
    return [
        HolderNoticeResponse(kind=notice.kind, message=notice.message, at=notice.at)
        for notice in await service.holder_notices(session, holder)
    ]


_QR_ERRORS: dict[int | str, dict[str, object]] = {
    **_HOLDER_ERRORS,
    409: {"description": "card-lost, card-suspended, card-cancelled", **_PROBLEM},
    **RATE_LIMITED,
}


@router.get(
    "/v1/me/qr",
    summary="A fresh QR token, and with ?prefetch=N the next N with staggered validity",
    response_model=QrResponse,
    responses=_QR_ERRORS,
)
async def my_qr(
    holder: QrHolder,
    runtime: RuntimeDep,
    prefetch: Annotated[int, Query(ge=0, le=qr_tokens.MAX_PREFETCH)] = 0,
) -> Response:
    """No SQL: the session, binding and card state come from the store (`qr_state`).

    Serialised here, once: returned as a model, FastAPI would validate it again and then
    serialise it, which cost more CPU than the token's signature."""
    tokens = await qr_tokens.issue_qr_tokens(runtime, holder, prefetch)
    answer = QrResponse(
        token=tokens.current.token,
        expires_at=tokens.current.expires_at,
        refresh_after=tokens.refresh_after,
        kid=tokens.current.kid,
        png_url=QR_PNG_PATH,
        svg_url=QR_SVG_PATH,
        upcoming=[
            UpcomingQr(token=t.token, not_before=t.not_before, expires_at=t.expires_at)
            for t in tokens.upcoming
        ],
    )
    return Response(answer.model_dump_json(), media_type="application/json", headers=NO_STORE)


QR_PNG_PATH = "/v1/me/qr.png"
QR_SVG_PATH = "/v1/me/qr.svg"
LargeQuery = Annotated[
    bool, Query(description="Large high-contrast variant for elderly or low-vision users")
]


@router.get(
    QR_PNG_PATH,
    summary="A fresh QR token as a PNG image",
    response_class=Response,
    responses={**_QR_ERRORS, 200: {"content": {"image/png": {}}}},
)
async def my_qr_png(holder: QrHolder, runtime: RuntimeDep, large: LargeQuery = False) -> Response:
    image = await qr_tokens.render_qr_image(runtime, holder, "png", large=large)
    return Response(image, media_type="image/png", headers=NO_STORE)


@router.get(
    QR_SVG_PATH,
    summary="A fresh QR token as an SVG image",
    response_class=Response,
    responses={**_QR_ERRORS, 200: {"content": {"image/svg+xml": {}}}},
)
async def my_qr_svg(holder: QrHolder, runtime: RuntimeDep, large: LargeQuery = False) -> Response:
    image = await qr_tokens.render_qr_image(runtime, holder, "svg", large=large)
    return Response(image, media_type="image/svg+xml", headers=NO_STORE)
