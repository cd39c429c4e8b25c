"""Channel links: a holder's card linked to one channel app (a registered `api_clients` row
of kind `channel`), the channel's link requests and its holder sessions' refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class ChannelType(StrEnum):
    bank = "bank"
    payment_app = "payment_app"
    city_app = "city_app"
    other = "other"


class LinkStatus(StrEnum):
    active = "active"
    unlinked = "unlinked"


class RequestStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    redeemed = "redeemed"


class ChannelLink(SQLModel, table=True):
    __tablename__ = "channel_links"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    card_id: uuid.UUID = Field(foreign_key="cards.id", index=True)
    channel_pk: uuid.UUID = Field(foreign_key="api_clients.id", index=True)
    family_id: uuid.UUID = Field(index=True)
    """The session family of every token the channel holds for this link: unlinking marks it
    revoked in the store (`app.holders.sessions.mark_family_revoked`)."""
    status: str = Field(default=LinkStatus.active, max_length=16)
    linked_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    last_used_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    unlinked_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))


class ChannelLinkRequest(SQLModel, table=True):
    """A channel asks to link a holder; the holder approves it with the PIN in our app; the
    channel redeems it once for a channel-scoped session."""

    __tablename__ = "channel_link_requests"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    channel_pk: uuid.UUID = Field(foreign_key="api_clients.id", index=True)
    status: str = Field(default=RequestStatus.pending, max_length=16)
    link_id: uuid.UUID | None = Field(default=None, foreign_key="channel_links.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    expires_at: datetime = Field(sa_column=timestamp_column())


class ChannelRefreshToken(SQLModel, table=True):
    """Only the HMAC is stored; a spent token presented again revokes the link's family."""

    __tablename__ = "channel_refresh_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    link_id: uuid.UUID = Field(foreign_key="channel_links.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    expires_at: datetime = Field(sa_column=timestamp_column())
    used_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
