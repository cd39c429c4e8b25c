"""Organisations (venues) and the API clients that act for them (scanners) or for us (admins)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class ClientKind(StrEnum):
    scanner = "scanner"
    admin = "admin"
    department = "department"
    channel = "channel"  # a channel app embedding the e-card (app.channels)


class ClientStatus(StrEnum):
    active = "active"
    disabled = "disabled"


class Organisation(SQLModel, table=True):
    __tablename__ = "organisations"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    venue_type: str = Field(max_length=40)
    region_code: str = Field(max_length=12)
    scenes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    latitude: float | None = None
    longitude: float | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    withdrawn_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    """When the province withdrew its approval: none of its scanners verifies until reinstated."""


class Venue(SQLModel, table=True):
    """A place where an organisation scans cards (a hospital's campus, a library's branch);
    each organisation has a default venue at its own location, created with it."""

    __tablename__ = "venues"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisations.id", index=True)
    name: str = Field(max_length=200)
    region_code: str = Field(max_length=12)
    latitude: float | None = None
    longitude: float | None = None
    is_default: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class ApiClient(SQLModel, table=True):
    """OAuth2 client-credentials client; only the HMAC of its secret is stored."""

    __tablename__ = "api_clients"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: str = Field(max_length=64, unique=True)
    secret_hash: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=200)
    organisation_id: uuid.UUID | None = Field(
        default=None, foreign_key="organisations.id", index=True
    )
    venue_id: uuid.UUID | None = Field(default=None, foreign_key="venues.id", index=True)
    """A scanner's venue (one of its organisation's)."""
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    scenes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=ClientStatus.active, max_length=16)
    role: str | None = Field(default=None, max_length=32)
    """An admin client's role (`app.security.roles.AdminRole`); None: provincial_admin."""
    region_code: str | None = Field(default=None, max_length=12)
    """A city administrator's city."""
    channel_type: str | None = Field(default=None, max_length=16)
    """A channel app's type (`app.channels.models.ChannelType`): bank, payment_app, city_app."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    disabled_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
