"""Consent requests: the department asks, the holder decides, the department reads.

- An issuer's client (scope `consent`) asks for a holder's items for a stated purpose and an
  access duration (`request_consent`), the holder found by document through the blind
  index (unknown: 404). Items are document types (any family: e-licences here, the vault's
  types there) and card attributes (`ATTRIBUTE_ITEMS`). The holder is notified
  (`consent_requested`: the department's name, the items and the purpose).
- The holder lists their requests (`holder_requests`), approves one with the PIN
  (`approve`; wrong PINs count toward the PIN lockout like every PIN check) or declines it;
  a pending request expires after `SSC_CONSENT_REQUEST_TTL`; an approval lasts the asked
  duration; the holder may revoke it at any time, with effect on the next read.
- `require_consent` is the one check before a read: a consent of this issuer, approved, in
  effect now, naming the item; otherwise `ConsentRequired` (403), and the refusal is
  audited (`consent.read.refused`), as every read is (`consent.read`); the audit consumer
  writes both to the holder's access log. Other domains (the HR vault) read through it too.

Status is computed when read: a pending request past its expiry, or an approval past its
access time, shows (and is stored, at the next write) as `expired`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.documents import validate_document
from app.cards.models import Card, Person
from app.cards.service import DOCUMENT_NUMBER_FIELD, NAME_FIELD, document_index
from app.catalog.scenes import Attribute
from app.consents.errors import (
    ConsentNotActive,
    ConsentNotFound,
    ConsentNotPending,
    ConsentRequired,
    InvalidConsentRequest,
)
from app.consents.models import ConsentRequest, ConsentStatus
from app.departments.models import Issuer
from app.departments.types import DOCUMENT_TYPES
from app.errors import DomainError
from app.holders.service import check_holder_pin, holder_card_and_device
from app.licences.errors import HolderNotFound
from app.runtime import Runtime
from app.security.principals import DepartmentPrincipal, HolderPrincipal

READ_ACTION = "consent.read"
REFUSED_ACTION = "consent.read.refused"
ATTRIBUTE_ITEMS = frozenset(
    {Attribute.full_name.value, Attribute.document_type.value, Attribute.document_number.value}
)
"""Card attributes a department may ask for (beyond documents)."""
MAX_ACCESS_DAYS = 365


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def effective_status(request: ConsentRequest, now: datetime) -> ConsentStatus:
    status = ConsentStatus(request.status)
    if status is ConsentStatus.pending and now >= (_aware(request.request_expires_at) or now):
        return ConsentStatus.expired
    if status is ConsentStatus.approved:
        until = _aware(request.access_until)
        if until is None or now >= until:
            return ConsentStatus.expired
    return status


def checked_items(items: Sequence[str]) -> list[str]:
    wanted = sorted(set(items))
    unknown = [
        item for item in wanted if item not in DOCUMENT_TYPES and item not in ATTRIBUTE_ITEMS
    ]
    if not wanted or unknown:
        raise InvalidConsentRequest(
            f"unknown items: {', '.join(unknown)}" if unknown else "name at least one item",
            items=unknown,
        )
    return wanted


async def _person_by_document(
    session: AsyncSession, runtime: Runtime, document_type: str, document_number: str
) -> Person:
    document = validate_document(document_type, document_number)
    index = document_index(runtime.pii, document.doc_type, document.number)
    person = (await session.exec(select(Person).where(Person.document_index == index))).first()
    if person is None:
        raise HolderNotFound("no card holder has this document")
    return person


async def request_consent(
    runtime: Runtime,
    principal: DepartmentPrincipal,
    *,
    document_type: str,
    document_number: str,
    items: Sequence[str],
    purpose: str,
    access_days: int,
) -> ConsentRequest:
    """:raises InvalidConsentRequest, InvalidDocument, HolderNotFound:"""
    wanted = checked_items(items)
    if not 1 <= access_days <= MAX_ACCESS_DAYS:
        raise InvalidConsentRequest(f"access_days must be 1 to {MAX_ACCESS_DAYS}")
    now = datetime.now(UTC)
    async with runtime.database.session() as session:
        person = await _person_by_document(session, runtime, document_type, document_number)
        request = ConsentRequest(
            issuer_id=principal.issuer_id,
            person_id=person.id,
            requested_by=principal.client_id,
            items=wanted,
            purpose=purpose,
            access_seconds=access_days * 86400,
            request_expires_at=now + timedelta(seconds=runtime.settings.consent_request_ttl),
        )
        session.add(request)
        await session.flush()
        card = (await session.exec(select(Card).where(Card.person_id == person.id))).first()
        issuer = await session.get(Issuer, principal.issuer_id)
        data: dict[str, object] = {"items": wanted, "purpose": purpose, "access_days": access_days}
        if card is not None and issuer is not None:
            # the holder is told (notification `consent_requested`)
            data |= {"card": str(card.id), "department": issuer.name}
        await record(runtime.store, "consent.request", principal.client_id, str(request.id), data)
    return request


async def issuer_request(
    session: AsyncSession, principal: DepartmentPrincipal, request_id: uuid.UUID
) -> ConsentRequest:
    """:raises ConsentNotFound: also for another issuer's request."""
    request = await session.get(ConsentRequest, request_id)
    if request is None or request.issuer_id != principal.issuer_id:
        raise ConsentNotFound(f"no consent request {request_id}")
    return request


@dataclass(frozen=True, slots=True)
class HolderRequest:
    request: ConsentRequest
    issuer: Issuer
    status: ConsentStatus


