"""The web origins of the channel apps that may frame the pages (CSP `frame-ancestors`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class ChannelOrigin(SQLModel, table=True):
    """One `https://` origin of a registered channel app (an `api_clients` row of kind
    `channel`); the pages may be framed there while the channel is active."""

    __tablename__ = "h5_channel_origins"
    __table_args__ = (UniqueConstraint("channel_pk", "origin", name="uq_h5_channel_origins"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    channel_pk: uuid.UUID = Field(foreign_key="api_clients.id", index=True)
    origin: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
