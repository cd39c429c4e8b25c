"""PIN reset: the way out of a forgotten or locked PIN other than waiting.

Two ways, both ending with a new PIN set at once (no moment in which the card has no PIN):

- **At the counter** (`operator_reset_pin`): an operator checks the holder's identity document
  face to face; the document type and number typed in must be the card's person's (compared
  through the blind index, never decrypted). The holder types the new PIN on the counter's PIN
  pad, which sends it in the same request; only its argon2 hash is kept and it is never audited
  or logged. Refused checks are audited too, with the operator as actor.
  The alternative, clearing the PIN so the holder sets a new one on the next activation, was
  rejected: until then anyone who knows the card number and the document number (printed on
  the card and on the ID card, not secrets) could set the PIN from any phone.
- **On one of the holder's own phones** (`holder_reset_pin`): card number, document number,
  the `device_id` of a phone the e-card is activated on, and the new PIN. It is not a way
  around the lockout: each attempt is reserved at a gate of its own (`pin_attempts.reset_gate`,
  `pin_max_failures` tries per `pin_lockout_seconds`, so a locked PIN can still be reset), a
  wrong document number also counts as a failed PIN attempt of the holder's phones (the
  `bound` gate and `cards.pin_failures`), and the route shares the login rate limits. From any
  other phone, or for an unknown card, the attempt is counted at the card number's `unbound`
  gate like a login from a stranger's phone and refused alike, whatever the document: the
  answers never tell which cards exist or which phones are bound. Only an active card's
  PIN is reset this way: a card reported lost may have been lost with the phone and the ID
  card, and a new PIN would let the finder cancel the loss; the counter resets it.

Both clear the lock of every gate of the card and its database mirror.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.documents import validate_document
from app.cards.errors import HolderNotVerified
from app.cards.lifecycle_service import find_operator_card
from app.cards.models import Card, CardStatus, Person
from app.cards.numbers import normalise_card_number
from app.cards.service import document_index
from app.errors import DomainError
from app.holders import pin_attempts
from app.holders.errors import InvalidCredentials, PinLocked, card_not_active
from app.holders.pin_attempts import bound_gate, reset_gate, unbound_gate
from app.holders.service import (
    _Attempt,
    _count_bound_failure,
    _count_unbound_failure,
    _find_card,
    _lock,
    _locked,
    _matches_document,
)
from app.runtime import Runtime
from app.security.opaque import constant_time_equals
from app.security.pins import validate_pin_format
from app.security.principals import AdminPrincipal

PIN_RESET = "holder.pin_reset"
PIN_RESET_REFUSED = "holder.pin_reset_refused"


@dataclass(frozen=True, slots=True)
class OperatorPinReset:
    """A counter operator's reset, after checking the holder's identity document."""

    card_number: str
    document_type: str
    document_number: str
    new_pin: str
    reason: str


@dataclass(frozen=True, slots=True)
class HolderPinReset:
    """The holder's own reset on a phone the e-card is activated on."""

    card_number: str
    document_number: str
    device_id: str
    new_pin: str


def _same_document(runtime: Runtime, person: Person, document_type: str, number: str) -> bool:
    """True when type and number are the person's: the blind index covers both."""
    try:
        document = validate_document(document_type, number)
    except DomainError:
        return False
    presented = document_index(runtime.pii, document.doc_type, document.number)
    return constant_time_equals(presented, person.document_index)


async def _set_pin(session: AsyncSession, runtime: Runtime, card: Card, pin: str) -> None:
    card.pin_hash = await asyncio.to_thread(runtime.pins.hash, pin)
    card.pin_failures = 0
    card.pin_locked_until = None
    session.add(card)
    await session.flush()


async def _release_gates(runtime: Runtime, card_id: uuid.UUID, card_number: str) -> None:
    """After the commit: every gate of the card starts again (its own phones, other phones,
    resets)."""
    for gate in (
        bound_gate(runtime, card_id),
        unbound_gate(runtime, card_number),
        reset_gate(runtime, card_id),
    ):
        await pin_attempts.release(runtime.store, gate)


async def operator_reset_pin(
    runtime: Runtime, admin: AdminPrincipal, request: OperatorPinReset
) -> None:
    """Sets a new PIN for the holder at the counter and clears every lock.

    :raises WeakPinError: the new PIN breaks the PIN rules (422).
    :raises CardNotFound, CardNumberRetired: no card has this number (any more).
    :raises HolderNotVerified: the document is not the card's holder's (403); audited.
    """
    validate_pin_format(request.new_pin)
    async with runtime.database.session() as session:
        card = await find_operator_card(session, request.card_number)
        await session.refresh(card, with_for_update=True)
        person = await session.get(Person, card.person_id)
        assert person is not None, "cards reference their person"
        audit: dict[str, object] = {"channel": "counter", "reason": request.reason}
        if not _same_document(runtime, person, request.document_type, request.document_number):
            await record(
                runtime.store,
                PIN_RESET_REFUSED,
                admin.client_id,
                str(card.id),
                {**audit, "refused": "document_mismatch"},
            )
            raise HolderNotVerified(
                "give the holder's document type and number; they must match the card's holder",
                field="document_number",
            )
        await _set_pin(session, runtime, card, request.new_pin)
        card_id, card_number = card.id, card.card_number
    await _release_gates(runtime, card_id, card_number)
    await record(
        runtime.store,
        PIN_RESET,
        admin.client_id,
        str(card_id),
        {**audit, "holder_verified_by": "document"},
    )


