"""E-card activation, holder login, PIN change, device unbinding and the holder's own card.

Activation, login and PIN change run their own transaction (`runtime.database.session()`)
instead of the request's: a wrong PIN must be counted, and a lockout written, even though the
request answers with an error, and an error raised inside a request session rolls it back.
So these functions commit the bookkeeping first and raise afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.documents import validate_document
from app.cards.models import Card, CardStatus, Device, DeviceStatus, Person, utcnow
from app.cards.service import (
    COOPERATING_BANKS,
    NAME_FIELD,
    document_index,
    find_card_by_document,
    find_card_by_number,
)
from app.errors import DomainError, Unauthorized
from app.holders.devices import (
    active_device,
    bind_device,
    normalise_device_key,
    revoke_device_sessions,
)
from app.holders.errors import (
    DeviceNotActivated,
    DeviceNotFound,
    DeviceUnbound,
    InvalidCredentials,
    PinLocked,
)
from app.holders.sessions import HolderSession, as_utc, open_session, rotate
from app.runtime import Runtime
from app.security.errors import WeakPinError
from app.security.opaque import constant_time_equals
from app.security.pii import mask_name
from app.security.pins import validate_pin_format
from app.security.principals import HolderPrincipal


@dataclass(frozen=True, slots=True)
class Activation:
    """Proof of holding the card (both numbers) plus the phone being activated."""

    card_number: str
    document_number: str
    device_id: str
    pin: str
    device_public_key: str | None = None


@dataclass(frozen=True, slots=True)
class Login:
    """Card number, or document type and number, with the PIN, on an activated phone."""

    pin: str
    device_id: str
    card_number: str | None = None
    document_type: str | None = None
    document_number: str | None = None


@dataclass(frozen=True, slots=True)
class HolderCard:
    """The holder's own card as the app shows it; no full number, no full name."""

    card_id: uuid.UUID
    masked_card_number: str
    status: CardStatus
    region_code: str
    bank_code: str
    bank_name: str
    masked_name: str


def mask_card_number(number: str) -> str:
    """Keeps the first 2 (issuing province) and the last 4 characters: 36******0754."""
    if len(number) <= 6:
        return "*" * len(number)
    return number[:2] + "*" * (len(number) - 6) + number[-4:]


def _settled(outcome: HolderSession | DomainError) -> HolderSession:
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


async def activate(runtime: Runtime, activation: Activation) -> HolderSession:
    """Activates the e-card on a phone and opens a session.

    The first activation sets the PIN; a later one (a new phone) must present it.

    :raises InvalidCredentials: unknown card, wrong document number or wrong PIN (401).
    :raises PinLocked: too many wrong attempts (423).
    :raises WeakPinError: a first PIN that breaks the PIN rules (422).
    :raises InvalidDeviceKey: a device public key that is not a P-256 SPKI (422).
    """
    public_key = normalise_device_key(activation.device_public_key)
    async with runtime.database.session() as session:
        outcome = await _activate(session, runtime, activation, public_key)
    return _settled(outcome)


async def _activate(
    session: AsyncSession, runtime: Runtime, activation: Activation, public_key: str | None
) -> HolderSession | DomainError:
    card = await find_card_by_number(session, activation.card_number)
    if card is None:
        return await _no_such_card(runtime, activation.pin, "activate")
    person = await session.get(Person, card.person_id)
    assert person is not None, "cards reference their person"
    knows_document = _matches_document(runtime, person, activation.document_number)
    first_activation = card.pin_hash is None
    refusal = await _check_pin(
        session,
        runtime,
        card,
        activation.pin,
        "activate",
        also_required=knows_document,
        first_pin_allowed=True,
    )
    if refusal is not None:
        return refusal
    if first_activation:
        card.pin_hash = await asyncio.to_thread(runtime.pins.hash, activation.pin)
        session.add(card)
    device = await bind_device(session, card.id, activation.device_id, public_key)
    opened = await open_session(session, runtime, card, device)
    await record(
        runtime.store,
        "ecard.activated",
        f"holder:{card.id}",
        str(card.id),
        {"device": str(device.id), "first": first_activation, "device_key": public_key is not None},
    )
    return opened


def _matches_document(runtime: Runtime, person: Person, number: str) -> bool:
    try:
        document = validate_document(person.document_type, number)
    except DomainError:
        return False
    expected = document_index(runtime.pii, document.doc_type, document.number)
    return constant_time_equals(expected, person.document_index)


