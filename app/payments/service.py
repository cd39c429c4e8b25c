"""Disbursements (JX12, GD8, SC11): paying departments pay benefits to the card.

- Idempotent by (paying department, payment id): the same payment sent again is the same
  payment (`duplicate`); the id with other content is refused (`payment-id-reused`).
- Routed to the bank binding valid at the value date. If that binding was replaced since
  (the holder changed bank), the payment goes to the current account and the holder is told
  once (`payment.rerouted`, deduplicated per payment in the inbox).
- The events (`payment.credited`, `payment.rerouted`) are appended to the audit stream after
  the commit, so a failed commit announces nothing; the holder's notifications are stored in
  the payment's transaction (`record_event_notifications`), so a crash before the append
  loses the event (docs/circle.md) but not the notice.
- A bulk submission stores every good line and reports every bad one; a bad line stores
  nothing, and the good lines are committed together before the answer.
- Concurrent submissions of one payment id race on the unique constraint: the loser rolls
  back and reads again, so it answers what a sequential duplicate answers (`duplicate`, or
  `payment-id-reused` for other content), never a 500.
- Reconciliation matches a bank's statement of credits against the ledger of that bank for a
  period and lists the mismatches.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import tuple_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import append_event, audit_fields, record
from app.banks.service import binding_for_payment, get_bank, mask_account
from app.cards.lifecycle_service import normal_card_number
from app.cards.models import Card, CardStatus
from app.clients.models import ClientKind
from app.clients.service import IssuedClient, new_client
from app.errors import DomainError
from app.holders.service import holder_card_and_device
from app.notifications.service import record_event_notifications
from app.payments.errors import NoBankAccount, PayeeNotFound, PaymentIdReused
from app.payments.models import Disbursement, PaymentKind
from app.runtime import Runtime
from app.security.principals import ClientPrincipal, HolderPrincipal, Scope


async def register_payer(
    session: AsyncSession, runtime: Runtime, actor: str, name: str
) -> IssuedClient:
    """A paying department's API client (scope `disburse`)."""
    issued = new_client(ClientKind.payer, name, runtime.secret_hash_key, [Scope.disburse.value])
    session.add(issued.client)
    await session.flush()
    await record(runtime.store, "payer.register", actor, issued.client.client_id, {"name": name})
    return issued


@dataclass(frozen=True, slots=True)
class PaymentOrder:
    payment_id: str
    card_number: str
    kind: PaymentKind
    amount_fen: int
    value_date: date
    memo: str | None = None


@dataclass(slots=True)
class LineResult:
    """`created`, `duplicate` (the same payment again) or `error` (nothing stored)."""

    line: int
    outcome: str
    payment_id: str | None = None
    disbursement: Disbursement | None = None
    error: DomainError | None = None


@dataclass(slots=True)
class _Batch:
    results: list[LineResult] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _same(row: Disbursement, card_id: uuid.UUID, order: PaymentOrder) -> bool:
    return (
        row.card_id == card_id
        and row.kind == order.kind.value
        and row.amount_fen == order.amount_fen
        and row.value_date == order.value_date
    )


_UNIQUE_PAYMENT = ("uq_disbursements_payment", "disbursements.payment_id")
"""How PostgreSQL (constraint name) and SQLite (columns) name the payment id's uniqueness."""
_RACE_ATTEMPTS = 3


def _payment_id_taken(error: IntegrityError) -> bool:
    text = str(error.orig)
    return any(name in text for name in _UNIQUE_PAYMENT)


async def disburse(
    session: AsyncSession,
    runtime: Runtime,
    payer: ClientPrincipal,
    orders: Sequence[tuple[int, PaymentOrder | DomainError]],
) -> list[LineResult]:
    """Stores the good orders (one transaction, committed here) and reports every line.

    A payment id stored meanwhile by a concurrent submission (the unique constraint refuses
    ours) rolls the batch back and reads again: its lines then answer as duplicates (or
    `payment-id-reused`), as they would have in sequence.

    :param orders: (line number, the order or the error that line's parsing met).
    """
    for attempt in range(1, _RACE_ATTEMPTS + 1):
        try:
            return await _disburse_once(session, runtime, payer, orders)
        except IntegrityError as error:
            if attempt == _RACE_ATTEMPTS or not _payment_id_taken(error):
                raise
            await session.rollback()
    raise AssertionError("unreachable")


