"""The family service (亲情服务): a holder (the guardian) acts for a relative (the ward).

- The guardian invites the ward by card number; the ward accepts with their own PIN, or, for
  a ward with no phone, an operator at the service hall records the ward's consent after an
  identity check (audited as the operator's action).
- Each link grants scopes (`FamilyScope`): show the ward's QR code, view the ward's card
  status and access log, report the ward's card lost. At most 8 wards per guardian and 3
  guardians per ward (pending invitations count). Either side ends a link at once.
- A guardian never changes the ward's PIN, cancels the card, or approves logins or consents
  for the ward (`GuardianNotPermitted`, 403).
- Every action is an audit event `family.<action>` naming both cards; the audit consumer
  writes it into both people's access logs (`app.accesslog.recorder`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accesslog.service import AccessLogPage, holder_access_log
from app.audit.log import record
from app.cards.errors import HolderNotVerified
from app.cards.lifecycle import CardAction, Channel
from app.cards.lifecycle_service import (
    Transition,
    card_transition,
    find_operator_card,
    normal_card_number,
)
from app.cards.models import Card, CardStatus, Person
from app.cards.status_indexes import token_indexes
from app.errors import DomainError
from app.family.errors import (
    FamilyLimitReached,
    FamilyLinkExists,
    FamilyLinkInactive,
    FamilyLinkNotFound,
    GuardianNotPermitted,
    InvalidInvitation,
    NotYourInvitation,
    ScopeNotGranted,
    WardNotFound,
)
from app.family.models import (
    MAX_GUARDIANS_PER_WARD,
    MAX_WARDS_PER_GUARDIAN,
    FamilyLink,
    FamilyPresentation,
    FamilyScope,
    LinkStatus,
)
from app.holders.errors import card_not_active
from app.holders.service import (
    check_holder_pin,
    holder_card_and_device,
    holder_document_matches,
    mask_card_number,
)
from app.runtime import Runtime
from app.security.principals import AdminPrincipal, HolderPrincipal
from token_service.keys import b64url

FORBIDDEN_FOR_GUARDIANS = frozenset({"pin", "cancel", "login-approvals", "consents"})
"""What a guardian may never do for a ward, whatever the link's scopes: change the PIN,
cancel the card, approve logins (scan-to-login) or consents (data sharing) on the ward's
behalf. Asked for, each answers 403 `guardian-not-permitted`."""

_OPEN = (LinkStatus.pending.value, LinkStatus.active.value)


@dataclass(frozen=True, slots=True)
class LinkView:
    """A link as one side sees it: `role` is the caller's (guardian or ward)."""

    link: FamilyLink
    role: str
    other_card_number: str


@dataclass(frozen=True, slots=True)
class WardQr:
    token: str
    kid: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class WardStatus:
    masked_card_number: str
    status: CardStatus
    status_changed_at: datetime


def _label(card: Card) -> str:
    return mask_card_number(card.card_number)


def _actor(card: Card) -> str:
    return f"holder:{card.id}"


async def _audit(
    runtime: Runtime,
    action: str,
    *,
    actor: str,
    link: FamilyLink,
    guardian: Card,
    ward: Card,
    **extra: object,
) -> None:
    """`family.<action>` naming both cards (ids and masked numbers, nothing more personal):
    the audit consumer turns it into an entry of each access log."""
    await record(
        runtime.store,
        f"family.{action}",
        actor,
        str(link.id),
        {
            "link": str(link.id),
            "guardian": str(guardian.id),
            "ward": str(ward.id),
            "guardian_label": _label(guardian),
            "ward_label": _label(ward),
            **extra,
        },
    )


async def _count(session: AsyncSession, column: object, card_id: uuid.UUID) -> int:
    statement = (
        select(func.count())
        .select_from(FamilyLink)
        .where(column == card_id)
        .where(col(FamilyLink.status).in_(_OPEN))
    )
    return int((await session.exec(statement)).one())


async def _check_limits(session: AsyncSession, guardian_id: uuid.UUID, ward_id: uuid.UUID) -> None:
    if await _count(session, col(FamilyLink.guardian_card_id), guardian_id) >= (
        MAX_WARDS_PER_GUARDIAN
    ):
        raise FamilyLimitReached(
            f"a guardian has at most {MAX_WARDS_PER_GUARDIAN} wards", limit=MAX_WARDS_PER_GUARDIAN
        )
    if await _count(session, col(FamilyLink.ward_card_id), ward_id) >= MAX_GUARDIANS_PER_WARD:
        raise FamilyLimitReached(
            f"a ward has at most {MAX_GUARDIANS_PER_WARD} guardians", limit=MAX_GUARDIANS_PER_WARD
        )


