"""Payments to the card and its bank account on the mobile pages: the ledger (newest value
date first), the account payments go to with a change waiting for the bank, and asking for
a new account with the PIN. The rules are `app.payments`' and `app.banks`'."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.responses import Response

from api.deps import SessionDep
from api.h5.messages import local_time, refusal
from api.h5.pages import BASE, HolderForm, HolderPage, PageContext
from api.h5.texts import BANK_NAMES_ZH
from api.schemas.banks import BankAccountRequest
from app.banks import service as banks
from app.banks.errors import BankNotActive, BankNotFound
from app.banks.models import BankStatus
from app.errors import DomainError, InvalidRequest
from app.payments import service as payments

router = APIRouter(include_in_schema=False)

PAYMENTS_SHOWN = 20
PAYMENTS_SHOWN_CARE = 5
"""Elder mode shows fewer payments per screen."""


def bank_name(context: PageContext, code: str, name: str | None = None) -> str:
    if context.language == "zh" and code in BANK_NAMES_ZH:
        return BANK_NAMES_ZH[code]
    return name or code


def yuan(amount_fen: int) -> str:
    return f"{amount_fen // 100:,}.{amount_fen % 100:02d}"


@router.get(f"{BASE}/payments")
async def payments_page(context: HolderPage, session: SessionDep) -> Response:
    holder = context.holder_page.holder
    limit = PAYMENTS_SHOWN_CARE if context.care else PAYMENTS_SHOWN
    ledger = await payments.ledger(session, holder, limit)
    account = await banks.holder_account(session, holder)
    names = {bank.code: bank.name for bank in await banks.list_banks(session)}
    return context.render(
        "payments.html",
        title=context.t("payments"),
        back="card",
        payments=ledger,
        account=account,
        bank_name=lambda code: bank_name(context, code, names.get(code)),
        yuan=yuan,
        local_time=local_time,
    )


async def _bank_page(
    context: PageContext,
    session: AsyncSession,
    *,
    status_code: int = 200,
    message: str | None = None,
    kind: str = "done",
) -> Response:
    account = await banks.holder_account(session, context.holder_page.holder)
    listed = await banks.list_banks(session)
    names = {bank.code: bank.name for bank in listed}
    open_banks = [
        (bank.code, bank_name(context, bank.code, bank.name))
        for bank in listed
        if bank.status == BankStatus.active.value and bank.client_id is not None
    ]
    return context.render(
        "bank.html",
        status_code=status_code,
        title=context.t("bank_account"),
        back="payments",
        account=account,
        banks=open_banks,
        bank_name=lambda code: bank_name(context, code, names.get(code)),
        local_time=local_time,
        message=message,
        kind=kind,
    )


@router.get(f"{BASE}/bank")
async def bank_page(context: HolderPage, session: SessionDep, done: str | None = None) -> Response:
    message = context.t("bank_requested") if done == "requested" else None
    return await _bank_page(context, session, message=message)


def _bank_form(context: PageContext) -> BankAccountRequest:
    """The API's body, so the page checks the account number by the same rule."""
    try:
        return BankAccountRequest(
            bank_code=context.field("bank_code"),
            account_number=context.field("account_number").replace(" ", ""),
            pin=context.field("pin"),
        )
    except ValidationError as error:
        raise InvalidRequest("a bank, an account number and the PIN") from error


@router.post(f"{BASE}/bank")
async def change_bank(context: HolderForm, session: SessionDep) -> Response:
    """As `PUT /v1/me/bank-account`: with the PIN; the bank confirms the account, and
    payments go there from then on."""
    try:
        form = _bank_form(context)
        await banks.request_binding(
            context.runtime,
            context.holder_page.holder,
            bank_code=form.bank_code,
            account_number=form.account_number,
            pin=form.pin,
        )
    except DomainError as error:
        message = (
            context.t("error_bank")
            if isinstance(error, BankNotActive | BankNotFound)
            else refusal(context, error)
        )
        return await _bank_page(
            context, session, status_code=error.status, message=message, kind="error"
        )
    return context.redirect(f"{BASE}/bank?done=requested")
