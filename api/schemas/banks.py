"""Bodies of cooperating banks, bank bindings and migration plans."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.common import PIN_PATTERN, IsoDate, UtcDateTime
from app.banks.models import BankStatus, BindingStatus

BANK_CODE = r"^[A-Z0-9]{2,16}$"
ACCOUNT_NUMBER = r"^[0-9]{12,30}$"


class BankIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "JXBANK",
                    "name": "江西银行",
                    "agreement_start": "2026-01-01",
                    "agreement_end": None,
                }
            ]
        },
    )

    code: str = Field(pattern=BANK_CODE)
    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    agreement_start: IsoDate
    agreement_end: IsoDate | None = None

    @model_validator(mode="after")
    def _dates(self) -> Self:
        if self.agreement_end is not None and self.agreement_end < self.agreement_start:
            raise ValueError("agreement_end is before agreement_start")
        return self


class BankUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    status: BankStatus
    agreement_start: IsoDate
    agreement_end: IsoDate | None = None

    @model_validator(mode="after")
    def _dates(self) -> Self:
        if self.agreement_end is not None and self.agreement_end < self.agreement_start:
            raise ValueError("agreement_end is before agreement_start")
        return self


class BankOut(BaseModel):
    code: str
    name: str
    status: BankStatus
    agreement_start: date
    agreement_end: date | None
    client_id: str | None = Field(description="The bank's API client that confirms accounts")


class BankClientOut(BaseModel):
    client_id: str
    client_secret: str = Field(description="Shown once")


class BankAccountRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"bank_code": "JXBANK", "account_number": "6222020200112233445", "pin": "284617"}
            ]
        },
    )

    bank_code: str = Field(pattern=BANK_CODE)
    account_number: str = Field(pattern=ACCOUNT_NUMBER)
    pin: str = Field(pattern=PIN_PATTERN, description="Your 6-digit PIN")


class BindingOut(BaseModel):
    id: uuid.UUID
    bank_code: str
    account: str = Field(description="Masked")
    status: BindingStatus
    requested_at: UtcDateTime
    valid_from: UtcDateTime | None
    valid_to: UtcDateTime | None


class BankAccountOut(BaseModel):
    current: BindingOut | None
    pending: BindingOut | None = Field(description="Waiting for the bank's confirmation")


class ConfirmationOut(BaseModel):
    binding_id: uuid.UUID
    account_number: str
    holder_name: str = Field(description="Masked")
    card_number: str = Field(description="Masked")
    requested_at: UtcDateTime


class DecisionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"confirmed": True, "reason": None}]}
    )

    confirmed: bool
    reason: str | None = Field(default=None, max_length=200)


class MigrationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"ends_on": "2027-06-30"}]}
    )

    ends_on: IsoDate


class MigrationReportOut(BaseModel):
    id: uuid.UUID
    bank_code: str
    ends_on: date
    created_at: UtcDateTime
    affected: int = Field(description="Cards bound to the bank when the plan started")
    notified: int
    moved: int
    remaining_cards: list[str] = Field(description="Masked numbers of the cards not moved yet")
    moved_to: dict[str, int] = Field(description="Cards moved, per new bank")
