"""Errors of disbursements."""

from __future__ import annotations

from app.errors import Conflict, InvalidRequest


class PaymentIdReused(Conflict):
    code = "payment-id-reused"
    title = "This payment id was used for another payment"


class NoBankAccount(Conflict):
    code = "no-bank-account"
    title = "The card has no confirmed bank account"


class PayeeNotFound(InvalidRequest):
    code = "payee-not-found"
    title = "No card in force has this number"


class InvalidDisbursement(InvalidRequest):
    code = "invalid-disbursement"
    title = "Invalid disbursement"


class UnsupportedMediaType(InvalidRequest):
    code = "unsupported-media-type"
    title = "Unsupported media type"
    status = 415


class TooManyLines(InvalidRequest):
    code = "too-many-lines"
    title = "Too many lines in one submission"
