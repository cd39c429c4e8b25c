"""Cooperating banks: administrators manage them and run migration plans; the holder binds
the card to an account (PIN); the bank confirms accounts through its API client."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status

from api.auth import CurrentAdmin, CurrentBank, CurrentHolder
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import StrictJsonRoute
from api.schemas.banks import (
    BANK_CODE,
    BankAccountOut,
    BankAccountRequest,
    BankClientOut,
    BankIn,
    BankOut,
    BankUpdate,
    BindingOut,
    ConfirmationOut,
    DecisionIn,
    MigrationIn,
    MigrationReportOut,
)
from app.banks import service
from app.banks.models import Bank, BankBinding, BankStatus, BindingStatus
from app.banks.service import MigrationReport

router = APIRouter(tags=["banks"], route_class=StrictJsonRoute)
_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
BankCode = Annotated[str, Path(pattern=BANK_CODE, description="The bank's code")]
_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"description": "bank-not-found", **_PROBLEM}
}


def _bank_out(bank: Bank) -> BankOut:
    return BankOut(
        code=bank.code,
        name=bank.name,
        status=BankStatus(bank.status),
        agreement_start=bank.agreement_start,
        agreement_end=bank.agreement_end,
        client_id=bank.client_id,
    )


def _binding_out(binding: BankBinding | None) -> BindingOut | None:
    if binding is None:
        return None
    return BindingOut(
        id=binding.id,
        bank_code=binding.bank_code,
        account=binding.account_masked,
        status=BindingStatus(binding.status),
        requested_at=binding.requested_at,
        valid_from=binding.valid_from,
        valid_to=binding.valid_to,
    )


def _report_out(report: MigrationReport) -> MigrationReportOut:
    migration = report.migration
    return MigrationReportOut(
        id=migration.id,
        bank_code=migration.bank_code,
        ends_on=migration.ends_on,
        created_at=migration.created_at,
        affected=report.affected,
        notified=report.notified,
        moved=report.moved,
        remaining_cards=report.remaining_cards,
        moved_to=report.moved_to,
    )


@router.post(
    "/v1/admin/banks",
    status_code=status.HTTP_201_CREATED,
    summary="Add a cooperating bank",
    responses={409: {"description": "bank-exists", **_PROBLEM}},
)
async def create_bank(
    body: BankIn, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> BankOut:
    bank = await service.create_bank(
        session,
        runtime,
        admin.client_id,
        code=body.code,
        name=body.name,
        agreement_start=body.agreement_start,
        agreement_end=body.agreement_end,
    )
    return _bank_out(bank)


@router.get("/v1/admin/banks", summary="Every cooperating bank")
async def list_banks(admin: CurrentAdmin, session: SessionDep) -> list[BankOut]:
    return [_bank_out(bank) for bank in await service.list_banks(session)]


@router.put(
    "/v1/admin/banks/{code}",
    summary="Change a bank's name, status (active, suspended, ending) or agreement dates",
    responses=_NOT_FOUND,
)
async def update_bank(
    code: BankCode, body: BankUpdate, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> BankOut:
    bank = await service.update_bank(
        session,
        runtime,
        admin.client_id,
        code,
        name=body.name,
        status=body.status,
        agreement_start=body.agreement_start,
        agreement_end=body.agreement_end,
    )
    return _bank_out(bank)


@router.post(
    "/v1/admin/banks/{code}/client",
    status_code=status.HTTP_201_CREATED,
    summary="Issue the bank's API client (it confirms accounts); the secret is shown once",
    responses=_NOT_FOUND,
)
async def issue_bank_client(
    code: BankCode, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> BankClientOut:
    issued = await service.issue_bank_client(session, runtime, admin.client_id, code)
    return BankClientOut(client_id=issued.client.client_id, client_secret=issued.client_secret)


@router.post(
    "/v1/admin/banks/{code}/migrations",
    status_code=status.HTTP_201_CREATED,
    summary="The bank's agreement ends: list its cards, notify their holders, track the moves",
    responses=_NOT_FOUND,
)
async def start_migration(
    code: BankCode,
    body: MigrationIn,
    admin: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> MigrationReportOut:
    report = await service.start_migration(
        session, runtime, admin.client_id, code, ends_on=body.ends_on
    )
    return _report_out(report)


@router.get(
    "/v1/admin/banks/{code}/migrations/{migration_id}",
    summary="A migration plan's progress report",
    responses={404: {"description": "migration-not-found", **_PROBLEM}},
)
async def migration_report(
    code: BankCode,
    migration_id: Annotated[uuid.UUID, Path()],
    admin: CurrentAdmin,
    session: SessionDep,
) -> MigrationReportOut:
    return _report_out(await service.migration_report(session, code, migration_id))


@router.get("/v1/me/bank-account", summary="Your card's bank account, and a change waiting")
async def my_bank_account(holder: CurrentHolder, session: SessionDep) -> BankAccountOut:
    account = await service.holder_account(session, holder)
    return BankAccountOut(
        current=_binding_out(account.current), pending=_binding_out(account.pending)
    )


@router.put(
    "/v1/me/bank-account",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Bind your card to an account at a cooperating bank (PIN); the bank confirms it",
    responses={
        **_NOT_FOUND,
        401: {"description": "invalid-credentials", **_PROBLEM},
        409: {"description": "bank-not-active", **_PROBLEM},
        423: {"description": "pin-locked", **_PROBLEM},
    },
)
async def change_bank_account(
    body: BankAccountRequest, holder: CurrentHolder, runtime: RuntimeDep
) -> BindingOut:
    """The card number stays; payments go to the new account once the bank confirms it."""
    binding = await service.request_binding(
        runtime, holder, bank_code=body.bank_code, account_number=body.account_number, pin=body.pin
    )
    out = _binding_out(binding)
    assert out is not None
    return out


@router.get(
    "/v1/bank/account-confirmations",
    summary="As a bank: the accounts holders asked to bind, waiting for your confirmation",
    responses=_NOT_FOUND,
)
async def pending_confirmations(
    bank: CurrentBank, session: SessionDep, runtime: RuntimeDep
) -> list[ConfirmationOut]:
    return [
        ConfirmationOut(
            binding_id=row.binding_id,
            account_number=row.account_number,
            holder_name=row.holder_name,
            card_number=row.card_number,
            requested_at=row.requested_at,
        )
        for row in await service.pending_confirmations(session, runtime, bank)
    ]


@router.post(
    "/v1/bank/account-confirmations/{binding_id}",
    summary="As a bank: confirm (or refuse) an account; confirmed, it is the card's from now on",
    responses={
        404: {"description": "bank-not-found, binding-not-found", **_PROBLEM},
        409: {
            "description": "binding-not-pending; bank-not-active (a suspended or ending bank "
            "confirms no account)",
            **_PROBLEM,
        },
    },
)
async def decide(
    binding_id: Annotated[uuid.UUID, Path()],
    body: DecisionIn,
    bank: CurrentBank,
    session: SessionDep,
    runtime: RuntimeDep,
) -> BindingOut:
    binding = await service.decide(
        session, runtime, bank, binding_id, confirmed=body.confirmed, reason=body.reason
    )
    out = _binding_out(binding)
    assert out is not None
    return out