async def invite(
    session: AsyncSession,
    runtime: Runtime,
    holder: HolderPrincipal,
    ward_card_number: str,
    scopes: Sequence[FamilyScope],
) -> LinkView:
    """The guardian invites the holder of `ward_card_number`; pending until accepted.

    :raises WardNotFound, InvalidInvitation (oneself, no scope), FamilyLinkExists,
        FamilyLimitReached:
    """
    guardian, _ = await holder_card_and_device(session, holder)
    if not scopes:
        raise InvalidInvitation("grant at least one scope", field="scopes")
    number = normal_card_number(ward_card_number)
    ward = (await session.exec(select(Card).where(Card.card_number == number))).first()
    if ward is None or ward.status == CardStatus.cancelled.value:
        raise WardNotFound("no card in force has this number")
    if ward.id == guardian.id:
        raise InvalidInvitation("you cannot be your own guardian", field="ward_card_number")
    existing = await session.exec(
        select(FamilyLink.id)
        .where(FamilyLink.guardian_card_id == guardian.id)
        .where(FamilyLink.ward_card_id == ward.id)
        .where(col(FamilyLink.status).in_(_OPEN))
    )
    if existing.first() is not None:
        raise FamilyLinkExists("you already invited or guard this person")
    await _check_limits(session, guardian.id, ward.id)
    link = FamilyLink(
        guardian_card_id=guardian.id,
        ward_card_id=ward.id,
        scopes=sorted({scope.value for scope in scopes}),
    )
    session.add(link)
    await session.flush()
    await _audit(
        runtime,
        "invited",
        actor=_actor(guardian),
        link=link,
        guardian=guardian,
        ward=ward,
        scopes=link.scopes,
    )
    return LinkView(link, "guardian", _label(ward))


async def list_links(session: AsyncSession, holder: HolderPrincipal) -> list[LinkView]:
    """Links both ways (as guardian and as ward), ended ones included, newest first."""
    card, _ = await holder_card_and_device(session, holder)
    links = (
        await session.exec(
            select(FamilyLink)
            .where(
                or_(
                    col(FamilyLink.guardian_card_id) == card.id,
                    col(FamilyLink.ward_card_id) == card.id,
                )
            )
            .order_by(col(FamilyLink.created_at).desc(), col(FamilyLink.id))
        )
    ).all()
    others = {
        link.ward_card_id if link.guardian_card_id == card.id else link.guardian_card_id
        for link in links
    }
    numbers: dict[uuid.UUID, str] = {}
    if others:
        rows = await session.exec(select(Card.id, Card.card_number).where(col(Card.id).in_(others)))
        numbers = {card_id: mask_card_number(number) for card_id, number in rows.all()}
    views = []
    for link in links:
        guardian = link.guardian_card_id == card.id
        other = link.ward_card_id if guardian else link.guardian_card_id
        views.append(LinkView(link, "guardian" if guardian else "ward", numbers.get(other, "")))
    return views


async def _link_of(
    session: AsyncSession, link_id: uuid.UUID, card: Card, *, lock: bool = False
) -> FamilyLink:
    """A link the card is a side of (404 for anyone else's: nothing to enumerate)."""
    link = await session.get(FamilyLink, link_id, with_for_update=lock or None)
    if link is None or card.id not in (link.guardian_card_id, link.ward_card_id):
        raise FamilyLinkNotFound("no such family link of yours")
    return link


async def _cards(session: AsyncSession, link: FamilyLink) -> tuple[Card, Card]:
    guardian = await session.get(Card, link.guardian_card_id)
    ward = await session.get(Card, link.ward_card_id)
    assert guardian is not None and ward is not None, "links reference their cards"
    return guardian, ward


async def accept(
    runtime: Runtime, holder: HolderPrincipal, link_id: uuid.UUID, pin: str
) -> LinkView:
    """The ward accepts an invitation with their own PIN (counted toward the PIN lockout).

    :raises FamilyLinkNotFound, NotYourInvitation (the guardian), FamilyLinkInactive (not
        pending), FamilyLimitReached, InvalidCredentials, PinLocked:
    """
    async with runtime.database.session() as session:
        outcome = await _accept(session, runtime, holder, link_id, pin)
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