async def holder_reset_pin(runtime: Runtime, request: HolderPinReset) -> None:
    """Sets a new PIN from one of the holder's own phones, with the document number.

    :raises WeakPinError: the new PIN breaks the PIN rules (422; no attempt is spent).
    :raises InvalidCredentials: unknown card, a phone that is not bound, or a wrong document
        number (401, alike).
    :raises PinLocked: too many failed resets (or, from other phones, attempts) (423).
    :raises CardNotActive: a lost, suspended or cancelled card (409, naming the state): its
        PIN is reset at the counter only.
    """
    validate_pin_format(request.new_pin)
    async with runtime.database.session() as session:
        outcome = await _holder_reset(session, runtime, request)
    if isinstance(outcome, DomainError):
        raise outcome
    card_id, card_number, device = outcome
    await _release_gates(runtime, card_id, card_number)
    await record(
        runtime.store,
        PIN_RESET,
        f"holder:{card_id}",
        str(card_id),
        {"channel": "device", "device": str(device), "holder_verified_by": "document"},
    )


async def _holder_reset(
    session: AsyncSession, runtime: Runtime, request: HolderPinReset
) -> tuple[uuid.UUID, str, uuid.UUID] | DomainError:
    number = normalise_card_number(request.card_number)
    found = await _find_card(session, request.device_id, card_number=number, document=None)
    if found is None or found.device is None:
        # An unknown card, or a phone the e-card is not on: a stranger's attempt, counted like
        # a login from another phone and refused whatever the document.
        identifier = number if found is None else found.card.card_number
        actor = "anonymous" if found is None else f"holder:{found.card.id}"
        subject = "" if found is None else str(found.card.id)
        reason = "unknown_card" if found is None else "device_not_bound"
        return await _refuse_stranger(
            runtime,
            _Attempt("pin_reset", actor, subject, unbound_gate(runtime, identifier)),
            reason,
        )
    card, person, device = found.card, found.person, found.device
    actor, subject = f"holder:{card.id}", str(card.id)
    tried = _Attempt("pin_reset", actor, subject, reset_gate(runtime, card.id))
    reserved = await pin_attempts.reserve(runtime.store, tried.gate)
    if not isinstance(reserved, int):
        return await _locked(runtime, tried, reserved)
    if not _matches_document(runtime, person, request.document_number):
        return await _wrong_document(session, runtime, card, tried, reserved)
    status = CardStatus(card.status)
    if status is not CardStatus.active:
        # A lost card may be lost with the phone and the ID card: a new PIN would let the
        # finder cancel the loss. Its PIN is reset at the counter.
        await record(runtime.store, PIN_RESET_REFUSED, actor, subject, {"refused": status.value})
        return card_not_active(status)
    await _set_pin(session, runtime, card, request.new_pin)
    return card.id, card.card_number, device.id


async def _refuse_stranger(
    runtime: Runtime, tried: _Attempt, reason: str
) -> InvalidCredentials | PinLocked:
    reserved = await pin_attempts.reserve(runtime.store, tried.gate)
    if not isinstance(reserved, int):
        return await _locked(runtime, tried, reserved)
    return await _count_unbound_failure(runtime, tried, reserved, reason)


async def _wrong_document(
    session: AsyncSession, runtime: Runtime, card: Card, tried: _Attempt, tries: int
) -> InvalidCredentials | PinLocked:
    """A wrong document number from the holder's phone: one failed PIN attempt of the holder's
    phones (it may lock the PIN) and one failed reset (the last allowed locks resets)."""
    bound = bound_gate(runtime, card.id)
    await pin_attempts.reserve(runtime.store, bound)
    await _count_bound_failure(
        session, runtime, card, _Attempt(tried.attempt, tried.actor, tried.subject, bound)
    )
    return await _count_reset_failure(runtime, tried, tries)


async def _count_reset_failure(
    runtime: Runtime, tried: _Attempt, tries: int
) -> InvalidCredentials | PinLocked:
    """The failed reset that reaches the gate's limit locks resets for `pin_lockout_seconds`."""
    if tries < tried.gate.limit:
        return InvalidCredentials()
    return await _lock(runtime, tried, tries)
