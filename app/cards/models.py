"""Holders, their card applications, cards, e-card devices and holder sessions.

Personal data (name, document number, phone, birth date) is stored only sealed (AES-GCM,
`app.security.pii`) and found through keyed blind indexes; no column holds it in plaintext.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, DateTime, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def timestamp_column(*, nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


class CardStatus(StrEnum):
    active = "active"
    lost = "lost"
    suspended = "suspended"
    cancelled = "cancelled"


class ApplicationStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class DeviceStatus(StrEnum):
    active = "active"
    unbound = "unbound"


class Person(SQLModel, table=True):
    __tablename__ = "persons"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    document_type: str = Field(max_length=40)
    document_index: str = Field(max_length=64, unique=True)
    document_number_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    name_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    phone_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    phone_index: str = Field(max_length=64, index=True)
    birth_date_sealed: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary, nullable=True)
    )
    """None when the document does not state a birth date (a 15-character resident ID)."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class CardApplication(SQLModel, table=True):
    __tablename__ = "card_applications"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    person_id: uuid.UUID = Field(foreign_key="persons.id", index=True)
    bank_code: str = Field(max_length=16)
    region_code: str = Field(max_length=12)
    status: str = Field(default=ApplicationStatus.pending, max_length=16, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    decided_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    decided_by: str | None = Field(default=None, max_length=128)
    reject_reason: str | None = Field(default=None, max_length=500)
    card_id: uuid.UUID | None = Field(default=None, foreign_key="cards.id")


class Card(SQLModel, table=True):
    """One card identity; the physical card and every e-card device are its carriers."""

    __tablename__ = "cards"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    person_id: uuid.UUID = Field(foreign_key="persons.id", unique=True)
    card_number: str = Field(max_length=20, unique=True)
    ssn_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ssn_index: str = Field(max_length=64, unique=True)
    region_code: str = Field(max_length=12)
    bank_code: str = Field(max_length=16)
    handle: str = Field(max_length=32, unique=True)
    status_index: int = Field(unique=True)
    """The first index of the card's current pool (`CardStatusIndex`), which is authoritative:
    the status list and the QR tokens read the pool. Kept because SQLite cannot drop a UNIQUE
    column in place; it is always one of the pool's indexes, so it never collides."""
    status: str = Field(default=CardStatus.active, max_length=16)
    status_changed_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    pin_hash: str | None = Field(default=None, max_length=255)
    pin_failures: int = 0
    pin_locked_until: datetime | None = Field(
        default=None, sa_column=timestamp_column(nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class CardStatusIndex(SQLModel, table=True):
    """One entry of a card's pool of status list indexes (`SSC_STATUS_INDEX_POOL` of them).

    Every index of the pool carries the card's status in the list (set together on every
    change); each QR token carries one of them, drawn at random, so two tokens of one card
    rarely share an index. On replacement (补换) the pool is retired (`retired_at`): its
    entries stay INVALID in the list for good and are never drawn again, and the card gets a
    fresh pool, so the new carrier's tokens cannot be linked to the old one's by index.
    """

    __tablename__ = "card_status_indexes"

    status_index: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    card_id: uuid.UUID = Field(foreign_key="cards.id", index=True)
    retired_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))


class Device(SQLModel, table=True):
    """A phone on which the e-card is activated."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("card_id", "device_id", name="uq_devices_card_device"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    card_id: uuid.UUID = Field(foreign_key="cards.id", index=True)
    device_id: str = Field(max_length=128)
    public_key: str | None = Field(default=None, max_length=512)
    status: str = Field(default=DeviceStatus.active, max_length=16)
    activated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    unbound_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))


class RefreshToken(SQLModel, table=True):
    """Only the HMAC of a refresh token is stored; reuse of a spent one revokes its family."""

    __tablename__ = "refresh_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    family_id: uuid.UUID = Field(index=True)
    card_id: uuid.UUID = Field(foreign_key="cards.id", index=True)
    device_id: uuid.UUID = Field(foreign_key="devices.id")
    token_hash: str = Field(max_length=64, unique=True)
    issued_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    expires_at: datetime = Field(sa_column=timestamp_column())
    used_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))


class CardEvent(SQLModel, table=True):
    """One lifecycle transition of a card: who, when, through which channel, why."""

    __tablename__ = "card_events"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    card_id: uuid.UUID = Field(foreign_key="cards.id", index=True)
    action: str = Field(max_length=24)
    from_status: str = Field(max_length=16)
    to_status: str = Field(max_length=16)
    actor: str = Field(max_length=128)
    channel: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=500)
    details: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class RetiredCardNumber(SQLModel, table=True):
    """A physical card number replaced by a new one; it never identifies a card again."""

    __tablename__ = "retired_card_numbers"

    card_number: str = Field(max_length=20, primary_key=True)
    card_id: uuid.UUID = Field(foreign_key="cards.id")
    retired_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class HolderEntitlement(SQLModel, table=True):
    """An entitlement (GD7) granted to a card holder until `expires_at`; withdrawing deletes
    the row (the audit log keeps the history). Shown only to scenes that list its kind."""

    __tablename__ = "entitlements"
    __table_args__ = (UniqueConstraint("person_id", "kind"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    person_id: uuid.UUID = Field(foreign_key="persons.id", index=True)
    kind: str = Field(max_length=32)
    expires_at: datetime = Field(sa_column=timestamp_column())
    granted_by: str = Field(max_length=128)
    granted_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
