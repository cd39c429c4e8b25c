"""Card lifecycle transitions (挂失, 解挂, 补换, 注销, suspension) asked for by the holder or
by an operator, applied to the database, then made effective online.

Each transition runs in a transaction of its own (`runtime.database.session()`) rather than
the request's, for two reasons: the new `CardSnapshot` must reach the store only AFTER the
commit, so a verify never sees a state the database rolled back; and a wrong PIN must be
counted (committed) even though the request then answers with an error. The audit event
follows the snapshot; the holder's notification of the change (`card_status_changed`) is
stored in the transaction itself, keyed by the event's id, so a crash between the commit
and the event's append loses no notification (`record_event_notifications`).

The card row is locked (`FOR UPDATE` on PostgreSQL; SQLite serialises writers) while the
transition is decided, so two concurrent actions are decided one after the other.

Replacement (补换) is one function (`_replace_number`) whichever the channel: the physical
card gets a new number and the old one is retired for good. Asked for online by the holder
(on a bound phone, with the PIN), the e-card is re-issued too: the card gets a new handle, so
every QR token minted before the replacement stops verifying online at once (the old handle
finds no card), and the phone fetches new tokens. At a desk the e-card follows the card.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import append_event, audit_fields
from app.cards.errors import CardNotFound, CardNumberRetired, HolderNotVerified
from app.cards.lifecycle import CardAction, Channel, next_status
from app.cards.models import Card, CardEvent, CardStatus, Person, RetiredCardNumber, utcnow
from app.cards.numbers import new_card_number
from app.cards.service import load_card_snapshot, new_card_handle
from app.cards.snapshot import CardSnapshot, publish_card_snapshot, retire_card_handle
from app.cards.status_indexes import renew_pool
from app.errors import DomainError, InvalidRequest
from app.holders.service import check_holder_pin, holder_card_and_device, holder_document_matches
from app.notifications.service import record_event_notifications
from app.runtime import Runtime
from app.security.principals import AdminPrincipal, HolderPrincipal
from app.store import StoreUnavailable

logger = logging.getLogger("ssc.cards")

PIN_ACTIONS = frozenset({CardAction.cancel_loss, CardAction.cancel, CardAction.replace_card})
"""What the holder may do only with the PIN: undoing a loss, the terminal cancellation, and a
replacement (a new card number, and the e-card re-issued)."""

HOLDER_ACTIONS = frozenset(
    {CardAction.report_loss, CardAction.cancel_loss, CardAction.cancel, CardAction.replace_card}
)

_NUMBER_ATTEMPTS = 8
_PUBLISH_ATTEMPTS = 4
_PUBLISH_BACKOFF = 0.05


@dataclass(frozen=True, slots=True)
class OperatorRequest:
    """An operator's action on the card with `card_number`, with the reason it is written down.

    `holder_document_number` is the identity check: required when a hotline operator reports
    a loss on the caller's behalf, and when an operator cancels a loss.
    """

    card_number: str
    action: CardAction
    channel: Channel
    reason: str
    holder_document_number: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """A committed transition; `card_number` is the card's number afterwards (new on replace)."""

    event_id: uuid.UUID
    card_id: uuid.UUID
    action: CardAction
    from_status: CardStatus
    to_status: CardStatus
    channel: Channel
    card_number: str
    at: datetime


@dataclass(frozen=True, slots=True)
class _Applied:
    transition: Transition
    handle: str
    snapshot: CardSnapshot
    audit_event: Mapping[str, str]
    """The audit stream entry (`audit_fields`), appended once the change is effective; its
    notification was stored with the change."""
    retired_handle: str | None = None
    """The card handle an online replacement retired (its snapshot leaves the store)."""


def normal_card_number(card_number: str) -> str:
    """As typed at a desk: full-width digits, spaces and lower case are tolerated."""
    return "".join(unicodedata.normalize("NFKC", card_number).split()).upper()


