"""Cooperating banks, the card's bank bindings (with validity periods) and migration plans."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class BankStatus(StrEnum):
    active = "active"  # takes new accounts
    suspended = "suspended"  # cooperation paused: no new accounts, existing ones paid
    ending = "ending"  # the agreement ends: a migration plan moves its holders


class BindingStatus(StrEnum):
    pending = "pending"  # the holder asked; the bank has not confirmed the account yet
    active = "active"  # the current account of the card
    superseded = "superseded"  # an earlier account (valid_from .. valid_to)
    refused = "refused"  # the bank did not confirm it


class Bank(SQLModel, table=True):
    __tablename__ = "banks"

    code: str = Field(max_length=16, primary_key=True)
    name: str = Field(max_length=200)
    status: str = Field(default=BankStatus.active, max_length=16)
    agreement_start: date
    agreement_end: date | None = None
    client_id: str | None = Field(default=None, max_length=64)
    """The bank's API client (`api_clients.client_id`, kind bank), which confirms accounts."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class BankBinding(SQLModel, table=True):
    """The card's financial account at a bank, valid from `valid_from` until `valid_to`
    (None: still current). The account number is sealed like other personal data."""

    __tablename__ = "bank_bindings"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    card_id: uuid.UUID = Field(foreign_key="cards.id", index=True)
    bank_code: str = Field(foreign_key="banks.code", max_length=16, index=True)
    account_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    account_masked: str = Field(max_length=40)
    status: str = Field(default=BindingStatus.pending, max_length=16)
    requested_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    valid_from: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    valid_to: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    decided_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    refusal_reason: str | None = Field(default=None, max_length=200)


class BankMigration(SQLModel, table=True):
    """A plan to move the cards of an ending bank: its items list the affected cards."""

    __tablename__ = "bank_migrations"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    bank_code: str = Field(foreign_key="banks.code", max_length=16, index=True)
    ends_on: date
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class BankMigrationItem(SQLModel, table=True):
    __tablename__ = "bank_migration_items"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    migration_id: uuid.UUID = Field(foreign_key="bank_migrations.id", index=True)
    card_id: uuid.UUID = Field(foreign_key="cards.id")
    binding_id: uuid.UUID = Field(foreign_key="bank_bindings.id")
    notified_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    moved_to_bank: str | None = Field(default=None, max_length=16)
    moved_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
