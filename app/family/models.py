"""Family links between a guardian's card and a ward's card, and the QR tokens a guardian
fetched for a ward (so that a scan of one names the guardian)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class FamilyScope(StrEnum):
    show_qr = "show_qr"  # fetch and show the ward's QR code
    view = "view"  # read the ward's card status and access log
    report_loss = "report_loss"  # report the ward's card lost (挂失)


class LinkStatus(StrEnum):
    pending = "pending"  # invited, not yet accepted by the ward
    active = "active"
    ended = "ended"  # ended by either side (or an invitation withdrawn or declined)


MAX_WARDS_PER_GUARDIAN = 8
MAX_GUARDIANS_PER_WARD = 3


class FamilyLink(SQLModel, table=True):
    __tablename__ = "family_links"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    guardian_card_id: uuid.UUID = Field(foreign_key="cards.id", index=True)
    ward_card_id: uuid.UUID = Field(foreign_key="cards.id", index=True)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=LinkStatus.pending, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    accepted_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    consent_recorded_by: str | None = Field(default=None, max_length=128)
    """The operator who recorded the consent of a ward with no phone; None: the ward's PIN."""
    ended_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    ended_by: str | None = Field(default=None, max_length=128)


class FamilyPresentation(SQLModel, table=True):
    """A ward's QR token fetched by a guardian, by its `cti` (the token's unique id claim):
    the audit consumer finds the scan's `cti` here and names the guardian in both access logs.
    The token itself carries nothing more than any other (no personal data, same size)."""

    __tablename__ = "family_presentations"

    cti: str = Field(max_length=32, primary_key=True)
    link_id: uuid.UUID = Field(foreign_key="family_links.id", index=True)
    guardian_card_id: uuid.UUID
    ward_card_id: uuid.UUID
    guardian_label: str = Field(max_length=40)
    expires_at: datetime = Field(sa_column=timestamp_column())
