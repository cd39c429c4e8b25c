"""Linked e-licences: the newest version of each department document, with its signed
original kept verbatim (sealed: it names the holder and their document number)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class LicenceStatus(StrEnum):
    valid = "valid"
    suspended = "suspended"
    revoked = "revoked"
    expired = "expired"


class Licence(SQLModel, table=True):
    __tablename__ = "licences"
    __table_args__ = (UniqueConstraint("issuer_id", "document_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    issuer_id: uuid.UUID = Field(foreign_key="issuers.id", index=True)
    person_id: uuid.UUID = Field(foreign_key="persons.id", index=True)
    document_type: str = Field(max_length=40)
    document_id: str = Field(max_length=128)
    """The department's own id of the document."""
    version: int
    status: str = Field(max_length=16)
    valid_from: date
    valid_until: date | None = None
    kid: str = Field(max_length=128)
    signed_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    """The JWS compact string exactly as pushed, sealed under the data key."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
