"""Audit rows: append-only, hash-chained so a deleted or edited row is detectable."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Integer, Text
from sqlmodel import Field, SQLModel


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    event_id: str = Field(max_length=64, unique=True, index=True)
    occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    action: str = Field(max_length=64, index=True)
    actor: str = Field(max_length=128)
    subject: str = Field(default="", max_length=128, index=True)
    data: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditCheckpoint(SQLModel, table=True):
    """A signed note of the chain's head (row id and hash) at a moment, kept outside the chain
    table: deleting the newest audit rows leaves a valid shorter chain, but not the row a
    checkpoint names (`app.audit.checkpoints`)."""

    __tablename__ = "audit_checkpoints"

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    row_id: int = Field(sa_column=Column(BigInteger(), nullable=False, index=True))
    row_hash: str = Field(max_length=64)
    mac: str = Field(max_length=64)
