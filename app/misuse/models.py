"""Misuse alerts raised by the detector and the credit-record notes administrators write."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class AlertKind(StrEnum):
    impossible_travel = "impossible_travel"
    scan_rate = "scan_rate"


class AlertStatus(StrEnum):
    open = "open"
    closed = "closed"


class MisuseAlert(SQLModel, table=True):
    """A signal for an administrator to look at; it never punishes by itself."""

    __tablename__ = "misuse_alerts"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    card_id: uuid.UUID = Field(foreign_key="cards.id", index=True)
    kind: str = Field(max_length=32)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=AlertStatus.open, max_length=16, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    closed_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    closed_by: str | None = Field(default=None, max_length=128)


class CreditRecord(SQLModel, table=True):
    """A note in the holder's credit record (JX18, SY13), written by an administrator."""

    __tablename__ = "credit_records"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    card_id: uuid.UUID = Field(foreign_key="cards.id", index=True)
    note: str = Field(max_length=2000)
    author: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