async def holder_transition(
    runtime: Runtime,
    holder: HolderPrincipal,
    action: CardAction,
    *,
    pin: str | None = None,
    reason: str | None = None,
) -> Transition:
    """The holder acts on their own card through the app.

    :raises TransitionNotAllowed: the card's state does not allow `action` (409).
    :raises InvalidCredentials, PinLocked: a wrong or locked PIN where one is needed.
    :raises DeviceUnbound: the session's phone was unbound.
    """
    if action not in HOLDER_ACTIONS:
        raise InvalidRequest(f"a holder cannot {action.value} a card", action=action.value)
    async with runtime.database.session() as session:
        outcome = await _holder_transition(session, runtime, holder, action, pin=pin, reason=reason)
    if isinstance(outcome, DomainError):
        raise outcome
    return await _make_effective(runtime, outcome)


async def _holder_transition(
    session: AsyncSession,
    runtime: Runtime,
    holder: HolderPrincipal,
    action: CardAction,
    *,
    pin: str | None,
    reason: str | None,
) -> _Applied | DomainError:
    card, _ = await holder_card_and_device(session, holder)
    await session.refresh(card, with_for_update=True)
    # The state is checked before the PIN: a refused action does not spend a PIN attempt.
    next_status(CardStatus(card.status), action, Channel.online)
    if action in PIN_ACTIONS:
        refusal = await check_holder_pin(session, runtime, card, pin or "", action.value)
        if refusal is not None:
            return refusal
    return await _apply(
        session, runtime, card, action, Channel.online, actor=f"holder:{card.id}", reason=reason
    )


async def operator_transition(
    runtime: Runtime, admin: AdminPrincipal, request: OperatorRequest
) -> Transition:
    """An operator (service counter, hotline, administration) acts on a card by its number.

    :raises CardNotFound, CardNumberRetired: no card has this number (any more).
    :raises ChannelNotAllowed: the action cannot be done through this channel (422).
    :raises HolderNotVerified: the identity check failed or was missing (403).
    :raises TransitionNotAllowed: the card's state does not allow the action (409).
    """
    async with runtime.database.session() as session:
        applied = await _operator_transition(session, runtime, admin, request)
    return await _make_effective(runtime, applied)


async def card_transition(
    runtime: Runtime,
    card_id: uuid.UUID,
    action: CardAction,
    channel: Channel,
    *,
    actor: str,
    reason: str | None,
) -> Transition:
    """A transition of a card by id, asked for by someone entitled to it who is neither its
    holder nor an operator (a guardian of the family service reporting a loss).

    :raises CardNotFound, ChannelNotAllowed, TransitionNotAllowed:
    """
    async with runtime.database.session() as session:
        card = await session.get(Card, card_id, with_for_update=True)
        if card is None:
            raise CardNotFound("no such card")
        applied = await _apply(session, runtime, card, action, channel, actor=actor, reason=reason)
    return await _make_effective(runtime, applied)


async def _operator_transition(
    session: AsyncSession, runtime: Runtime, admin: AdminPrincipal, request: OperatorRequest
) -> _Applied:
    card = await find_operator_card(session, request.card_number)
    await session.refresh(card, with_for_update=True)
    next_status(CardStatus(card.status), request.action, request.channel)
    details: dict[str, str] = {}
    if _needs_identity_check(request):
        person = await session.get(Person, card.person_id)
        assert person is not None, "cards reference their person"
        number = request.holder_document_number
        if number is None or not holder_document_matches(runtime, person, number):
            raise HolderNotVerified(
                "give the holder's document number; it must match the card's holder",
                field="holder_document_number",
            )
        details["holder_verified_by"] = "document_number"
    return await _apply(
        session,
        runtime,
        card,
        request.action,
        request.channel,
        actor=admin.client_id,
        reason=request.reason,
        details=details,
    )


def _needs_identity_check(request: OperatorRequest) -> bool:
    if request.action is CardAction.cancel_loss:
        return True
    return request.action is CardAction.report_loss and request.channel is Channel.hotline


async def find_operator_card(session: AsyncSession, card_number: str) -> Card:
    """The card an operator names by number.

    :raises CardNumberRetired: the number of a replaced physical card (410).
    :raises CardNotFound: no card has ever had this number (404).
    """
    number = normal_card_number(card_number)
    card = (await session.exec(select(Card).where(Card.card_number == number))).first()
    if card is not None:
        return card
    if await session.get(RetiredCardNumber, number) is not None:
        raise CardNumberRetired(
            "this physical card was replaced; look the card up by its new number"
        )
    raise CardNotFound("no card has this number")


