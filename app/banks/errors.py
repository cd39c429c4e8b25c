"""Errors of cooperating banks and bank bindings."""

from __future__ import annotations

from app.errors import Conflict, InvalidRequest, NotFound


class BankNotFound(NotFound):
    code = "bank-not-found"
    title = "No such cooperating bank"


class BankExists(Conflict):
    code = "bank-exists"
    title = "A bank with this code exists"


class BankNotActive(Conflict):
    code = "bank-not-active"
    title = "The bank does not take new accounts"


class BindingNotFound(NotFound):
    code = "binding-not-found"
    title = "No such account confirmation"


class BindingNotPending(Conflict):
    code = "binding-not-pending"
    title = "This account was already confirmed or refused"


class MigrationNotFound(NotFound):
    code = "migration-not-found"
    title = "No such migration plan"


class InvalidBankRequest(InvalidRequest):
    code = "invalid-bank-request"
    title = "Invalid bank request"
