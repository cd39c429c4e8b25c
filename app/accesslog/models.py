"""Access-log entries: one per disclosure of a holder's data, written by the audit consumer."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column


class AccessSource(StrEnum):
    online_scan = "online_scan"
    offline_scan = "offline_scan"
    operator_read = "operator_read"
    family = "family"  # a guardian's action for a ward (app.family), in both access logs


class AccessLogEntry(SQLModel, table=True):
    """Keyed by the audit event it was derived from: written in the transaction that stores
    that event, so a redelivered event neither loses nor doubles its entry."""

    __tablename__ = "access_log_entries"
    __table_args__ = (Index("ix_access_log_entries_card_time", "card_id", "occurred_at"),)

    event_id: str = Field(max_length=64, primary_key=True)
    card_id: uuid.UUID
    occurred_at: datetime = Field(sa_column=timestamp_column())
    source: str = Field(max_length=16)
    organisation_id: uuid.UUID | None = None
    organisation: str = Field(default="", max_length=200)
    venue: str = Field(default="", max_length=200)
    """The scanner's name (its venue) or the operator's client id."""
    actor: str = Field(max_length=128)
    region_code: str = Field(default="", max_length=12)
    scene: str | None = Field(default=None, max_length=64)
    attributes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    outcome: str = Field(max_length=32)
    party: str | None = Field(default=None, max_length=40)
    """The other person of a family action, or the guardian who presented the ward's code at
    a scan (their masked card number); None for everything else."""
