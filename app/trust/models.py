"""Other issuers (provinces, cities) whose tokens we accept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class TrustedIssuerRecord(SQLModel, table=True):
    """One registered issuer: its published keys (as a JWK set) and its status list.

    `status_list` holds the issuer's latest signed status list CWT, fetched from
    `status_list_uri` on a schedule (`app.trust.status_fetch`) or uploaded by an
    administrator; the verify path and the verifier bundles use it.
    """

    __tablename__ = "trusted_issuers"

    code: str = Field(primary_key=True, max_length=12)
    name: str = Field(max_length=200)
    jwks: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    token_lifetime: int
    status_list_uri: str | None = Field(default=None, max_length=2048)
    status_list: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    status_list_expires_at: datetime | None = Field(
        default=None, sa_column=timestamp_column(nullable=True)
    )
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
