"""The disbursement ledger: one row per payment, per paying department and payment id."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.cards.models import timestamp_column, utcnow


class PaymentKind(StrEnum):
    pension = "pension"
    unemployment_benefit = "unemployment_benefit"
    subsidy = "subsidy"
    migrant_worker_wages = "migrant_worker_wages"
    other = "other"


class Disbursement(SQLModel, table=True):
    __tablename__ = "disbursements"
    __table_args__ = (UniqueConstraint("payer_id", "payment_id", name="uq_disbursements_payment"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    payer_id: str = Field(max_length=64)
    """The paying department's client id."""
    payment_id: str = Field(max_length=64)
    card_id: uuid.UUID = Field(foreign_key="cards.id", index=True)
    kind: str = Field(max_length=32)
    amount_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    value_date: date = Field(index=True)
    binding_id: uuid.UUID = Field(foreign_key="bank_bindings.id")
    bank_code: str = Field(max_length=16, index=True)
    account_masked: str = Field(max_length=40)
    rerouted: bool = False
    """The binding valid at the value date had been replaced: paid to the current account."""
    memo: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