async def login(runtime: Runtime, credentials: Login) -> HolderSession:
    """Opens a session on a phone the e-card is activated on.

    :raises InvalidCredentials: unknown card or document, or wrong PIN (401).
    :raises PinLocked: too many wrong attempts (423).
    :raises DeviceNotActivated: right credentials on a phone without the e-card (403).
    """
    async with runtime.database.session() as session:
        outcome = await _login(session, runtime, credentials)
    return _settled(outcome)


async def _login(
    session: AsyncSession, runtime: Runtime, credentials: Login
) -> HolderSession | DomainError:
    if credentials.card_number is not None:
        card = await find_card_by_number(session, credentials.card_number)
    else:
        card = await find_card_by_document(
            session,
            runtime.pii,
            credentials.document_type or "",
            credentials.document_number or "",
        )
    if card is None:
        return await _no_such_card(runtime, credentials.pin, "login")
    refusal = await _check_pin(session, runtime, card, credentials.pin, "login")
    if refusal is not None:
        return refusal
    device = await active_device(session, card.id, credentials.device_id)
    if device is None:
        return DeviceNotActivated("the e-card is not activated on this device; activate it first")
    return await open_session(session, runtime, card, device)


async def refresh(runtime: Runtime, raw_token: str) -> HolderSession:
    """Rotates a refresh token (see `app.holders.sessions`).

    :raises InvalidRefreshToken: unknown, expired or revoked token (401).
    :raises RefreshTokenReused: a spent token; its family is now revoked (401).
    """
    async with runtime.database.session() as session:
        outcome = await rotate(session, runtime, raw_token)
    return _settled(outcome)


async def change_pin(runtime: Runtime, holder: HolderPrincipal, old_pin: str, new_pin: str) -> None:
    """Replaces the PIN; the old one must be presented and counts toward the lockout.

    :raises InvalidCredentials, PinLocked: as for login.
    :raises WeakPinError: the new PIN breaks the rules or equals the old one (422).
    """
    async with runtime.database.session() as session:
        refusal = await _change_pin(session, runtime, holder, old_pin, new_pin)
    if refusal is not None:
        raise refusal


async def _change_pin(
    session: AsyncSession, runtime: Runtime, holder: HolderPrincipal, old_pin: str, new_pin: str
) -> DomainError | None:
    validate_pin_format(new_pin)
    card, _ = await holder_card_and_device(session, holder)
    refusal = await _check_pin(session, runtime, card, old_pin, "change_pin")
    if refusal is not None:
        return refusal
    if new_pin == old_pin:
        raise WeakPinError("The new PIN must differ from the current PIN.", rule="unchanged")
    card.pin_hash = await asyncio.to_thread(runtime.pins.hash, new_pin)
    session.add(card)
    await session.flush()
    await record(
        runtime.store,
        "holder.pin_changed",
        f"holder:{card.id}",
        str(card.id),
        {"device": str(holder.device_pk)},
    )
    return None


async def _no_such_card(runtime: Runtime, pin: str, attempt: str) -> InvalidCredentials:
    """Spends the time of a real PIN check so "no such card" is not faster than "wrong PIN"."""
    await asyncio.to_thread(runtime.pins.verify_dummy, pin)
    await record(
        runtime.store,
        "holder.login_failed",
        "anonymous",
        "",
        {"attempt": attempt, "reason": "unknown_card"},
    )
    return InvalidCredentials()


async def _check_pin(
    session: AsyncSession,
    runtime: Runtime,
    card: Card,
    pin: str,
    attempt: str,
    *,
    also_required: bool = True,
    first_pin_allowed: bool = False,
) -> DomainError | None:
    """None when the PIN is right and `also_required` holds (the document number matched).

    A card without PIN passes only where the first PIN is being set (`first_pin_allowed`).

    A wrong attempt is counted with one atomic UPDATE, so concurrent guesses are all counted;
    reaching `pin_max_failures` locks the PIN for `pin_lockout_seconds`.
    """
    now = utcnow()
    actor = f"holder:{card.id}"
    if card.pin_locked_until is not None and as_utc(card.pin_locked_until) > now:
        unlocks_at = as_utc(card.pin_locked_until)
        await record(
            runtime.store,
            "holder.login_failed",
            actor,
            str(card.id),
            {"attempt": attempt, "reason": "locked"},
        )
        return PinLocked(unlocks_at)
    if card.pin_hash is None:
        # Nothing to compare yet; spend the time of a real check all the same.
        await asyncio.to_thread(runtime.pins.verify_dummy, pin)
        pin_ok = first_pin_allowed
    else:
        pin_ok = await asyncio.to_thread(runtime.pins.verify, card.pin_hash, pin)
    if pin_ok and also_required:
        if card.pin_failures or card.pin_locked_until is not None:
            card.pin_failures = 0
            card.pin_locked_until = None
            session.add(card)
        if card.pin_hash is not None and runtime.pins.needs_rehash(card.pin_hash):
            card.pin_hash = await asyncio.to_thread(runtime.pins.hash, pin)
            session.add(card)
        return None
    return await _count_failure(session, runtime, card, attempt, now)


