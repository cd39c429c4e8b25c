"""Bodies of the family service (亲情服务)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import PIN_PATTERN, UtcDateTime
from app.cards.models import CardStatus
from app.family.models import FamilyScope, LinkStatus


class InvitationRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"ward_card_number": "364829130754", "scopes": ["show_qr", "view"]}]
        },
    )

    ward_card_number: str = Field(min_length=1, max_length=32, description="The relative's card")
    scopes: list[FamilyScope] = Field(
        min_length=1, max_length=3, description="What the link lets the guardian do"
    )


class AcceptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"pin": "284617"}]})

    pin: str = Field(pattern=PIN_PATTERN, description="The ward's own 6-digit PIN")


class OperatorConsentRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "link_id": "7d0c6c8e-8a4e-4a43-9a51-3e0f0c1b2a77",
                    "holder_document_number": "11010519491231002X",
                }
            ]
        },
    )

    link_id: uuid.UUID
    holder_document_number: str = Field(
        min_length=1, max_length=64, description="The ward's identity document, checked in person"
    )


class FamilyLinkOut(BaseModel):
    id: uuid.UUID
    role: Literal["guardian", "ward"] = Field(description="Your side of the link")
    other_card_number: str = Field(description="The other person's masked card number")
    scopes: list[FamilyScope]
    status: LinkStatus
    created_at: UtcDateTime
    accepted_at: UtcDateTime | None
    consent_recorded_by: str | None = Field(
        description="The operator who recorded the ward's consent at a service hall, if so"
    )
    ended_at: UtcDateTime | None
    ended_by: Literal["guardian", "ward"] | None


class WardQrOut(BaseModel):
    token: str = Field(description="The ward's SSC1 QR token")
    kid: str
    expires_at: UtcDateTime


class WardStatusOut(BaseModel):
    card_number: str = Field(description="Masked")
    status: CardStatus
    status_changed_at: UtcDateTime
