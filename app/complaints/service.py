"""Filing, tracking and handling complaints.

Who may do what is decided before these functions run (`api.auth`'s route families and
`app.security.roles.require_region` on the complaint's region); here are the rules of the
complaint itself: the steps open -> assigned -> answered -> closed, each one a timeline entry
and an audit event (`complaint.<step>`, subject: the complaint id, never the tracking number).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.models import Card
from app.complaints.errors import ComplaintClosed, ComplaintNotFound, ContactRequired
from app.complaints.models import (
    Complaint,
    ComplaintEvent,
    ComplaintKind,
    ComplaintStatus,
    ComplaintStep,
)
from app.security.pii import PiiCipher
from app.store import Store

TRACKING_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base 32 (no I, L, O, U): read over the phone without confusion."""
TRACKING_LENGTH = 12
"""12 characters of 5 bits: 2^60 numbers, unguessable at any rate the limits allow."""
TRACKING_INDEX_FIELD = "complaint_tracking"
ANONYMOUS = "anonymous"


def new_tracking_number() -> str:
    return "".join(secrets.choice(TRACKING_ALPHABET) for _ in range(TRACKING_LENGTH))


def normalise_tracking_number(text: str) -> str:
    """As read back by a person: case, spaces and dashes do not matter; O is 0, I and L are 1."""
    cleaned = text.upper().replace("-", "").replace(" ", "")
    return cleaned.translate(str.maketrans("OIL", "011"))


def tracking_index(pii: PiiCipher, tracking_number: str) -> str:
    return pii.blind_index(TRACKING_INDEX_FIELD, normalise_tracking_number(tracking_number))


@dataclass(frozen=True, slots=True)
class ComplaintForm:
    kind: ComplaintKind
    details: str
    contact: str | None = None
    region_code: str | None = None
    access_log_ref: str | None = None


@dataclass(frozen=True, slots=True)
class FiledComplaint:
    complaint: Complaint
    tracking_number: str
    """Exists in clear only here: the complainant's capability to read the complaint."""


@dataclass(frozen=True, slots=True)
class ComplaintView:
    complaint: Complaint
    details: str
    contact: str | None
    timeline: Sequence[ComplaintEvent]


@dataclass(frozen=True, slots=True)
class ComplaintFilter:
    status: ComplaintStatus | None = None
    kind: ComplaintKind | None = None
    region_code: str | None = None
    assignee: str | None = None
    limit: int = 100


async def file_complaint(
    session: AsyncSession,
    store: Store,
    pii: PiiCipher,
    form: ComplaintForm,
    *,
    card_id: uuid.UUID | None = None,
) -> FiledComplaint:
    """A holder (`card_id`) or anyone with a contact files a complaint. Without a region, a
    holder's complaint is about the card's region.

    :raises ContactRequired: an anonymous complaint without a contact.
    """
    if card_id is None and not form.contact:
        raise ContactRequired("an anonymous complaint needs a contact for the answer")
    region = form.region_code
    if region is None and card_id is not None:
        card = await session.get(Card, card_id)
        region = card.region_code if card is not None else None
    tracking_number = new_tracking_number()
    complaint = Complaint(
        tracking_index=tracking_index(pii, tracking_number),
        kind=form.kind.value,
        region_code=region,
        card_id=card_id,
        access_log_ref=form.access_log_ref,
        details_sealed=pii.seal("complaint_details", form.details),
        contact_sealed=pii.seal("complaint_contact", form.contact) if form.contact else None,
    )
    session.add(complaint)
    await session.flush()
    actor = ANONYMOUS if card_id is None else f"holder:{card_id}"
    await _step(session, store, complaint, ComplaintStep.filed, actor)
    return FiledComplaint(complaint, tracking_number)


async def _step(
    session: AsyncSession,
    store: Store,
    complaint: Complaint,
    step: ComplaintStep,
    actor: str,
    *,
    note: str | None = None,
    data: dict[str, str] | None = None,
) -> None:
    session.add(ComplaintEvent(complaint_id=complaint.id, step=step.value, actor=actor, note=note))
    await session.flush()
    audit = {"kind": complaint.kind, "region": complaint.region_code or "", **(data or {})}
    await record(store, f"complaint.{step.value}", actor, str(complaint.id), audit)