async def _accept(
    session: AsyncSession, runtime: Runtime, holder: HolderPrincipal, link_id: uuid.UUID, pin: str
) -> LinkView | DomainError:
    ward, _ = await holder_card_and_device(session, holder)
    link = await _link_of(session, link_id, ward, lock=True)
    if link.ward_card_id != ward.id:
        raise NotYourInvitation("only the invited ward accepts an invitation")
    if link.status != LinkStatus.pending.value:
        raise FamilyLinkInactive(f"this link is {link.status}, not pending")
    refusal = await check_holder_pin(session, runtime, ward, pin, "family_accept")
    if refusal is not None:
        return refusal
    guardian, _ = await _cards(session, link)
    return await _activate(session, runtime, link, guardian, ward, actor=_actor(ward))


async def _activate(
    session: AsyncSession,
    runtime: Runtime,
    link: FamilyLink,
    guardian: Card,
    ward: Card,
    *,
    actor: str,
    operator: str | None = None,
) -> LinkView:
    link.status = LinkStatus.active.value
    link.accepted_at = datetime.now(UTC)
    link.consent_recorded_by = operator
    session.add(link)
    await session.flush()
    action = "accepted" if operator is None else "consent_recorded"
    await _audit(runtime, action, actor=actor, link=link, guardian=guardian, ward=ward)
    return LinkView(link, "ward", _label(guardian))


async def record_consent(
    session: AsyncSession,
    runtime: Runtime,
    admin: AdminPrincipal,
    *,
    ward_card_number: str,
    link_id: uuid.UUID,
    holder_document_number: str,
) -> LinkView:
    """At the service hall, an operator records the consent of a ward who has no phone,
    after checking the ward's identity document face to face (its number must match).

    :raises CardNotFound, FamilyLinkNotFound, FamilyLinkInactive, HolderNotVerified (403):
    """
    ward = await find_operator_card(session, ward_card_number)
    link = await _link_of(session, link_id, ward, lock=True)
    if link.ward_card_id != ward.id:
        raise FamilyLinkNotFound("no invitation of this card with this id")
    person = await session.get(Person, ward.person_id)
    assert person is not None, "cards reference their person"
    if not holder_document_matches(runtime, person, holder_document_number):
        await record(
            runtime.store,
            "family.consent_refused",
            admin.client_id,
            str(link.id),
            {"link": str(link.id), "ward": str(ward.id), "reason": "document_mismatch"},
        )
        raise HolderNotVerified(
            "the document number must be the ward's own", field="holder_document_number"
        )
    if link.status != LinkStatus.pending.value:
        raise FamilyLinkInactive(f"this link is {link.status}, not pending")
    guardian, _ = await _cards(session, link)
    return await _activate(
        session, runtime, link, guardian, ward, actor=admin.client_id, operator=admin.client_id
    )


async def end(
    session: AsyncSession, runtime: Runtime, holder: HolderPrincipal, link_id: uuid.UUID
) -> LinkView:
    """Either side ends a link (or withdraws or declines an invitation), at once: the
    guardian's next request for the ward is refused (403).

    :raises FamilyLinkNotFound:
    """
    card, _ = await holder_card_and_device(session, holder)
    link = await _link_of(session, link_id, card, lock=True)
    guardian, ward = await _cards(session, link)
    role = "guardian" if card.id == guardian.id else "ward"
    if link.status != LinkStatus.ended.value:
        link.status = LinkStatus.ended.value
        link.ended_at = datetime.now(UTC)
        link.ended_by = role
        session.add(link)
        await session.flush()
        await _audit(
            runtime, "ended", actor=_actor(card), link=link, guardian=guardian, ward=ward, by=role
        )
    return LinkView(link, role, _label(ward if role == "guardian" else guardian))


async def _guarded(
    session: AsyncSession, holder: HolderPrincipal, link_id: uuid.UUID, scope: FamilyScope
) -> tuple[FamilyLink, Card, Card]:
    """The active link of which the caller is the guardian, granting `scope`.

    :raises FamilyLinkNotFound, FamilyLinkInactive, ScopeNotGranted:
    """
    card, _ = await holder_card_and_device(session, holder)
    link = await _link_of(session, link_id, card)
    if link.guardian_card_id != card.id:
        raise GuardianNotPermitted("you are this link's ward, not its guardian")
    if link.status != LinkStatus.active.value:
        raise FamilyLinkInactive(f"this link is {link.status}")
    if scope.value not in link.scopes:
        raise ScopeNotGranted(f"this link does not grant {scope.value}", scope=scope.value)
    guardian, ward = await _cards(session, link)
    return link, guardian, ward


