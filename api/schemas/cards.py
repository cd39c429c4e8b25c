"""Request and response bodies of card applications and their decision."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import UtcDateTime
from app.cards.documents import DocumentType
from app.cards.models import ApplicationStatus, CardStatus


class ApplicationRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "document_type": "resident_id",
                    "document_number": "11010519491231002X",
                    "name": "张小三",
                    "phone": "13800138000",
                    "bank_code": "ICBC",
                    "region_code": "360000",
                }
            ]
        },
    )

    document_type: DocumentType
    document_number: str = Field(min_length=1, max_length=64)
    name: str = Field(
        min_length=1,
        max_length=128,
        description="As on the document: Chinese characters (· between parts) or Latin letters",
    )
    phone: str = Field(
        min_length=11, max_length=20, description="Mainland mobile number, 1[3-9] + 9 digits"
    )
    bank_code: str = Field(
        min_length=1,
        max_length=16,
        description="Cooperating bank: ICBC, CCB, ABC, BOC, BOCOM or JXBANK",
    )
    region_code: str | None = Field(
        default=None,
        pattern=r"^[0-9A-Z]{2,12}$",
        description="Issuing region; the service's own region when absent",
    )


class ApplicationResponse(BaseModel):
    """`card_number` is present only when the card was issued at once (auto-approval)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "6f1c2a9e-0d7b-4a53-9a51-6d3f3f0a2b11",
                    "status": "pending",
                    "created_at": "2026-11-25T08:00:00Z",
                    "card_id": None,
                    "card_number": None,
                }
            ]
        }
    )

    id: uuid.UUID
    status: ApplicationStatus
    created_at: UtcDateTime
    card_id: uuid.UUID | None = None
    card_number: str | None = None


class RejectionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "document photo unreadable"}]},
    )

    reason: str = Field(min_length=1, max_length=500)


class RejectionResponse(BaseModel):
    id: uuid.UUID
    status: ApplicationStatus
    decided_at: UtcDateTime
    reason: str


class IssuedCardResponse(BaseModel):
    """The issued card, for the administrator who hands it to the holder."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "application_id": "6f1c2a9e-0d7b-4a53-9a51-6d3f3f0a2b11",
                    "card_id": "0b0a7c55-8a0e-4d8e-8f62-5b9d5d3ce0aa",
                    "card_number": "364829130754",
                    "region_code": "360000",
                    "bank_code": "ICBC",
                    "status": "active",
                }
            ]
        }
    )

    application_id: uuid.UUID
    card_id: uuid.UUID
    card_number: str
    region_code: str
    bank_code: str
    status: CardStatus
