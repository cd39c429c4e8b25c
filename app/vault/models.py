"""The vault's tables: documents (one row per version) and the holder's verifiable shares.

What is stored in the clear: what the holder lists, filters and searches by and what says
nothing about the person on its own (type, issuer, dates, status, the title, the non-personal
summary fields, the file's SHA-256 and size). Personal summary fields and the issuer's signed
manifest (which names the holder's document number) are sealed (`app.security.pii`); the
file is sealed in the blob store (`token_service.envelope`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class DocumentStatus(StrEnum):
    valid = "valid"
    revoked = "revoked"
    superseded = "superseded"


class HolderSignatureKind(StrEnum):
    device = "device"
    """Made on the holder's phone with the key it registered at activation (ES256)."""
    server = "server"
    """Made by the service on the holder's behalf, bound to the PIN-confirmed session (the
    phone registered no key): said so in the signature's header and in the record."""


class VaultDocument(SQLModel, table=True):
    __tablename__ = "vault_documents"
    __table_args__ = (
        UniqueConstraint("issuer_id", "issuer_document_id", "version", name="uq_vault_doc_version"),
        Index("ix_vault_documents_person_current", "person_id", "current"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    person_id: uuid.UUID = Field(foreign_key="persons.id")
    issuer_id: uuid.UUID = Field(foreign_key="issuers.id")
    issuer: str = Field(max_length=64, index=True)
    """The issuer's code (`app.departments`), shown with its name."""
    issuer_name: str = Field(default="", max_length=200)
    issuer_document_id: str = Field(max_length=128)
    version: int = 1
    current: bool = True
    """The newest version of its (issuer, issuer_document_id); older ones are history."""
    doc_type: str = Field(max_length=40, index=True)
    status: str = Field(default=DocumentStatus.valid, max_length=16)
    title: str = Field(max_length=200)
    search_text: str = Field(sa_column=Column(Text, nullable=False))
    """Title and searchable summary fields as search tokens (`app.vault.search`)."""
    summary: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    """The non-personal summary fields of the type (`app.vault.types`)."""
    personal_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    """The personal summary fields, JSON, sealed under the document's id."""
    issued_at: datetime = Field(sa_column=timestamp_column())
    valid_until: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    content_type: str = Field(max_length=40)
    size: int
    sha256: str = Field(max_length=64)
    blob_key: str = Field(max_length=64, unique=True)
    key_id: str = Field(max_length=32)
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    issuer_signature_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    """The issuer's signed manifest (JWS compact), kept verbatim, sealed."""
    issuer_kid: str = Field(default="", max_length=128)
    supersedes_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    revoked_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    revocation_reason: str | None = Field(default=None, max_length=200)
    holder_signature_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    """A labour contract's holder signature (JWS compact), sealed."""
    holder_signature_kind: str | None = Field(default=None, max_length=16)
    holder_signed_at: datetime | None = Field(
        default=None, sa_column=timestamp_column(nullable=True)
    )


class VaultShare(SQLModel, table=True):
    """A link the holder gave someone: only the HMAC of its secret id is stored."""

    __tablename__ = "vault_shares"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    document_id: uuid.UUID = Field(foreign_key="vault_documents.id", index=True)
    person_id: uuid.UUID = Field(foreign_key="persons.id", index=True)
    purpose: str = Field(max_length=200)
    one_time: bool = False
    expires_at: datetime = Field(sa_column=timestamp_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    revoked_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    opened_count: int = 0
    last_opened_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