async def ward_qr(
    session: AsyncSession, runtime: Runtime, holder: HolderPrincipal, link_id: uuid.UUID
) -> WardQr:
    """A fresh QR token of the ward's card for the guardian to show. Its `cti` is recorded
    with the link, so the scan's access-log entries (the ward's and the guardian's) name
    the guardian; the token is like any other (no personal data, same size).

    :raises FamilyLinkNotFound, FamilyLinkInactive, ScopeNotGranted, CardNotActive:
    """
    link, guardian, ward = await _guarded(session, holder, link_id, FamilyScope.show_qr)
    status = CardStatus(ward.status)
    if status is not CardStatus.active:
        raise card_not_active(status)
    settings = runtime.settings
    (index,) = await token_indexes(
        session, ward, 1, settings.status_index_pool, settings.status_list_size
    )
    issued = runtime.token_issuer.issue(bytes.fromhex(ward.handle), status_index=index)
    expires_at = datetime.fromtimestamp(issued.expires_at, UTC)
    session.add(
        FamilyPresentation(
            cti=issued.cti.hex(),
            link_id=link.id,
            guardian_card_id=guardian.id,
            ward_card_id=ward.id,
            guardian_label=_label(guardian),
            expires_at=expires_at,
        )
    )
    await session.flush()
    await _audit(
        runtime, "qr_shown", actor=_actor(guardian), link=link, guardian=guardian, ward=ward
    )
    return WardQr(issued.token, b64url(issued.kid), expires_at)


async def ward_status(
    session: AsyncSession, runtime: Runtime, holder: HolderPrincipal, link_id: uuid.UUID
) -> WardStatus:
    """:raises FamilyLinkNotFound, FamilyLinkInactive, ScopeNotGranted:"""
    link, guardian, ward = await _guarded(session, holder, link_id, FamilyScope.view)
    await _audit(
        runtime, "status_viewed", actor=_actor(guardian), link=link, guardian=guardian, ward=ward
    )
    return WardStatus(_label(ward), CardStatus(ward.status), ward.status_changed_at)


async def ward_access_log(
    session: AsyncSession,
    runtime: Runtime,
    holder: HolderPrincipal,
    link_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> AccessLogPage:
    """:raises FamilyLinkNotFound, FamilyLinkInactive, ScopeNotGranted, InvalidCursor:"""
    link, guardian, ward = await _guarded(session, holder, link_id, FamilyScope.view)
    page = await holder_access_log(session, ward.id, limit=limit, cursor=cursor)
    await _audit(
        runtime,
        "access_log_viewed",
        actor=_actor(guardian),
        link=link,
        guardian=guardian,
        ward=ward,
    )
    return page


async def ward_report_loss(
    runtime: Runtime, holder: HolderPrincipal, link_id: uuid.UUID
) -> Transition:
    """Reports the ward's card lost (挂失): every QR code of it stops passing at once.

    :raises FamilyLinkNotFound, FamilyLinkInactive, ScopeNotGranted, TransitionNotAllowed:
    """
    async with runtime.database.session() as session:
        link, guardian, ward = await _guarded(session, holder, link_id, FamilyScope.report_loss)
    transition = await card_transition(
        runtime,
        ward.id,
        CardAction.report_loss,
        Channel.online,
        actor=f"guardian:{guardian.id}",
        reason="reported by a guardian (family service)",
    )
    await _audit(
        runtime, "loss_reported", actor=_actor(guardian), link=link, guardian=guardian, ward=ward
    )
    return transition


async def refuse_for_guardian(
    session: AsyncSession, holder: HolderPrincipal, link_id: uuid.UUID, action: str
) -> None:
    """Whatever the link grants, a guardian never does `action` for the ward.

    :raises FamilyLinkNotFound: not a link of the caller's.
    :raises GuardianNotPermitted: always otherwise (403).
    """
    card, _ = await holder_card_and_device(session, holder)
    await _link_of(session, link_id, card)
    raise GuardianNotPermitted(
        f"a guardian cannot {action.replace('-', ' ')} for the ward; only the ward can",
        action=action,
    )