async def _apply(
    session: AsyncSession,
    runtime: Runtime,
    card: Card,
    action: CardAction,
    channel: Channel,
    *,
    actor: str,
    reason: str | None,
    details: dict[str, str] | None = None,
) -> _Applied:
    """Writes the transition and its `card_events` row; only flushes."""
    current = CardStatus(card.status)
    target = next_status(current, action, channel)
    details = dict(details or {})
    retired_handle = None
    if action is CardAction.replace_card:
        old_number, new_number = await _replace_number(session, card)
        details.update(retired_card_number=old_number, card_number=new_number)
        if channel is Channel.online:
            retired_handle, card.handle = card.handle, new_card_handle()
            details["e_card"] = "reissued"
        # The new carrier's tokens must not be linkable to the old one's by index.
        settings = runtime.settings
        await renew_pool(session, card, settings.status_index_pool, settings.status_list_size)
    card.status = target
    card.status_changed_at = event_time = utcnow()
    session.add(card)
    event = CardEvent(
        card_id=card.id,
        action=action.value,
        from_status=current.value,
        to_status=target.value,
        actor=actor,
        channel=channel.value,
        reason=reason,
        details=details,
        created_at=event_time,
    )
    session.add(event)
    await session.flush()
    person = await session.get(Person, card.person_id)
    assert person is not None, "cards reference their person"
    transition = Transition(
        event_id=event.id,
        card_id=card.id,
        action=action,
        from_status=current,
        to_status=target,
        channel=channel,
        card_number=card.card_number,
        at=event_time,
    )
    audit: dict[str, str | None] = {
        "event": str(event.id),
        "from": current.value,
        "to": target.value,
        "channel": channel.value,
        "reason": reason,
        **details,
    }
    snapshot = await load_card_snapshot(session, runtime.pii, card, person)
    # The event reaches the stream after the commit (`_make_effective`); the holder's
    # notification is stored now, with the change, so a crash in between loses none.
    entry = audit_fields(f"card.{action.value}", actor, str(card.id), audit)
    await record_event_notifications(session, runtime, [entry])
    return _Applied(transition, card.handle, snapshot, entry, retired_handle)


async def _replace_number(session: AsyncSession, card: Card) -> tuple[str, str]:
    """Retires the physical card's number for good and gives the card a fresh one."""
    old_number = card.card_number
    for _ in range(_NUMBER_ATTEMPTS):
        number = new_card_number(card.region_code)
        taken = await session.exec(select(Card.id).where(Card.card_number == number))
        if taken.first() is None and await session.get(RetiredCardNumber, number) is None:
            break
    else:
        raise RuntimeError("fresh card numbers kept colliding")
    session.add(RetiredCardNumber(card_number=old_number, card_id=card.id))
    card.card_number = number
    return old_number, number


async def _make_effective(runtime: Runtime, applied: _Applied) -> Transition:
    """After the commit: the snapshot reaches every worker at once, then the audit event.

    A store that stays unreachable leaves the change committed but not yet effective online;
    the caller gets 503 (verify fails closed meanwhile, as the store is down for it too).
    """
    transition = applied.transition
    for attempt in range(_PUBLISH_ATTEMPTS):
        try:
            await publish_card_snapshot(runtime.store, applied.handle, applied.snapshot)
            if applied.retired_handle is not None:
                await retire_card_handle(runtime.store, applied.retired_handle)
            break
        except StoreUnavailable:
            if attempt == _PUBLISH_ATTEMPTS - 1:
                logger.error(
                    "card %s is %s in the database but its snapshot could not be published",
                    transition.card_id,
                    transition.to_status.value,
                )
                raise
            await asyncio.sleep(_PUBLISH_BACKOFF * 2**attempt)
    runtime.notification_senders.wake()  # the notification stored with the change
    await append_event(runtime.store, applied.audit_event)
    return transition


async def card_history(session: AsyncSession, holder: HolderPrincipal) -> Sequence[CardEvent]:
    """Every transition of the holder's card, oldest first."""
    card, _ = await holder_card_and_device(session, holder)
    statement = (
        select(CardEvent)
        .where(CardEvent.card_id == card.id)
        .order_by(col(CardEvent.created_at), col(CardEvent.id))
    )
    return (await session.exec(statement)).all()
