"""A complaint and the steps of its handling (its timeline)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class ComplaintKind(StrEnum):
    venue_refused_ecard = "venue_refused_ecard"
    suspected_misuse = "suspected_misuse"
    wrong_disclosure = "wrong_disclosure"
    other = "other"


class ComplaintStatus(StrEnum):
    open = "open"  # filed, nobody assigned yet
    assigned = "assigned"  # an administrator looks into it
    answered = "answered"  # the complainant has an answer
    closed = "closed"  # final


class ComplaintStep(StrEnum):
    filed = "filed"
    assigned = "assigned"
    answered = "answered"
    closed = "closed"


class Complaint(SQLModel, table=True):
    """The tracking number itself is never stored: only its blind index (a keyed hash), so a
    copy of the table gives nobody the capability to read a complaint's status."""

    __tablename__ = "complaints"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tracking_index: str = Field(max_length=64, unique=True)
    kind: str = Field(max_length=32)
    status: str = Field(default=ComplaintStatus.open, max_length=16, index=True)
    region_code: str | None = Field(default=None, max_length=12, index=True)
    card_id: uuid.UUID | None = Field(default=None, foreign_key="cards.id", index=True)
    """The holder who filed it; None for an anonymous complaint."""
    access_log_ref: str | None = Field(default=None, max_length=64)
    """An entry of the holder's access log, as an opaque reference."""
    details_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    contact_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    assignee: str | None = Field(default=None, max_length=64)
    answer: str | None = Field(default=None, max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column(index=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class ComplaintEvent(SQLModel, table=True):
    """One step of a complaint's handling; the complainant sees them all (without who)."""

    __tablename__ = "complaint_events"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    complaint_id: uuid.UUID = Field(foreign_key="complaints.id", index=True)
    step: str = Field(max_length=16)
    actor: str = Field(max_length=128)
    note: str | None = Field(default=None, max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
