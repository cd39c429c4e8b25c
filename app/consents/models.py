"""Consent requests of issuers (departments) to read a holder's data."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class ConsentStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    declined = "declined"
    expired = "expired"
    revoked = "revoked"


class ConsentRequest(SQLModel, table=True):
    __tablename__ = "consent_requests"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    issuer_id: uuid.UUID = Field(foreign_key="issuers.id", index=True)
    person_id: uuid.UUID = Field(foreign_key="persons.id", index=True)
    requested_by: str = Field(max_length=64)
    """The issuer's client that asked."""
    items: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    """What the department may read: document types (`app.departments.types`, any family) and
    card attributes (`app.consents.service.ATTRIBUTE_ITEMS`)."""
    purpose: str = Field(max_length=500)
    access_seconds: int
    """How long the department may read after the approval."""
    status: str = Field(default=ConsentStatus.pending, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    request_expires_at: datetime = Field(sa_column=timestamp_column())
    """A pending request not answered by then expires."""
    decided_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    access_until: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