async def _count_failure(
    session: AsyncSession, runtime: Runtime, card: Card, attempt: str, now: datetime
) -> DomainError:
    settings = runtime.settings
    actor = f"holder:{card.id}"
    counted = await session.exec(
        update(Card)
        .where(col(Card.id) == card.id)
        .values(pin_failures=col(Card.pin_failures) + 1)
        .returning(col(Card.pin_failures))
        .execution_options(synchronize_session=False)
    )
    failures = int(counted.scalar_one())
    if failures < settings.pin_max_failures:
        await record(
            runtime.store,
            "holder.login_failed",
            actor,
            str(card.id),
            {"attempt": attempt, "reason": "wrong_credentials", "failures": failures},
        )
        return InvalidCredentials()
    unlocks_at = now + timedelta(seconds=settings.pin_lockout_seconds)
    await session.exec(
        update(Card)
        .where(col(Card.id) == card.id)
        .values(pin_failures=0, pin_locked_until=unlocks_at)
        .execution_options(synchronize_session=False)
    )
    await record(
        runtime.store,
        "holder.pin_locked",
        actor,
        str(card.id),
        {"attempt": attempt, "failures": failures, "unlocks_at": unlocks_at.isoformat()},
    )
    return PinLocked(unlocks_at)


async def holder_card_and_device(
    session: AsyncSession, holder: HolderPrincipal
) -> tuple[Card, Device]:
    """The card and device of a holder session; the device must still be bound.

    :raises Unauthorized: the card of the token no longer exists.
    :raises DeviceUnbound: the session's device was unbound (403).
    """
    card = await session.get(Card, holder.card_id)
    device = await session.get(Device, holder.device_pk)
    if card is None or device is None or device.card_id != card.id:
        raise Unauthorized("this session no longer matches a card; log in again")
    if device.status != DeviceStatus.active:
        raise DeviceUnbound("this device was unbound from the card; activate it again")
    return card, device


async def unbind_device(
    session: AsyncSession, runtime: Runtime, holder: HolderPrincipal, device_id: str
) -> None:
    """Unbinds one of the holder's phones and revokes its refresh tokens.

    :raises DeviceNotFound: no bound device with that id on this card (404).
    """
    card, _ = await holder_card_and_device(session, holder)
    device = await active_device(session, card.id, device_id)
    if device is None:
        raise DeviceNotFound("no bound device with this id on your card")
    device.status = DeviceStatus.unbound
    device.unbound_at = utcnow()
    session.add(device)
    await session.flush()
    await revoke_device_sessions(session, device.id)
    await record(
        runtime.store,
        "holder.device_unbound",
        f"holder:{card.id}",
        str(card.id),
        {"device": str(device.id), "by_device": str(holder.device_pk)},
    )


async def holder_card(
    session: AsyncSession, runtime: Runtime, holder: HolderPrincipal
) -> HolderCard:
    """The holder's own card, masked as it is shown on the phone."""
    card, _ = await holder_card_and_device(session, holder)
    person = await session.get(Person, card.person_id)
    assert person is not None, "cards reference their person"
    return HolderCard(
        card_id=card.id,
        masked_card_number=mask_card_number(card.card_number),
        status=CardStatus(card.status),
        region_code=card.region_code,
        bank_code=card.bank_code,
        bank_name=COOPERATING_BANKS.get(card.bank_code, card.bank_code),
        masked_name=mask_name(runtime.pii.open(NAME_FIELD, person.name_sealed)),
    )


async def check_holder_pin(
    session: AsyncSession, runtime: Runtime, card: Card, pin: str, attempt: str
) -> DomainError | None:
    """The PIN check with lockout, for other domains that ask the holder for the PIN (the card
    lifecycle). None when right; otherwise the error to raise once the session has committed
    the failure count."""
    return await _check_pin(session, runtime, card, pin, attempt)


def holder_document_matches(runtime: Runtime, person: Person, document_number: str) -> bool:
    """True when `document_number` is the person's own (an operator's identity check)."""
    return _matches_document(runtime, person, document_number)