async def holder_requests(session: AsyncSession, holder: HolderPrincipal) -> list[HolderRequest]:
    """The holder's requests, newest first, with their status now."""
    card, _ = await holder_card_and_device(session, holder)
    statement = (
        select(ConsentRequest, Issuer)
        .where(ConsentRequest.person_id == card.person_id)
        .where(col(Issuer.id) == col(ConsentRequest.issuer_id))
        .order_by(col(ConsentRequest.created_at).desc())
    )
    now = datetime.now(UTC)
    return [
        HolderRequest(request, issuer, effective_status(request, now))
        for request, issuer in (await session.exec(statement)).all()
    ]


async def _holders_request(
    session: AsyncSession, holder: HolderPrincipal, request_id: uuid.UUID
) -> tuple[Card, ConsentRequest]:
    card, _ = await holder_card_and_device(session, holder)
    request = await session.get(ConsentRequest, request_id, with_for_update=True)
    if request is None or request.person_id != card.person_id:
        raise ConsentNotFound(f"no consent request {request_id}")
    return card, request


async def decide(
    runtime: Runtime,
    holder: HolderPrincipal,
    request_id: uuid.UUID,
    *,
    approve: bool,
    pin: str | None = None,
) -> ConsentRequest:
    """Approves (with the PIN) or declines a pending request.

    :raises ConsentNotFound, ConsentNotPending, and the PIN errors (wrong PIN, locked):
    """
    refusal: DomainError | None = None
    async with runtime.database.session() as session:
        card, request = await _holders_request(session, holder, request_id)
        now = datetime.now(UTC)
        status = effective_status(request, now)
        if status is not ConsentStatus.pending:
            raise ConsentNotPending(f"the request is {status.value}", current=status.value)
        if approve:
            refusal = await check_holder_pin(session, runtime, card, pin or "", "consent")
        if refusal is None:
            request.status = (ConsentStatus.approved if approve else ConsentStatus.declined).value
            request.decided_at = now
            if approve:
                request.access_until = now + timedelta(seconds=request.access_seconds)
            session.add(request)
            await session.flush()
            await record(
                runtime.store,
                "consent.approve" if approve else "consent.decline",
                f"holder:{card.id}",
                str(request.id),
                {"items": request.items},
            )
    if refusal is not None:
        raise refusal
    return request


async def revoke(
    runtime: Runtime, holder: HolderPrincipal, request_id: uuid.UUID
) -> ConsentRequest:
    """Ends an approval now: the department's next read is refused.

    :raises ConsentNotFound, ConsentNotActive:
    """
    async with runtime.database.session() as session:
        card, request = await _holders_request(session, holder, request_id)
        now = datetime.now(UTC)
        status = effective_status(request, now)
        if status is not ConsentStatus.approved:
            raise ConsentNotActive(f"the consent is {status.value}", current=status.value)
        request.status, request.revoked_at = ConsentStatus.revoked.value, now
        session.add(request)
        await session.flush()
        await record(runtime.store, "consent.revoke", f"holder:{card.id}", str(request.id), {})
    return request


async def require_consent(
    session: AsyncSession,
    runtime: Runtime,
    principal: DepartmentPrincipal,
    request_id: uuid.UUID,
    items: Sequence[str] | None = None,
) -> tuple[ConsentRequest, Card]:
    """The consent in effect for this issuer's read of `items` (default: all it names) and
    the holder's card; records the read (`consent.read`) for the access log.

    :raises ConsentRequired: (403) no such consent of this issuer, not approved, expired,
        revoked, or not naming every item; the refusal is audited first.
    """
    request = await session.get(ConsentRequest, request_id)
    card = None
    if request is not None:
        card = (await session.exec(select(Card).where(Card.person_id == request.person_id))).first()
    wanted = list(items) if items is not None else list(request.items if request else [])
    now = datetime.now(UTC)
    problem = None
    if request is None or request.issuer_id != principal.issuer_id or card is None:
        problem = "no consent request of yours has this id"
    else:
        status = effective_status(request, now)
        if status is not ConsentStatus.approved:
            problem = f"the consent is {status.value}"
        elif not set(wanted) <= set(request.items):
            problem = "the consent does not name: " + ", ".join(
                sorted(set(wanted) - set(request.items))
            )
    if problem is not None:
        if request is not None and card is not None and request.issuer_id == principal.issuer_id:
            await record(
                runtime.store,
                REFUSED_ACTION,
                principal.client_id,
                str(card.id),
                {
                    "consent": str(request.id),
                    "items": wanted,
                    "purpose": request.purpose,
                    "why": problem,
                },
            )
        else:
            await record(
                runtime.store,
                REFUSED_ACTION,
                principal.client_id,
                "",
                {"consent": str(request_id), "why": problem},
            )
        raise ConsentRequired(problem)
    assert request is not None and card is not None
    await record(
        runtime.store,
        READ_ACTION,
        principal.client_id,
        str(card.id),
        {"consent": str(request.id), "items": wanted, "purpose": request.purpose},
    )
    return request, card


def read_attributes(runtime: Runtime, person: Person, items: Sequence[str]) -> dict[str, str]:
    """The card attributes among `items`, opened."""
    out: dict[str, str] = {}
    if Attribute.full_name.value in items:
        out["full_name"] = runtime.pii.open(NAME_FIELD, person.name_sealed)
    if Attribute.document_type.value in items:
        out["document_type"] = person.document_type
    if Attribute.document_number.value in items:
        out["document_number"] = runtime.pii.open(
            DOCUMENT_NUMBER_FIELD, person.document_number_sealed
        )
    return out
