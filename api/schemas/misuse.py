"""Request and response bodies of misuse alerts and credit records."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from api.schemas.common import TRIM, UtcDateTime, text_limits
from app.misuse.models import AlertKind, AlertStatus

Note = Annotated[str, text_limits(2000), TRIM]


class AlertOut(BaseModel):
    id: uuid.UUID
    card_number: str
    kind: AlertKind
    details: dict[str, Any]
    status: AlertStatus
    created_at: UtcDateTime
    closed_at: UtcDateTime | None
    closed_by: str | None


class AlertClose(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"note": "holder travelled with a colleague's card"}]},
    )

    note: Annotated[str, StringConstraints(max_length=2000)] | None = None


class CreditRecordCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"note": "lent the card to a relative; warned (JX18)"}]},
    )

    note: Note


class CreditRecordOut(BaseModel):
    id: uuid.UUID
    note: str
    author: str
    created_at: UtcDateTime