async def view(session: AsyncSession, pii: PiiCipher, complaint: Complaint) -> ComplaintView:
    statement = (
        select(ComplaintEvent)
        .where(ComplaintEvent.complaint_id == complaint.id)
        .order_by(col(ComplaintEvent.created_at), col(ComplaintEvent.id))
    )
    timeline = (await session.exec(statement)).all()
    contact = (
        pii.open("complaint_contact", complaint.contact_sealed)
        if complaint.contact_sealed is not None
        else None
    )
    return ComplaintView(
        complaint, pii.open("complaint_details", complaint.details_sealed), contact, timeline
    )


async def by_tracking_number(
    session: AsyncSession, pii: PiiCipher, tracking_number: str
) -> Complaint:
    """:raises ComplaintNotFound:"""
    statement = select(Complaint).where(
        Complaint.tracking_index == tracking_index(pii, tracking_number)
    )
    complaint = (await session.exec(statement)).first()
    if complaint is None:
        raise ComplaintNotFound("no complaint has this tracking number")
    return complaint


async def get_complaint(session: AsyncSession, complaint_id: uuid.UUID) -> Complaint:
    """:raises ComplaintNotFound:"""
    complaint = await session.get(Complaint, complaint_id)
    if complaint is None:
        raise ComplaintNotFound(f"no complaint {complaint_id}")
    return complaint


async def holder_complaints(
    session: AsyncSession, card_id: uuid.UUID, limit: int = 100
) -> Sequence[Complaint]:
    statement = (
        select(Complaint)
        .where(Complaint.card_id == card_id)
        .order_by(col(Complaint.created_at).desc(), col(Complaint.id))
        .limit(limit)
    )
    return (await session.exec(statement)).all()


async def list_complaints(session: AsyncSession, where: ComplaintFilter) -> Sequence[Complaint]:
    """Newest first."""
    statement = select(Complaint)
    if where.status is not None:
        statement = statement.where(Complaint.status == where.status.value)
    if where.kind is not None:
        statement = statement.where(Complaint.kind == where.kind.value)
    if where.region_code is not None:
        statement = statement.where(Complaint.region_code == where.region_code)
    if where.assignee is not None:
        statement = statement.where(Complaint.assignee == where.assignee)
    statement = statement.order_by(col(Complaint.created_at).desc(), col(Complaint.id)).limit(
        where.limit
    )
    return (await session.exec(statement)).all()


def _open(complaint: Complaint) -> None:
    if complaint.status == ComplaintStatus.closed.value:
        raise ComplaintClosed("the complaint is closed")


async def assign(
    session: AsyncSession, store: Store, actor: str, complaint: Complaint, assignee: str
) -> Complaint:
    """(Re)assigns an open complaint; an answered one stays answered.

    :raises ComplaintClosed:
    """
    _open(complaint)
    complaint.assignee = assignee
    if complaint.status == ComplaintStatus.open.value:
        complaint.status = ComplaintStatus.assigned.value
    return await _save(session, store, complaint, ComplaintStep.assigned, actor, assignee=assignee)


async def answer(
    session: AsyncSession, store: Store, actor: str, complaint: Complaint, text: str
) -> Complaint:
    """The answer the complainant reads; a later answer replaces it (both stay in the timeline).

    :raises ComplaintClosed:
    """
    _open(complaint)
    complaint.answer = text
    complaint.status = ComplaintStatus.answered.value
    if complaint.assignee is None:
        complaint.assignee = actor
    return await _save(session, store, complaint, ComplaintStep.answered, actor, note=text)


async def close(
    session: AsyncSession, store: Store, actor: str, complaint: Complaint, note: str | None
) -> Complaint:
    """:raises ComplaintClosed: it is closed already."""
    _open(complaint)
    complaint.status = ComplaintStatus.closed.value
    return await _save(session, store, complaint, ComplaintStep.closed, actor, note=note)


async def _save(
    session: AsyncSession,
    store: Store,
    complaint: Complaint,
    step: ComplaintStep,
    actor: str,
    *,
    note: str | None = None,
    assignee: str | None = None,
) -> Complaint:
    complaint.updated_at = datetime.now(UTC)
    session.add(complaint)
    await session.flush()
    data = {"assignee": assignee} if assignee is not None else None
    await _step(session, store, complaint, step, actor, note=note, data=data)
    return complaint
