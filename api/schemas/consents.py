"""Request and response bodies of consent requests and consent reads."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas.common import PIN_PATTERN, UtcDateTime
from api.schemas.departments import FreeText
from app.cards.documents import DocumentType

Item = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]


class ConsentRequestCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "document_type": "resident_id",
                    "document_number": "11010519491231002X",
                    "items": ["driving_licence", "full_name"],
                    "purpose": "Vehicle registration transfer at the Nanchang vehicle office",
                    "access_days": 7,
                }
            ]
        },
    )

    document_type: DocumentType
    document_number: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    items: list[Item] = Field(
        min_length=1,
        max_length=20,
        description="Document types (e.g. driving_licence) and card attributes (full_name, "
        "document_type, document_number) to read",
    )
    purpose: FreeText
    access_days: int = Field(ge=1, le=365, strict=True)


class ConsentRequestOut(BaseModel):
    id: uuid.UUID
    issuer: str = Field(description="The asking department's code and name")
    items: list[str]
    purpose: str
    access_days: int
    status: str = Field(description="pending, approved, declined, expired or revoked")
    created_at: UtcDateTime
    request_expires_at: UtcDateTime
    decided_at: UtcDateTime | None
    access_until: UtcDateTime | None


class ConsentApprove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pin: Annotated[str, StringConstraints(pattern=PIN_PATTERN)]


class ConsentData(BaseModel):
    consent_id: uuid.UUID
    purpose: str
    attributes: dict[str, str] = Field(description="The approved card attributes")
    documents: list[dict[str, Any]] = Field(
        description="The approved documents (e-licences), each with its verification now"
    )
