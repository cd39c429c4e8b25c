"""Bodies of the holder's notification inbox."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from api.schemas.common import UtcDateTime
from app.notifications.models import NotificationKind


class NotificationOut(BaseModel):
    id: uuid.UUID
    kind: NotificationKind
    message: str
    data: dict[str, str] = Field(description="Ids the app may link to (payment id, link id, ...)")
    created_at: UtcDateTime
    read_at: UtcDateTime | None


class MarkedRead(BaseModel):
    marked: int
