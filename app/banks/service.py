"""Cooperating banks (GD12, GD20) and the card's bank binding.

- Banks are records administrators manage: code, name, status (`active`, `suspended`,
  `ending`), agreement dates, and the bank's API client (kind `bank`).
- The card's financial account is a binding (`bank_bindings`), separate from the card
  identity, with a validity period: changing bank never changes the card (GD5).
- The holder changes the binding with the PIN (`request_binding`); the new bank confirms the
  account through its API client (`decide`); from that moment the new binding is current and
  the previous one ends (`valid_to`). The holder is told (`bank.binding_changed`).
- When a bank's agreement ends, an administrator starts a migration plan: it lists the cards
  bound to the bank, tells each holder (`bank.ending_notice`), records each binding moved as
  the holder chooses another bank, and reports the progress.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.banks.errors import (
    BankExists,
    BankNotActive,
    BankNotFound,
    BindingNotFound,
    BindingNotPending,
    InvalidBankRequest,
    MigrationNotFound,
)
from app.banks.models import (
    Bank,
    BankBinding,
    BankMigration,
    BankMigrationItem,
    BankStatus,
    BindingStatus,
)
from app.cards.models import Card, Person
from app.cards.service import NAME_FIELD
from app.clients.models import ClientKind
from app.clients.service import IssuedClient, new_client
from app.errors import DomainError
from app.holders.service import check_holder_pin, holder_card_and_device, mask_card_number
from app.runtime import Runtime
from app.security.pii import mask_name
from app.security.principals import ClientPrincipal, HolderPrincipal, Scope

ACCOUNT_FIELD = "bank_account"
"""The associated data of a sealed account number (`app.security.pii`)."""


def mask_account(number: str) -> str:
    """6222 **** 1234: the bank's prefix and the last four digits."""
    return f"{number[:4]} **** {number[-4:]}"


async def create_bank(
    session: AsyncSession,
    runtime: Runtime,
    actor: str,
    *,
    code: str,
    name: str,
    agreement_start: date,
    agreement_end: date | None,
) -> Bank:
    """:raises BankExists:"""
    if await session.get(Bank, code) is not None:
        raise BankExists(f"a bank {code} exists")
    _check_dates(agreement_start, agreement_end)
    bank = Bank(code=code, name=name, agreement_start=agreement_start, agreement_end=agreement_end)
    session.add(bank)
    await session.flush()
    await record(runtime.store, "bank.create", actor, code, {"name": name})
    return bank


def _check_dates(start: date, end: date | None) -> None:
    if end is not None and end < start:
        raise InvalidBankRequest("the agreement cannot end before it starts", field="agreement_end")


async def get_bank(session: AsyncSession, code: str, *, lock: bool = False) -> Bank:
    """:raises BankNotFound:"""
    bank = await session.get(Bank, code, with_for_update=lock or None)
    if bank is None:
        raise BankNotFound(f"no bank {code}")
    return bank


async def list_banks(session: AsyncSession) -> Sequence[Bank]:
    return (await session.exec(select(Bank).order_by(col(Bank.code)))).all()


async def update_bank(
    session: AsyncSession,
    runtime: Runtime,
    actor: str,
    code: str,
    *,
    name: str,
    status: BankStatus,
    agreement_start: date,
    agreement_end: date | None,
) -> Bank:
    """:raises BankNotFound, InvalidBankRequest:"""
    bank = await get_bank(session, code, lock=True)
    _check_dates(agreement_start, agreement_end)
    before = bank.status
    bank.name, bank.status = name, status.value
    bank.agreement_start, bank.agreement_end = agreement_start, agreement_end
    bank.updated_at = datetime.now(UTC)
    session.add(bank)
    await session.flush()
    await record(runtime.store, "bank.update", actor, code, {"from": before, "to": status.value})
    return bank


async def issue_bank_client(
    session: AsyncSession, runtime: Runtime, actor: str, code: str
) -> IssuedClient:
    """The bank's API client (a new one replaces the bank's earlier one for confirmations).

    :raises BankNotFound:
    """
    bank = await get_bank(session, code, lock=True)
    issued = new_client(
        ClientKind.bank, f"bank {code}", runtime.secret_hash_key, [Scope.bank.value]
    )
    session.add(issued.client)
    bank.client_id = issued.client.client_id
    session.add(bank)
    await session.flush()
    await record(runtime.store, "bank.client_issued", actor, code, {"client": bank.client_id})
    return issued


# --- the holder's binding ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HolderAccount:
    current: BankBinding | None
    pending: BankBinding | None


async def current_binding(session: AsyncSession, card_id: uuid.UUID) -> BankBinding | None:
    return (
        await session.exec(
            select(BankBinding)
            .where(BankBinding.card_id == card_id)
            .where(BankBinding.status == BindingStatus.active.value)
        )
    ).first()


async def _pending_binding(session: AsyncSession, card_id: uuid.UUID) -> BankBinding | None:
    return (
        await session.exec(
            select(BankBinding)
            .where(BankBinding.card_id == card_id)
            .where(BankBinding.status == BindingStatus.pending.value)
        )
    ).first()


