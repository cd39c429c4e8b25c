"""Issuers (departments, training institutions, employers) and their signing keys.

An issuer acts through one or more API clients (`api_clients.kind = "department"`,
`api_clients.issuer_id`); it may push documents of the types in `issued_types` only. Its keys
are public JWKs registered by an administrator: `active` keys sign new pushes, `retired`
keys (rotated out) still verify what they signed, `revoked` keys verify nothing any more.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class IssuerKind(StrEnum):
    department = "department"
    training_institution = "training_institution"
    employer = "employer"


class KeyStatus(StrEnum):
    active = "active"
    retired = "retired"
    revoked = "revoked"


class Issuer(SQLModel, table=True):
    __tablename__ = "issuers"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    """The issuer's own short code (e.g. `360000-traffic`), shown to holders with its name."""
    name: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    region_code: str | None = Field(default=None, max_length=12)
    issued_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    disabled_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))


class IssuerKey(SQLModel, table=True):
    __tablename__ = "issuer_keys"
    __table_args__ = (UniqueConstraint("issuer_id", "kid"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    issuer_id: uuid.UUID = Field(foreign_key="issuers.id", index=True)
    kid: str = Field(max_length=128)
    alg: str = Field(max_length=8)
    jwk: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    """The public JWK (kty, crv, x[, y], kid, alg): never a private member."""
    status: str = Field(default=KeyStatus.active, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    retired_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    revocation_reason: str | None = Field(default=None, max_length=500)
