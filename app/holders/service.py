"""E-card activation, holder login, PIN change, device unbinding and the holder's own card.

Activation, login and PIN change run their own transaction (`runtime.database.session()`)
instead of the request's: a wrong PIN must be counted, and a lockout written, even though the
request answers with an error, and an error raised inside a request session rolls it back.
So these functions commit the bookkeeping first and raise afterwards.

Every PIN check is first reserved at a gate in the store (`app.holders.pin_attempts`): the
holder's own phones and every other phone are counted apart, and an unknown card number is
counted and locked exactly like a real one, so the answers do not tell which cards exist.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.audit.models import AuditEvent
from app.cards.documents import validate_document
from app.cards.models import Card, CardStatus, Device, DeviceStatus, Person, utcnow
from app.cards.numbers import normalise_card_number
from app.cards.service import (
    COOPERATING_BANKS,
    DUPLICATE_FOR_HOLDER,
    NAME_FIELD,
    document_index,
)
from app.errors import DomainError, Unauthorized
from app.holders import pin_attempts
from app.holders.devices import (
    DEVICE_UNBOUND,
    active_device,
    bind_device,
    device_state_key,
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
from app.holders.pin_attempts import PinChannel, PinGate, bound_gate, unbound_gate
from app.holders.sessions import (
    REVOCATION_MARGIN,
    HolderSession,
    as_utc,
    open_session,
    rotate,
)
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


@dataclass(frozen=True, slots=True)
class _Found:
    """A card named by a holder, its person, and the presenting phone when it is bound."""

    card: Card
    person: Person
    device: Device | None


async def _find_card(
    session: AsyncSession, device_id: str, *, card_number: str | None, document: str | None
) -> _Found | None:
    """One query, whether or not the card exists (the same work for real and unknown cards)."""
    bound_device = and_(
        col(Device.card_id) == col(Card.id),
        col(Device.device_id) == device_id,
        col(Device.status) == DeviceStatus.active,
    )
    statement = (
        select(Card, Person, Device)
        .join(Person, col(Person.id) == col(Card.person_id))
        .outerjoin(Device, bound_device)
    )
    if card_number is not None:
        statement = statement.where(col(Card.card_number) == card_number)
    else:
        statement = statement.where(col(Person.document_index) == (document or ""))
    row = (await session.exec(statement)).first()
    if row is None:
        return None
    card, person, device = row
    return _Found(card, person, device)


def _gate(runtime: Runtime, found: _Found | None, identifier: str) -> PinGate:
    """The holder's own gate for a bound phone; otherwise the card number's (or, without a
    card, the presented identifier's) gate for other phones."""
    if found is None:
        return unbound_gate(runtime, identifier)
    if found.device is not None:
        return bound_gate(runtime, found.card.id)
    return unbound_gate(runtime, found.card.card_number)


async def _activate(
    session: AsyncSession, runtime: Runtime, activation: Activation, public_key: str | None
) -> HolderSession | DomainError:
    number = normalise_card_number(activation.card_number)
    found = await _find_card(session, activation.device_id, card_number=number, document=None)
    gate = _gate(runtime, found, number)
    if found is None:
        return await _no_such_card(runtime, activation.pin, "activate", gate)
    card, person = found.card, found.person
    knows_document = _matches_document(runtime, person, activation.document_number)
    first_activation = card.pin_hash is None
    refusal = await _check_pin(
        session,
        runtime,
        card,
        activation.pin,
        "activate",
        gate=gate,
        also_required=knows_document,
        first_pin_allowed=True,
    )
    if refusal is not None:
        return refusal
    if first_activation:
        card.pin_hash = await asyncio.to_thread(runtime.pins.hash, activation.pin)
        session.add(card)
    device = await bind_device(session, card.id, activation.device_id, public_key)
    await runtime.store.delete(device_state_key(device.id))  # bound again: drop `unbound`
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
        identifier = normalise_card_number(credentials.card_number)
        found = await _find_card(
            session, credentials.device_id, card_number=identifier, document=None
        )
    else:
        identifier, index = _document_identity(
            runtime, credentials.document_type or "", credentials.document_number or ""
        )
        found = await _find_card(session, credentials.device_id, card_number=None, document=index)
    gate = _gate(runtime, found, identifier)
    if found is None:
        return await _no_such_card(runtime, credentials.pin, "login", gate)
    card = found.card
    refusal = await _check_pin(session, runtime, card, credentials.pin, "login", gate=gate)
    if refusal is not None:
        return refusal
    if found.device is None:
        return DeviceNotActivated("the e-card is not activated on this device; activate it first")
    return await open_session(session, runtime, card, found.device)


def _document_identity(runtime: Runtime, document_type: str, number: str) -> tuple[str, str]:
    """The gate identifier and the blind index of a document (an empty index, matching no
    person, for a malformed number)."""
    try:
        document = validate_document(document_type, number)
    except DomainError:
        return f"document:{document_type}:{normalise_card_number(number)}", ""
    index = document_index(runtime.pii, document.doc_type, document.number)
    return f"document:{document.doc_type.value}:{document.number}", index


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
    gate = bound_gate(runtime, card.id)
    refusal = await _check_pin(session, runtime, card, old_pin, "change_pin", gate=gate)
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


async def _no_such_card(
    runtime: Runtime, pin: str, attempt: str, gate: PinGate
) -> InvalidCredentials | PinLocked:
    """A card that does not exist answers like a real one on another phone: counted at its
    gate, locked after the same number of tries, and as slow as a real PIN check."""
    tried = _Attempt(attempt, "anonymous", "", gate)
    reserved = await pin_attempts.reserve(runtime.store, gate)
    if isinstance(reserved, datetime):
        return await _locked(runtime, tried, reserved)
    await asyncio.to_thread(runtime.pins.verify_dummy, pin)
    return await _count_unbound_failure(runtime, tried, reserved, "unknown_card")


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One PIN attempt as audited: what for, by whom, on which card, at which gate."""

    attempt: str
    actor: str
    subject: str
    gate: PinGate

    def audit(self, **details: object) -> dict[str, object]:
        return {"attempt": self.attempt, "channel": self.gate.channel.value, **details}


async def _check_pin(
    session: AsyncSession,
    runtime: Runtime,
    card: Card,
    pin: str,
    attempt: str,
    *,
    gate: PinGate,
    also_required: bool = True,
    first_pin_allowed: bool = False,
) -> DomainError | None:
    """None when the PIN is right and `also_required` holds (the document number matched).

    A card without PIN passes only where the first PIN is being set (`first_pin_allowed`).

    The attempt is reserved at `gate` before anything is checked, so of any number of
    concurrent guesses at most the gate's limit reach argon2. A right PIN releases the gate;
    the wrong one that reaches the limit locks it for `pin_lockout_seconds`. On the holder's
    own (bound) gate the count and the lock are also written to the card row, which keeps the
    lock when the store loses its data.
    """
    tried = _Attempt(attempt, f"holder:{card.id}", str(card.id), gate)
    reserved = await pin_attempts.reserve(runtime.store, gate)
    if isinstance(reserved, datetime):
        return await _locked(runtime, tried, reserved)
    bound = gate.channel is PinChannel.bound
    now = utcnow()
    if bound and card.pin_locked_until is not None and as_utc(card.pin_locked_until) > now:
        return await _locked(runtime, tried, as_utc(card.pin_locked_until))
    if card.pin_hash is None:
        # Nothing to compare yet; spend the time of a real check all the same.
        await asyncio.to_thread(runtime.pins.verify_dummy, pin)
        pin_ok = first_pin_allowed
    else:
        pin_ok = await asyncio.to_thread(runtime.pins.verify, card.pin_hash, pin)
    if pin_ok and also_required:
        await pin_attempts.release(runtime.store, gate)
        if bound and (card.pin_failures or card.pin_locked_until is not None):
            card.pin_failures = 0
            card.pin_locked_until = None
            session.add(card)
        if card.pin_hash is not None and runtime.pins.needs_rehash(card.pin_hash):
            card.pin_hash = await asyncio.to_thread(runtime.pins.hash, pin)
            session.add(card)
        return None
    if bound:
        return await _count_bound_failure(session, runtime, card, tried)
    return await _count_unbound_failure(runtime, tried, reserved, "wrong_credentials")


async def _locked(runtime: Runtime, tried: _Attempt, until: datetime) -> PinLocked:
    await record(
        runtime.store,
        "holder.login_failed",
        tried.actor,
        tried.subject,
        tried.audit(reason="locked"),
    )
    return PinLocked(until)


async def _lock(runtime: Runtime, tried: _Attempt, failures: int) -> PinLocked:
    unlocks_at = utcnow() + timedelta(seconds=tried.gate.lockout_seconds)
    await pin_attempts.lock(runtime.store, tried.gate, unlocks_at)
    await record(
        runtime.store,
        "holder.pin_locked",
        tried.actor,
        tried.subject,
        tried.audit(failures=failures, unlocks_at=unlocks_at.isoformat()),
    )
    return PinLocked(unlocks_at)


async def _count_unbound_failure(
    runtime: Runtime, tried: _Attempt, tries: int, reason: str
) -> InvalidCredentials | PinLocked:
    """A wrong attempt from another phone (or at an unknown card): the gate's reservation is
    the count; the one that reaches the limit locks the gate."""
    if tries < tried.gate.limit:
        await record(
            runtime.store,
            "holder.login_failed",
            tried.actor,
            tried.subject,
            tried.audit(reason=reason, failures=tries),
        )
        return InvalidCredentials()
    return await _lock(runtime, tried, tries)


async def _count_bound_failure(
    session: AsyncSession, runtime: Runtime, card: Card, tried: _Attempt
) -> DomainError:
    """A wrong attempt from one of the holder's phones, counted with one atomic UPDATE of the
    card row; the one that reaches `pin_max_failures` locks the card row and the gate."""
    counted = await session.exec(
        update(Card)
        .where(col(Card.id) == card.id)
        .values(pin_failures=col(Card.pin_failures) + 1)
        .returning(col(Card.pin_failures))
        .execution_options(synchronize_session=False)
    )
    failures = int(counted.scalar_one())
    if failures < tried.gate.limit:
        await record(
            runtime.store,
            "holder.login_failed",
            tried.actor,
            tried.subject,
            tried.audit(reason="wrong_credentials", failures=failures),
        )
        return InvalidCredentials()
    locked = await _lock(runtime, tried, failures)
    await session.exec(
        update(Card)
        .where(col(Card.id) == card.id)
        .values(pin_failures=0, pin_locked_until=locked.unlocks_at)
        .execution_options(synchronize_session=False)
    )
    return locked


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
    # The QR path reads the binding from the store (`app.holders.qr_state`): refused at once,
    # on every worker, for as long as the phone's access tokens live.
    await runtime.store.set(
        device_state_key(device.id),
        DEVICE_UNBOUND,
        runtime.settings.access_token_ttl + REVOCATION_MARGIN,
    )
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
    lifecycle; the holder's own phone, so the bound gate). None when right; otherwise the error
    to raise once the session has committed the failure count."""
    return await _check_pin(session, runtime, card, pin, attempt, gate=bound_gate(runtime, card.id))


HOLDER_NOTICES: dict[str, str] = {
    DUPLICATE_FOR_HOLDER: "Someone applied for a social security card with your identity "
    "document. The application is refused in review; if it was not you, contact the service.",
}
"""Audit actions about a card that its holder is told of, with the text shown to them."""
MAX_NOTICES = 50


@dataclass(frozen=True, slots=True)
class HolderNotice:
    kind: str
    message: str
    at: datetime


async def holder_notices(session: AsyncSession, holder: HolderPrincipal) -> list[HolderNotice]:
    """What happened to the holder's card that the holder should know (newest first), read
    from the persisted audit log: e.g. an application filed with their document."""
    card, _ = await holder_card_and_device(session, holder)
    statement = (
        select(AuditEvent)
        .where(
            col(AuditEvent.subject) == str(card.id),
            col(AuditEvent.action).in_(list(HOLDER_NOTICES)),
        )
        .order_by(col(AuditEvent.id).desc())
        .limit(MAX_NOTICES)
    )
    rows = (await session.exec(statement)).all()
    return [
        HolderNotice(row.action, HOLDER_NOTICES[row.action], as_utc(row.occurred_at))
        for row in rows
    ]


def holder_document_matches(runtime: Runtime, person: Person, document_number: str) -> bool:
    """True when `document_number` is the person's own (an operator's identity check)."""
    return _matches_document(runtime, person, document_number)


async def authenticate_on_the_web(runtime: Runtime, identifier: str, pin: str) -> Card:
    """The card of a login without the holder's phone (the OpenID Connect login page): the
    card number, or the resident ID number, with the PIN. Counted and locked at the gate of
    other phones (`unbound_gate`), exactly like an app login on a phone without the e-card,
    so the same lockout holds and strangers cannot lock the holder's own phones out.

    :raises InvalidCredentials: unknown card or document, or wrong PIN (401).
    :raises PinLocked: too many wrong attempts (423).
    """
    async with runtime.database.session() as session:
        outcome = await _authenticate_on_the_web(session, runtime, identifier, pin)
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


async def _authenticate_on_the_web(
    session: AsyncSession, runtime: Runtime, identifier: str, pin: str
) -> Card | DomainError:
    compact = normalise_card_number(identifier)
    if len(compact) == 18:  # a resident ID number (card numbers are shorter)
        gate_id, index = _document_identity(runtime, "resident_id", compact)
        found = await _find_card(session, "", card_number=None, document=index)
    else:
        gate_id = compact
        found = await _find_card(session, "", card_number=compact, document=None)
    gate = _gate(
        runtime, None if found is None else _Found(found.card, found.person, None), gate_id
    )
    if found is None:
        return await _no_such_card(runtime, pin, "web_login", gate)
    refusal = await _check_pin(session, runtime, found.card, pin, "web_login", gate=gate)
    if refusal is not None:
        return refusal
    return found.card
