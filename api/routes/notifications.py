"""The holder's notification inbox, with read marks."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from api.auth import CurrentHolder
from api.deps import SessionDep
from api.json_bodies import StrictJsonRoute
from api.schemas.notifications import MarkedRead, NotificationOut
from app.notifications import service

router = APIRouter(tags=["notifications"], route_class=StrictJsonRoute)
_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}


@router.get("/v1/me/notifications", summary="Your notifications, newest first")
async def my_notifications(
    holder: CurrentHolder,
    session: SessionDep,
    response: Response,
    unread: Annotated[bool, Query(description="Only those not yet marked read")] = False,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
) -> list[NotificationOut]:
    response.headers["Cache-Control"] = "no-store"
    rows = await service.inbox(session, holder.card_id, unread_only=unread, limit=limit)
    return [
        NotificationOut(
            id=row.id,
            kind=row.kind,
            message=row.message,
            data=dict(row.data),
            created_at=row.created_at,
            read_at=row.read_at,
        )
        for row in rows
    ]


@router.post(
    "/v1/me/notifications/{notification_id}/read",
    summary="Mark one notification read",
    responses={404: {"description": "notification-not-found", **_PROBLEM}},
)
async def mark_read(
    notification_id: Annotated[uuid.UUID, Path()], holder: CurrentHolder, session: SessionDep
) -> MarkedRead:
    return MarkedRead(marked=await service.mark_read(session, holder.card_id, notification_id))


@router.post("/v1/me/notifications/read", summary="Mark every notification read")
async def mark_all_read(holder: CurrentHolder, session: SessionDep) -> MarkedRead:
    return MarkedRead(marked=await service.mark_read(session, holder.card_id, None))
