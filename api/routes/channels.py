"""Channel apps: administrators register and suspend them; holders link and unlink them; a
linked channel holds a channel-scoped session for the holder."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, status
from starlette.responses import Response

from api.auth import CurrentAdmin, CurrentChannel, CurrentChannelHolder, CurrentHolder
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.schemas.channels import (
    ChannelCreate,
    ChannelHolderOut,
    ChannelOut,
    ChannelQrOut,
    ChannelSessionOut,
    IssuedChannelOut,
    LinkedChannelOut,
    LinkRequestOut,
    PinBody,
    RefreshBody,
)
from app.channels import service
from app.channels.service import ChannelSession
from app.clients.models import ApiClient

router = APIRouter(tags=["channels"], route_class=StrictJsonRoute)

NO_STORE = {"Cache-Control": "no-store"}
_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
ChannelId = Annotated[str, Path(min_length=1, max_length=64, description="The channel's id")]
RequestId = Annotated[uuid.UUID, Path(description="The link request's id")]


def _channel_out(client: ApiClient) -> ChannelOut:
    return ChannelOut(
        client_id=client.client_id,
        name=client.name,
        channel_type=client.channel_type,
        status=client.status,
        created_at=client.created_at,
    )


def _session_out(opened: ChannelSession, response: Response) -> ChannelSessionOut:
    response.headers.update(NO_STORE)
    return ChannelSessionOut(
        access_token=opened.access_token,
        expires_in=opened.expires_in,
        refresh_token=opened.refresh_token,
        subject=opened.subject,
    )


@router.post(
    "/v1/admin/channels",
    status_code=status.HTTP_201_CREATED,
    summary="Register a channel app (bank, payment app, city app); its secret is shown once",
)
async def register_channel(
    body: ChannelCreate, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> IssuedChannelOut:
    issued = await service.register_channel(
        session, runtime, admin.client_id, name=body.name, channel_type=body.channel_type
    )
    return IssuedChannelOut(
        **_channel_out(issued.client).model_dump(), client_secret=issued.client_secret
    )


@router.get("/v1/admin/channels", summary="Every channel app")
async def list_channels(admin: CurrentAdmin, session: SessionDep) -> list[ChannelOut]:
    return [_channel_out(client) for client in await service.list_channels(session)]


@router.post(
    "/v1/admin/channels/{channel_id}/suspend",
    summary="Suspend a channel: its holder sessions are refused at once on every worker",
    responses={404: {"description": "channel-not-found", **_PROBLEM}},
)
async def suspend_channel(
    channel_id: ChannelId, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> ChannelOut:
    client = await service.set_channel_suspended(
        session, runtime, admin.client_id, channel_id, suspended=True
    )
    return _channel_out(client)


@router.post(
    "/v1/admin/channels/{channel_id}/reinstate",
    summary="Reinstate a suspended channel",
    responses={404: {"description": "channel-not-found", **_PROBLEM}},
)
async def reinstate_channel(
    channel_id: ChannelId, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> ChannelOut:
    client = await service.set_channel_suspended(
        session, runtime, admin.client_id, channel_id, suspended=False
    )
    return _channel_out(client)


@router.post(
    "/v1/channel/link-requests",
    status_code=status.HTTP_201_CREATED,
    summary="As a channel: ask a holder to link you (hand the request id to the e-card app)",
    responses={403: {"description": "channel-suspended", **_PROBLEM}},
)
async def create_link_request(channel: CurrentChannel, session: SessionDep) -> LinkRequestOut:
    request = await service.create_link_request(session, channel)
    shown = await service.show_link_request(session, request.id)
    return LinkRequestOut(
        request_id=shown.request_id,
        channel_id=shown.channel_id,
        channel_name=shown.channel_name,
        channel_type=shown.channel_type,
        expires_at=shown.expires_at.replace(tzinfo=shown.expires_at.tzinfo or UTC),
    )


@router.post(
    "/v1/channel/link-requests/{request_id}/session",
    summary="As a channel: redeem an approved link request (once) for the holder's session",
    responses={
        403: {"description": "channel-suspended", **_PROBLEM},
        404: {"description": "link-request-not-found", **_PROBLEM},
        409: {"description": "link-request-not-approved (ask again later)", **_PROBLEM},
    },
)
async def redeem_link_request(
    request_id: RequestId,
    channel: CurrentChannel,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> ChannelSessionOut:
    opened = await service.redeem_link_request(session, runtime, channel, request_id)
    return _session_out(opened, response)


@router.post(
    "/v1/channel/sessions/refresh",
    summary="As a channel: exchange the holder session's refresh token (the old one is spent)",
    responses={401: {"description": "invalid-refresh-token", **_PROBLEM}},
)
async def refresh_channel_session(
    body: RefreshBody, channel: CurrentChannel, runtime: RuntimeDep, response: Response
) -> ChannelSessionOut:
    opened = await service.refresh_channel_session(runtime, channel, body.refresh_token)
    return _session_out(opened, response)


@router.get(
    "/v1/channel/holder",
    summary="As a channel, for a linked holder: the pairwise id, card status and masked name",
    responses={401: {"description": "session-revoked (unlinked)", **_PROBLEM}},
)
async def channel_holder(
    holder: CurrentChannelHolder, session: SessionDep, runtime: RuntimeDep
) -> ChannelHolderOut:
    view = await service.channel_view(session, runtime, holder)
    return ChannelHolderOut(subject=view.subject, status=view.status, name=view.masked_name)


@router.get(
    "/v1/channel/holder/qr",
    summary="As a channel, for a linked holder: a QR token of the card to show in your app",
    responses={
        401: {"description": "session-revoked (unlinked)", **_PROBLEM},
        409: {"description": "card-lost, card-suspended, card-cancelled", **_PROBLEM},
    },
)
async def channel_holder_qr(
    holder: CurrentChannelHolder, session: SessionDep, runtime: RuntimeDep, response: Response
) -> ChannelQrOut:
    issued = await service.channel_qr(session, runtime, holder)
    response.headers.update(NO_STORE)
    return ChannelQrOut(
        token=issued.token, expires_at=datetime.fromtimestamp(issued.expires_at, UTC)
    )


@router.get(
    "/v1/me/channel-link-requests/{request_id}",
    summary="A channel's link request: which channel asks",
    responses={404: {"description": "link-request-not-found", **_PROBLEM}},
)
async def show_link_request(
    request_id: RequestId, holder: CurrentHolder, session: SessionDep
) -> LinkRequestOut:
    shown = await service.show_link_request(session, request_id)
    return LinkRequestOut(
        request_id=shown.request_id,
        channel_id=shown.channel_id,
        channel_name=shown.channel_name,
        channel_type=shown.channel_type,
        expires_at=shown.expires_at,
    )


@router.post(
    "/v1/me/channel-link-requests/{request_id}/approve",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Approve a channel's link request with your PIN",
    responses={
        401: {"description": "invalid-credentials", **_PROBLEM},
        403: {"description": "channel-suspended", **_PROBLEM},
        404: {"description": "link-request-not-found", **_PROBLEM},
        423: {"description": "pin-locked", **_PROBLEM},
    },
)
async def approve_link_request(
    request_id: RequestId, body: PinBody, holder: CurrentHolder, runtime: RuntimeDep
) -> None:
    await service.approve_link_request(runtime, holder, request_id, body.pin)


@router.get("/v1/me/channels", summary="The channel apps linked to your e-card, with last use")
async def my_channels(holder: CurrentHolder, session: SessionDep) -> list[LinkedChannelOut]:
    return [
        LinkedChannelOut(
            channel_id=row.channel_id,
            name=row.name,
            channel_type=row.channel_type,
            linked_at=row.linked_at,
            last_used_at=row.last_used_at,
        )
        for row in await service.holder_channels(session, holder)
    ]


@router.delete(
    "/v1/me/channels/{channel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Unlink a channel app: its sessions and refresh tokens die at once, everywhere",
    responses={404: {"description": "channel-link-not-found", **_PROBLEM}},
)
async def unlink_channel(
    channel_id: ChannelId, holder: CurrentHolder, session: SessionDep, runtime: RuntimeDep
) -> None:
    await service.unlink_channel(session, runtime, holder, channel_id)