async def holder_account(session: AsyncSession, holder: HolderPrincipal) -> HolderAccount:
    card, _ = await holder_card_and_device(session, holder)
    return HolderAccount(
        await current_binding(session, card.id), await _pending_binding(session, card.id)
    )


async def request_binding(
    runtime: Runtime, holder: HolderPrincipal, *, bank_code: str, account_number: str, pin: str
) -> BankBinding:
    """The holder asks to bind the card to an account at `bank_code`, with the PIN; the bank
    confirms it through its API. An earlier unconfirmed request is withdrawn.

    :raises BankNotFound, BankNotActive, InvalidCredentials, PinLocked:
    """
    async with runtime.database.session() as session:
        outcome = await _request_binding(
            session, runtime, holder, bank_code=bank_code, account_number=account_number, pin=pin
        )
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


async def _request_binding(
    session: AsyncSession,
    runtime: Runtime,
    holder: HolderPrincipal,
    *,
    bank_code: str,
    account_number: str,
    pin: str,
) -> BankBinding | DomainError:
    card, _ = await holder_card_and_device(session, holder)
    bank = await get_bank(session, bank_code)
    if bank.status != BankStatus.active.value or bank.client_id is None:
        raise BankNotActive(f"{bank.code} does not take new accounts ({bank.status})")
    refusal = await check_holder_pin(session, runtime, card, pin, "bank_binding")
    if refusal is not None:
        return refusal
    earlier = await _pending_binding(session, card.id)
    if earlier is not None:
        earlier.status = BindingStatus.refused.value
        earlier.refusal_reason = "withdrawn: a newer request replaced it"
        earlier.decided_at = datetime.now(UTC)
        session.add(earlier)
    sealed = await asyncio.to_thread(runtime.pii.seal, ACCOUNT_FIELD, account_number)
    binding = BankBinding(
        card_id=card.id,
        bank_code=bank.code,
        account_sealed=sealed,
        account_masked=mask_account(account_number),
    )
    session.add(binding)
    await session.flush()
    await record(
        runtime.store,
        "bank.binding_requested",
        f"holder:{card.id}",
        str(card.id),
        {"card": str(card.id), "binding": str(binding.id), "bank_code": bank.code},
    )
    return binding


# --- the bank's side --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Confirmation:
    binding_id: uuid.UUID
    account_number: str
    holder_name: str
    card_number: str
    requested_at: datetime


async def _bank_of(session: AsyncSession, principal: ClientPrincipal) -> Bank:
    bank = (await session.exec(select(Bank).where(Bank.client_id == principal.client_id))).first()
    if bank is None:
        raise BankNotFound("this client is not a cooperating bank's current client")
    return bank


async def pending_confirmations(
    session: AsyncSession, runtime: Runtime, principal: ClientPrincipal
) -> list[Confirmation]:
    """The accounts the bank is asked to confirm: the account number (its own customer's)
    and the holder's masked name and card number, nothing more."""
    bank = await _bank_of(session, principal)
    rows = await session.exec(
        select(BankBinding, Card, Person)
        .join(Card, col(Card.id) == col(BankBinding.card_id))
        .join(Person, col(Person.id) == col(Card.person_id))
        .where(BankBinding.bank_code == bank.code)
        .where(BankBinding.status == BindingStatus.pending.value)
        .order_by(col(BankBinding.requested_at))
    )
    return [
        Confirmation(
            binding.id,
            runtime.pii.open(ACCOUNT_FIELD, binding.account_sealed),
            mask_name(runtime.pii.open(NAME_FIELD, person.name_sealed)),
            mask_card_number(card.card_number),
            binding.requested_at,
        )
        for binding, card, person in rows.all()
    ]


async def decide(
    session: AsyncSession,
    runtime: Runtime,
    principal: ClientPrincipal,
    binding_id: uuid.UUID,
    *,
    confirmed: bool,
    reason: str | None,
) -> BankBinding:
    """The bank confirms (or refuses) the account. Confirmed, it is the card's binding from
    now on; the previous one ends now; a migration item of the card is marked moved. A bank
    that is not active (suspended, ending) may refuse a pending account, not confirm it: the
    account stays pending, and the holder may ask another bank.

    :raises BankNotFound, BindingNotFound, BindingNotPending, BankNotActive:
    """
    bank = await _bank_of(session, principal)
    binding = await session.get(BankBinding, binding_id, with_for_update=True)
    if binding is None or binding.bank_code != bank.code:
        raise BindingNotFound("no such account confirmation for this bank")
    if binding.status != BindingStatus.pending.value:
        raise BindingNotPending(f"this account is {binding.status}")
    if confirmed and bank.status != BankStatus.active.value:
        # A suspended or ending bank takes no new account, also none asked for before.
        raise BankNotActive(f"{bank.code} does not take new accounts ({bank.status})")
    now = datetime.now(UTC)
    binding.decided_at = now
    if not confirmed:
        binding.status = BindingStatus.refused.value
        binding.refusal_reason = reason or "not confirmed by the bank"
        session.add(binding)
        await session.flush()
        await record(
            runtime.store,
            "bank.binding_refused",
            principal.client_id,
            str(binding.card_id),
            {"card": str(binding.card_id), "binding": str(binding.id)},
        )
        return binding
    card = await session.get(Card, binding.card_id, with_for_update=True)
    assert card is not None
    previous = await current_binding(session, card.id)
    if previous is not None:
        previous.status = BindingStatus.superseded.value
        previous.valid_to = now
        session.add(previous)
    binding.status = BindingStatus.active.value
    binding.valid_from = now
    card.bank_code = bank.code
    session.add_all([binding, card])
    items = await session.exec(
        select(BankMigrationItem)
        .where(BankMigrationItem.card_id == card.id)
        .where(col(BankMigrationItem.moved_at).is_(None))
    )
    for item in items.all():
        item.moved_to_bank, item.moved_at = bank.code, now
        session.add(item)
    await session.flush()
    await record(
        runtime.store,
        "bank.binding_changed",
        principal.client_id,
        str(card.id),
        {
            "card": str(card.id),
            "binding": str(binding.id),
            "bank_code": bank.code,
            "account": binding.account_masked,
            "previous_bank": previous.bank_code if previous is not None else None,
        },
    )
    return binding


