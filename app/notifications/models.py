"""One notification inbox per holder (card)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class NotificationKind(StrEnum):
    family_link_asked = "family_link_asked"
    family_link_accepted = "family_link_accepted"
    family_link_ended = "family_link_ended"
    channel_linked = "channel_linked"
    channel_unlinked = "channel_unlinked"
    payment_made = "payment_made"
    payment_rerouted = "payment_rerouted"
    bank_changed = "bank_changed"
    bank_ending = "bank_ending"
    card_status_changed = "card_status_changed"
    consent_requested = "consent_requested"


class Notification(SQLModel, table=True):
    """`dedup_key` is unique per card: an event delivered twice (the audit stream delivers at
    least once) or two events meaning one thing (one payment) make one notification."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("card_id", "dedup_key", name="uq_notifications_card_dedup"),
        Index("ix_notifications_card_time", "card_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    card_id: uuid.UUID
    kind: str = Field(max_length=32)
    dedup_key: str = Field(max_length=128)
    message: str = Field(max_length=500)
    data: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    read_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"
    """Given up after `SSC_NOTIFICATION_DELIVERY_ATTEMPTS` attempts (the inbox copy stays)."""


class NotificationDelivery(SQLModel, table=True):
    """The delivery of one notification by one sender besides the inbox (SMS, push): made
    `pending` with the notification, in its transaction, for every sender registered then;
    tried after the commit and by the sweep until `delivered` or `failed`
    (`app.notifications.delivery`). A delivered row is never tried again."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_due", "status", "next_attempt_at"),)

    notification_id: uuid.UUID = Field(foreign_key="notifications.id", primary_key=True)
    sender: str = Field(max_length=32, primary_key=True)
    status: str = Field(default=DeliveryStatus.pending.value, max_length=16)
    attempts: int = 0
    """Attempts started (counted when claimed, so a crash mid-send counts too)."""
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    """When a pending delivery is due; while one attempt runs, the end of its claim."""
    last_error: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    delivered_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
