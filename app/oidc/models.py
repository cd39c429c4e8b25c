"""Relying parties (OpenID Connect clients), remembered consents and refresh tokens.

Short-lived protocol state (pending authorization requests, login sessions, authorization
codes, access tokens, device codes) lives in the store with its expiry; see `app.oidc.state`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class ClientAuthMethod(StrEnum):
    """RFC 7591 token endpoint authentication methods."""

    client_secret_basic = "client_secret_basic"  # noqa: S105 - a method name
    client_secret_post = "client_secret_post"  # noqa: S105
    private_key_jwt = "private_key_jwt"
    none = "none"


class SubjectType(StrEnum):
    pairwise = "pairwise"
    public = "public"


class RelyingParty(SQLModel, table=True):
    """A government app registered by an administrator."""

    __tablename__ = "oidc_relying_parties"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    logo_uri: str | None = Field(default=None, max_length=500)
    auth_method: str = Field(max_length=32)
    secret_hash: str | None = Field(default=None, max_length=64)
    """HMAC of the client secret (`app.security.opaque`); the secret is shown once."""
    jwks: dict[str, object] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    """The client's public keys, for `private_key_jwt`."""
    redirect_uris: list[str] = Field(sa_column=Column(JSON, nullable=False))
    post_logout_redirect_uris: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    grant_types: list[str] = Field(sa_column=Column(JSON, nullable=False))
    sector_identifier: str = Field(max_length=255)
    subject_type: str = Field(default=SubjectType.pairwise, max_length=16)
    enabled: bool = True
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())

    @property
    def is_public(self) -> bool:
        return self.auth_method == ClientAuthMethod.none


class OidcConsent(SQLModel, table=True):
    """What a holder agreed to give one relying party; asked again only for more."""

    __tablename__ = "oidc_consents"
    __table_args__ = (UniqueConstraint("card_id", "client_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    card_id: uuid.UUID = Field(foreign_key="cards.id", index=True)
    client_id: str = Field(max_length=64)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    granted_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class OidcRefreshToken(SQLModel, table=True):
    """One refresh token of a grant (family); only its HMAC is stored. A spent token that
    comes back revokes its whole family (and the family's access tokens)."""

    __tablename__ = "oidc_refresh_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    family_id: uuid.UUID = Field(index=True)
    token_hash: str = Field(max_length=64, unique=True)
    client_id: str = Field(max_length=64, index=True)
    card_id: uuid.UUID = Field(foreign_key="cards.id", index=True)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    auth_time: int
    issued_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    expires_at: datetime = Field(sa_column=timestamp_column())
    used_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