async def binding_for_payment(
    session: AsyncSession, card_id: uuid.UUID, value_date: date
) -> tuple[BankBinding | None, BankBinding | None]:
    """(the binding valid at `value_date`, the card's current binding)."""
    rows = (
        await session.exec(
            select(BankBinding)
            .where(BankBinding.card_id == card_id)
            .where(
                col(BankBinding.status).in_(
                    [BindingStatus.active.value, BindingStatus.superseded.value]
                )
            )
        )
    ).all()
    current = next((row for row in rows if row.status == BindingStatus.active.value), None)
    at_date = None
    for row in rows:
        starts = _as_date(row.valid_from)
        ends = _as_date(row.valid_to)
        if starts is not None and starts <= value_date and (ends is None or value_date < ends):
            at_date = row
    return at_date, current


def _as_date(moment: datetime | None) -> date | None:
    if moment is None:
        return None
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).date()


# --- migration plans --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MigrationReport:
    migration: BankMigration
    affected: int
    notified: int
    moved: int
    remaining_cards: list[str]
    """Masked card numbers of the cards not moved yet."""
    moved_to: dict[str, int]


async def start_migration(
    session: AsyncSession, runtime: Runtime, actor: str, code: str, *, ends_on: date
) -> MigrationReport:
    """The bank is `ending` on `ends_on`: every card bound to it is listed and its holder
    told to choose another bank; bindings move as holders choose (`decide`).

    :raises BankNotFound:
    """
    bank = await get_bank(session, code, lock=True)
    bank.status = BankStatus.ending.value
    bank.agreement_end = ends_on
    bank.updated_at = datetime.now(UTC)
    session.add(bank)
    migration = BankMigration(bank_code=code, ends_on=ends_on, created_by=actor)
    session.add(migration)
    await session.flush()
    bindings = (
        await session.exec(
            select(BankBinding)
            .where(BankBinding.bank_code == code)
            .where(BankBinding.status == BindingStatus.active.value)
        )
    ).all()
    now = datetime.now(UTC)
    for binding in bindings:
        session.add(
            BankMigrationItem(
                migration_id=migration.id,
                card_id=binding.card_id,
                binding_id=binding.id,
                notified_at=now,
            )
        )
        await record(
            runtime.store,
            "bank.ending_notice",
            actor,
            str(binding.card_id),
            {
                "card": str(binding.card_id),
                "bank_code": code,
                "plan": str(migration.id),
                "ends_on": ends_on.isoformat(),
            },
        )
    await session.flush()
    await record(
        runtime.store,
        "bank.migration_started",
        actor,
        code,
        {"plan": str(migration.id), "cards": len(bindings), "ends_on": ends_on.isoformat()},
    )
    return await migration_report(session, code, migration.id)


async def migration_report(
    session: AsyncSession, code: str, migration_id: uuid.UUID
) -> MigrationReport:
    """:raises MigrationNotFound:"""
    migration = await session.get(BankMigration, migration_id)
    if migration is None or migration.bank_code != code:
        raise MigrationNotFound("no such migration plan of this bank")
    rows = (
        await session.exec(
            select(BankMigrationItem, Card.card_number)
            .join(Card, col(Card.id) == col(BankMigrationItem.card_id))
            .where(BankMigrationItem.migration_id == migration.id)
        )
    ).all()
    moved_to: dict[str, int] = {}
    remaining = []
    for item, number in rows:
        if item.moved_to_bank is None:
            remaining.append(mask_card_number(number))
        else:
            moved_to[item.moved_to_bank] = moved_to.get(item.moved_to_bank, 0) + 1
    return MigrationReport(
        migration,
        affected=len(rows),
        notified=sum(1 for item, _ in rows if item.notified_at is not None),
        moved=sum(moved_to.values()),
        remaining_cards=sorted(remaining),
        moved_to=moved_to,
    )