async def _disburse_once(
    session: AsyncSession,
    runtime: Runtime,
    payer: ClientPrincipal,
    orders: Sequence[tuple[int, PaymentOrder | DomainError]],
) -> list[LineResult]:
    batch = _Batch()
    ids = {order.payment_id for _, order in orders if isinstance(order, PaymentOrder)}
    known: dict[str, Disbursement] = {}
    if ids:
        rows = await session.exec(
            select(Disbursement)
            .where(Disbursement.payer_id == payer.client_id)
            .where(col(Disbursement.payment_id).in_(ids))
        )
        known = {row.payment_id: row for row in rows.all()}
    numbers = {
        normal_card_number(order.card_number)
        for _, order in orders
        if isinstance(order, PaymentOrder)
    }
    cards: dict[str, Card] = {}
    if numbers:
        found = await session.exec(select(Card).where(col(Card.card_number).in_(numbers)))
        cards = {card.card_number: card for card in found.all()}
    for line, order in orders:
        if isinstance(order, DomainError):
            batch.results.append(LineResult(line, "error", error=order))
            continue
        try:
            batch.results.append(
                await _one(session, payer, line, order, cards=cards, known=known, batch=batch)
            )
        except DomainError as error:
            batch.results.append(LineResult(line, "error", order.payment_id, error=error))
    # The events are appended after the commit (a failed commit announces nothing), so
    # their notifications are stored before it, in this transaction: a crash between the
    # commit and the appends loses the events (docs/circle.md), never the holder's notice.
    events = [
        audit_fields(action, payer.client_id, data["card"], data) for action, data in batch.events
    ]
    notified = await record_event_notifications(session, runtime, events)
    await session.commit()
    if notified:
        runtime.notification_senders.wake()
    for fields in events:
        await append_event(runtime.store, fields)
    return batch.results


async def _one(
    session: AsyncSession,
    payer: ClientPrincipal,
    line: int,
    order: PaymentOrder,
    *,
    cards: dict[str, Card],
    known: dict[str, Disbursement],
    batch: _Batch,
) -> LineResult:
    card = cards.get(normal_card_number(order.card_number))
    if card is None or card.status == CardStatus.cancelled.value:
        raise PayeeNotFound("no card in force has this number", field="card_number")
    existing = known.get(order.payment_id)
    if existing is not None:
        if _same(existing, card.id, order):
            return LineResult(line, "duplicate", order.payment_id, existing)
        raise PaymentIdReused(
            "this payment id was used for another payment", payment_id=order.payment_id
        )
    at_date, current = await binding_for_payment(session, card.id, order.value_date)
    if current is None:
        raise NoBankAccount("the card has no confirmed bank account; pay it later or by hand")
    rerouted = at_date is not None and at_date.id != current.id
    row = Disbursement(
        payer_id=payer.client_id,
        payment_id=order.payment_id,
        card_id=card.id,
        kind=order.kind.value,
        amount_fen=order.amount_fen,
        value_date=order.value_date,
        binding_id=current.id,
        bank_code=current.bank_code,
        account_masked=current.account_masked,
        rerouted=rerouted,
        memo=order.memo,
    )
    session.add(row)
    await session.flush()
    known[order.payment_id] = row
    data: dict[str, Any] = {
        "card": str(card.id),
        "payer": payer.client_id,
        "payment_id": order.payment_id,
        "kind": order.kind.value,
        "amount": f"{order.amount_fen // 100}.{order.amount_fen % 100:02d}",
        "value_date": order.value_date.isoformat(),
        "bank_code": current.bank_code,
        "account": current.account_masked,
    }
    batch.events.append(("payment.credited", data))
    if rerouted:
        assert at_date is not None
        batch.events.append(("payment.rerouted", {**data, "previous_bank": at_date.bank_code}))
    return LineResult(line, "created", order.payment_id, row)


