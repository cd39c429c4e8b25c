"""Bodies of disbursements, the holder's payments and reconciliation."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import IsoDate, UtcDateTime
from app.payments.models import PaymentKind

PAYMENT_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
MAX_LINES = 1000
MAX_CREDITS = 200
"""Credits per reconciliation request: 200 of the longest credit stay below
SSC_MAX_REQUEST_BYTES' default (64 KiB); a longer statement is sent in several periods."""


class DisbursementIn(BaseModel):
    """One payment; in bulk, one such object per line (`application/jsonl`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "payment_id": "PEN-2026-12-000123",
                    "card_number": "364829130754",
                    "kind": "pension",
                    "amount_fen": 325000,
                    "value_date": "2026-12-05",
                    "memo": "December pension",
                }
            ]
        },
    )

    payment_id: str = Field(pattern=PAYMENT_ID, description="Yours; a retry reuses it")
    card_number: str = Field(min_length=1, max_length=32)
    kind: PaymentKind
    amount_fen: int = Field(gt=0, le=10**11, description="Amount in fen (0.01 yuan)")
    value_date: IsoDate
    memo: str | None = Field(default=None, max_length=200)


class DisbursementOut(BaseModel):
    id: uuid.UUID
    payment_id: str
    kind: PaymentKind
    amount_fen: int
    value_date: date
    bank_code: str
    account: str = Field(description="Masked")
    rerouted: bool = Field(
        description="The account at the value date had been replaced: paid to the current one"
    )
    created_at: UtcDateTime


class LineResultOut(BaseModel):
    line: int = Field(description="1-based line number (1 for a single JSON body)")
    outcome: Literal["created", "duplicate", "error"]
    payment_id: str | None
    disbursement: DisbursementOut | None = None
    error: dict[str, object] | None = Field(
        default=None, description="A problem object (type, title, detail) for a bad line"
    )


class BulkResultOut(BaseModel):
    created: int
    duplicates: int
    errors: int
    results: list[LineResultOut]


class HolderPaymentOut(BaseModel):
    id: uuid.UUID
    payer: str = Field(description="The paying department's client id")
    payment_id: str
    kind: PaymentKind
    amount_fen: int
    value_date: date
    bank_code: str
    account: str
    rerouted: bool
    memo: str | None


class StatementCreditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payer_id: str = Field(min_length=1, max_length=64)
    payment_id: str = Field(pattern=PAYMENT_ID)
    account_number: str = Field(pattern=r"^[0-9]{12,30}$")
    amount_fen: int = Field(gt=0, le=10**11)
    value_date: IsoDate


class StatementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period_from: IsoDate
    period_to: IsoDate
    credits: list[StatementCreditIn] = Field(max_length=MAX_CREDITS)


class MismatchOut(BaseModel):
    kind: Literal[
        "missing_credit",
        "unknown_credit",
        "amount_differs",
        "account_differs",
        "date_differs",
        "duplicate_credit",
    ]
    payer_id: str
    payment_id: str
    ledger_amount_fen: int | None
    statement_amount_fen: int | None


class ReconciliationOut(BaseModel):
    bank_code: str
    period_from: date
    period_to: date
    ledger_entries: int
    statement_credits: int
    matched: int
    mismatches: list[MismatchOut]


class PayerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"\S")


class PayerOut(BaseModel):
    client_id: str
    client_secret: str = Field(description="Shown once")