async def ledger(
    session: AsyncSession, holder: HolderPrincipal, limit: int
) -> Sequence[Disbursement]:
    card, _ = await holder_card_and_device(session, holder)
    statement = (
        select(Disbursement)
        .where(Disbursement.card_id == card.id)
        .order_by(col(Disbursement.value_date).desc(), col(Disbursement.created_at).desc())
        .limit(limit)
    )
    return (await session.exec(statement)).all()


# --- reconciliation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementCredit:
    payer_id: str
    payment_id: str
    account_number: str
    amount_fen: int
    value_date: date


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: str
    """`missing_credit` (in the ledger, not credited), `unknown_credit` (credited, not in the
    ledger), `amount_differs`, `account_differs`, `date_differs`, `duplicate_credit`."""
    payer_id: str
    payment_id: str
    ledger_amount_fen: int | None = None
    statement_amount_fen: int | None = None


@dataclass(frozen=True, slots=True)
class Reconciliation:
    bank_code: str
    period_from: date
    period_to: date
    ledger_entries: int
    statement_credits: int
    matched: int
    mismatches: list[Mismatch]


async def reconcile(
    session: AsyncSession,
    runtime: Runtime,
    actor: str,
    bank_code: str,
    *,
    period_from: date,
    period_to: date,
    credits: Sequence[StatementCredit],
) -> Reconciliation:
    """The bank's statement of credits for value dates in [period_from, period_to] against our
    ledger of payments to that bank; every difference is listed.

    :raises BankNotFound:
    """
    await get_bank(session, bank_code)
    rows = (
        await session.exec(
            select(Disbursement)
            .where(Disbursement.bank_code == bank_code)
            .where(col(Disbursement.value_date) >= period_from)
            .where(col(Disbursement.value_date) <= period_to)
        )
    ).all()
    outside = {
        (c.payer_id, c.payment_id) for c in credits if not period_from <= c.value_date <= period_to
    }
    if outside:
        # credited in this statement but dated outside its period: look them up all the same
        extra = await session.exec(
            select(Disbursement).where(
                tuple_(col(Disbursement.payer_id), col(Disbursement.payment_id)).in_(list(outside))
            )
        )
        rows = [*rows, *(row for row in extra.all() if row not in rows)]
    ours = {(row.payer_id, row.payment_id): row for row in rows}
    mismatches: list[Mismatch] = []
    seen: set[tuple[str, str]] = set()
    matched = 0
    for credit in credits:
        key = (credit.payer_id, credit.payment_id)
        if key in seen:
            mismatches.append(
                Mismatch("duplicate_credit", *key, statement_amount_fen=credit.amount_fen)
            )
            continue
        seen.add(key)
        row = ours.get(key)
        if row is None or row.bank_code != bank_code:
            mismatches.append(
                Mismatch("unknown_credit", *key, statement_amount_fen=credit.amount_fen)
            )
            continue
        problems = []
        if row.amount_fen != credit.amount_fen:
            problems.append("amount_differs")
        if row.account_masked != mask_account(credit.account_number):
            problems.append("account_differs")
        if row.value_date != credit.value_date:
            problems.append("date_differs")
        for kind in problems:
            mismatches.append(
                Mismatch(kind, *key, row.amount_fen, statement_amount_fen=credit.amount_fen)
            )
        matched += not problems
    for key, row in ours.items():
        if key not in seen and period_from <= row.value_date <= period_to:
            mismatches.append(Mismatch("missing_credit", *key, ledger_amount_fen=row.amount_fen))
    await record(
        runtime.store,
        "bank.reconciled",
        actor,
        bank_code,
        {
            "from": period_from.isoformat(),
            "to": period_to.isoformat(),
            "matched": matched,
            "mismatches": len(mismatches),
        },
    )
    return Reconciliation(
        bank_code, period_from, period_to, len(rows), len(credits), matched, mismatches
    )
