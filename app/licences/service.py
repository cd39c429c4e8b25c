"""Linking e-licences: a department pushes a signed licence (one, or thousands as JSON Lines).

Per push, in this order: the signature against the issuer's active keys
(`app.departments.service.verify_signed`), the signed content (`LicencePayload`), the
issuer's right to the type, the holder found through the blind index of their document
(unknown: 404, never a guess; and the name must be theirs), then the version rules:

- (issuer, document id, version) already held with the same signed bytes: `unchanged`
  (a retry is harmless); with other bytes: 409 `licence-version-conflict`;
- an older version than the one held: 409 `licence-version-stale` (pushes come in order);
- a newer one replaces it (status changes are new versions: suspended, revoked, expired).

The signed string is kept verbatim (sealed: it names the holder). A licence type that mirrors
a card entitlement (elderly, disability, veteran) grants it while the licence is valid and
clears it otherwise; after the commit the holder's card snapshot is republished, so every
worker's verify path shows the change at once (`app.cards.entitlements`).

A bulk push runs each line in a savepoint of one transaction: a bad line rolls back only
itself and is reported; the good lines commit together (or, if the commit fails, none does
and the request answers 503: nothing half-written, nothing acknowledged that is not stored).
The `licence.push` audit events are appended after the commit, so none names a licence that
was never stored.
"""

from __future__ import annotations

import base64
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import record
from app.cards.documents import validate_document
from app.cards.entitlements import mirror_entitlement, republish_holder
from app.cards.models import Card, Person
from app.cards.service import NAME_FIELD, document_index
from app.china_time import CHINA_STANDARD_TIME, today_in_china
from app.departments.errors import TypeNotIssued
from app.departments.models import Issuer, IssuerKey
from app.departments.service import issuer_keys, require_issuable, signature_state, verify_with
from app.departments.types import DOCUMENT_TYPES, DocumentFamily
from app.errors import DomainError
from app.licences.errors import (
    HolderMismatch,
    HolderNotFound,
    InvalidBulk,
    LicenceNotFound,
    LicenceVersionConflict,
    StaleLicenceVersion,
)
from app.licences.models import Licence, LicenceStatus
from app.licences.payload import LicencePayload
from app.runtime import Runtime
from app.security.principals import DepartmentPrincipal

SIGNED_FIELD = "licence"
"""The PII field (AES-GCM associated data) the signed originals are sealed under."""
PUSH_ACTION = "licence.push"
_NO_EXPIRY = datetime(2099, 12, 31, tzinfo=UTC)


class PushResult(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"


@dataclass(frozen=True, slots=True)
class Pushed:
    licence_id: uuid.UUID
    result: PushResult
    document_id: str
    version: int
    status: str


@dataclass(frozen=True, slots=True)
class LineOutcome:
    line: int
    pushed: Pushed | None = None
    error: DomainError | None = None


@dataclass
class _Batch:
    """What one request pushes: the issuer and its keys (read once), and the holders whose
    card snapshots must be republished after the commit."""

    issuer: Issuer | None
    keys: Sequence[IssuerKey]
    republish: set[uuid.UUID] = field(default_factory=set)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """`licence.push` events (subject, data), appended to the audit stream after the commit:
    a push whose commit fails leaves no event for a licence that was never stored."""


async def _after_commit(runtime: Runtime, principal: DepartmentPrincipal, batch: _Batch) -> None:
    for subject, data in batch.events:
        await record(runtime.store, PUSH_ACTION, principal.client_id, subject, data)
    for person_id in batch.republish:
        await republish_holder(runtime, person_id)


def _signed_payload(keys: Sequence[IssuerKey], compact: str) -> tuple[LicencePayload, str]:
    """The verified content and the kid of the key that signed it."""
    verified = verify_with(keys, compact, ingest=True)
    return LicencePayload.of(verified.payload), verified.kid


async def _holder(session: AsyncSession, runtime: Runtime, payload: LicencePayload) -> Person:
    document = validate_document(payload.holder.document_type, payload.holder.document_number)
    index = document_index(runtime.pii, document.doc_type, document.number)
    person = (await session.exec(select(Person).where(Person.document_index == index))).first()
    if person is None:
        raise HolderNotFound("no card holder has the document this licence names")
    if _name(runtime.pii.open(NAME_FIELD, person.name_sealed)) != _name(payload.holder.name):
        raise HolderMismatch("the licence's holder name is not the name of the document's holder")
    return person


def _name(name: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", name).split())


def entitlement_until(payload: LicencePayload, today: date) -> datetime | None:
    """Until when a licence of an entitlement-mirroring type grants its entitlement: the end
    of `valid_until` (China time), or None when it grants nothing now (not valid, not yet
    valid, or expired)."""
    if payload.status is not LicenceStatus.valid or payload.valid_from > today:
        return None
    if payload.valid_until is None:
        return _NO_EXPIRY
    if payload.valid_until < today:
        return None
    return datetime.combine(payload.valid_until + timedelta(days=1), time(), CHINA_STANDARD_TIME)


async def _ingest(
    session: AsyncSession,
    runtime: Runtime,
    principal: DepartmentPrincipal,
    batch: _Batch,
    compact: str,
) -> Pushed:
    """One push in the caller's transaction (or savepoint)."""
    if not isinstance(compact, str):
        raise InvalidBulk("`signed` must be the JWS compact string")
    payload, kid = _signed_payload(batch.keys, compact)
    spec = DOCUMENT_TYPES.get(payload.type)
    if spec is None or spec.family is not DocumentFamily.licence:
        raise TypeNotIssued(f"{payload.type[:40]!r} is not a licence type")
    issuer = batch.issuer or await require_issuable(session, principal, payload.type)
    batch.issuer = issuer
    if payload.type not in issuer.issued_types or not principal.may_issue(payload.type):
        raise TypeNotIssued(f"{issuer.code} may not issue {payload.type}")
    if payload.issuer != issuer.code:
        raise TypeNotIssued(
            f"the licence is signed for issuer {payload.issuer!r}, not {issuer.code}"
        )
    person = await _holder(session, runtime, payload)
    statement = (
        select(Licence)
        .where(Licence.issuer_id == issuer.id, Licence.document_id == payload.document_id)
        .with_for_update()
    )
    licence = (await session.exec(statement)).first()
    if licence is None:
        licence = Licence(
            issuer_id=issuer.id,
            person_id=person.id,
            document_type=payload.type,
            document_id=payload.document_id,
            version=payload.version,
            status=payload.status.value,
            valid_from=payload.valid_from,
            valid_until=payload.valid_until,
            kid=kid,
            signed_sealed=runtime.pii.seal(SIGNED_FIELD, compact),
        )
        result = PushResult.created
    elif payload.version == licence.version:
        if runtime.pii.open(SIGNED_FIELD, licence.signed_sealed) != compact:
            raise LicenceVersionConflict(
                f"version {payload.version} of {payload.document_id} was pushed with other "
                "content: a change is a new version",
                current_version=licence.version,
            )
        return Pushed(
            licence.id, PushResult.unchanged, licence.document_id, licence.version, licence.status
        )
    elif payload.version < licence.version:
        raise StaleLicenceVersion(
            f"version {payload.version} of {payload.document_id} is older than the linked "
            f"version {licence.version}",
            current_version=licence.version,
        )
    else:
        if licence.person_id != person.id or licence.document_type != payload.type:
            raise LicenceVersionConflict(
                "a new version may not change the licence's holder or type",
                current_version=licence.version,
            )
        licence.version, licence.status = payload.version, payload.status.value
        licence.valid_from, licence.valid_until = payload.valid_from, payload.valid_until
        licence.kid, licence.updated_at = kid, datetime.now(UTC)
        licence.signed_sealed = runtime.pii.seal(SIGNED_FIELD, compact)
        result = PushResult.updated
    session.add(licence)
    try:
        await session.flush()
    except IntegrityError:
        raise LicenceVersionConflict(
            f"{payload.document_id} was pushed concurrently: retry"
        ) from None
    if spec.entitlement is not None:
        changed = await mirror_entitlement(
            session,
            person.id,
            spec.entitlement,
            entitlement_until(payload, today_in_china()),
            f"licence:{licence.id}",
        )
        if changed:
            batch.republish.add(person.id)
    batch.events.append(
        (
            str(licence.id),
            {
                "issuer": issuer.code,
                "type": payload.type,
                "document_id": payload.document_id,
                "version": payload.version,
                "status": payload.status.value,
                "result": result.value,
            },
        )
    )
    return Pushed(licence.id, result, licence.document_id, licence.version, licence.status)


async def _begin_push(session: AsyncSession, principal: DepartmentPrincipal) -> _Batch:
    """Starts a push's transaction with a write: the issuer's row, locked (a no-op update), so
    that one issuer's pushes are serialised (two versions of one document cannot race) and,
    on SQLite, the transaction holds the write lock before it reads anything (a read snapshot
    that must later become a write fails at once if another connection committed meanwhile)."""
    await session.exec(
        update(Issuer).where(col(Issuer.id) == principal.issuer_id).values(code=Issuer.code)
    )
    return _Batch(None, await issuer_keys(session, principal.issuer_id))


async def push_licence(runtime: Runtime, principal: DepartmentPrincipal, compact: str) -> Pushed:
    """:raises SignatureRejected, InvalidLicence, TypeNotIssued, InvalidDocument,
    HolderNotFound, HolderMismatch, StaleLicenceVersion, LicenceVersionConflict:
    """
    async with runtime.database.session() as session:
        batch = await _begin_push(session, principal)
        pushed = await _ingest(session, runtime, principal, batch, compact)
    await _after_commit(runtime, principal, batch)
    return pushed


def parse_lines(body: bytes, max_lines: int) -> list[tuple[int, Any]]:
    """The JSON Lines of a bulk push: (line number, `signed` value or the error) per line that
    is not blank.

    :raises InvalidBulk: for a body that is not UTF-8 or has more than `max_lines` lines.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidBulk("the body is not UTF-8") from None
    lines = text.split("\n")
    numbered = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise InvalidBulk("the body has no line")
    if len(numbered) > max_lines:
        raise InvalidBulk(f"at most {max_lines} lines per request", max_lines=max_lines)
    parsed: list[tuple[int, Any]] = []
    for number, line in numbered:
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            parsed.append((number, InvalidBulk(f"line {number} is not JSON")))
            continue
        if not isinstance(value, dict) or set(value) != {"signed"}:
            parsed.append(
                (number, InvalidBulk(f'line {number} is not an object {{"signed": "<JWS>"}}'))
            )
            continue
        parsed.append((number, value["signed"]))
    return parsed


async def push_bulk(
    runtime: Runtime, principal: DepartmentPrincipal, lines: list[tuple[int, Any]]
) -> list[LineOutcome]:
    """Each line in its own savepoint: bad lines are reported and leave nothing behind."""
    outcomes: list[LineOutcome] = []
    async with runtime.database.session() as session:
        batch = await _begin_push(session, principal)
        for number, value in lines:
            if isinstance(value, DomainError):
                outcomes.append(LineOutcome(number, error=value))
                continue
            republish_before, events_before = set(batch.republish), len(batch.events)
            try:
                async with session.begin_nested():
                    pushed = await _ingest(session, runtime, principal, batch, value)
            except DomainError as error:
                batch.republish = republish_before
                del batch.events[events_before:]
                outcomes.append(LineOutcome(number, error=error))
                continue
            outcomes.append(LineOutcome(number, pushed=pushed))
    await _after_commit(runtime, principal, batch)
    return outcomes


# --- reads ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verification:
    """A licence's state computed now."""

    signature_valid: bool
    key_trusted: bool
    status: str
    expired: bool
    verified: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class LicenceView:
    licence: Licence
    issuer: Issuer
    payload: LicencePayload
    verification: Verification


def verification_of(
    keys: Sequence[IssuerKey], compact: str, payload: LicencePayload, today: date
) -> Verification:
    state = signature_state(keys, compact)
    key_trusted = state.valid or state.reason not in {"key_revoked", "unknown_key"}
    expired = payload.status is LicenceStatus.expired or (
        payload.valid_until is not None and payload.valid_until < today
    )
    not_yet = payload.valid_from > today
    status = LicenceStatus.expired.value if expired else payload.status.value
    verified = state.valid and status == LicenceStatus.valid.value and not not_yet
    reason = None
    if not state.valid:
        reason = state.reason
    elif expired:
        reason = "expired"
    elif payload.status is not LicenceStatus.valid:
        reason = payload.status.value
    elif not_yet:
        reason = "not_yet_valid"
    return Verification(state.valid, key_trusted and state.valid, status, expired, verified, reason)


async def _view(
    session: AsyncSession, runtime: Runtime, licence: Licence, today: date
) -> LicenceView:
    issuer = await session.get(Issuer, licence.issuer_id)
    assert issuer is not None, "licences reference their issuer"
    keys = await issuer_keys(session, issuer.id)
    compact = runtime.pii.open(SIGNED_FIELD, licence.signed_sealed)
    payload = LicencePayload.of(orjson.loads(_payload_bytes(compact)))
    return LicenceView(licence, issuer, payload, verification_of(keys, compact, payload, today))


def _payload_bytes(compact: str) -> bytes:
    part = compact.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def holder_licences(
    session: AsyncSession, runtime: Runtime, person_id: uuid.UUID
) -> list[LicenceView]:
    statement = (
        select(Licence)
        .where(Licence.person_id == person_id)
        .order_by(col(Licence.created_at), col(Licence.id))
    )
    today = today_in_china()
    return [
        await _view(session, runtime, licence, today)
        for licence in (await session.exec(statement)).all()
    ]


async def holder_licence(
    session: AsyncSession, runtime: Runtime, person_id: uuid.UUID, licence_id: uuid.UUID
) -> LicenceView:
    """:raises LicenceNotFound: also for another holder's licence (nothing to probe)."""
    licence = await session.get(Licence, licence_id)
    if licence is None or licence.person_id != person_id:
        raise LicenceNotFound(f"no licence {licence_id}")
    return await _view(session, runtime, licence, today_in_china())


async def licence_signed_original(session: AsyncSession, runtime: Runtime, licence: Licence) -> str:
    return runtime.pii.open(SIGNED_FIELD, licence.signed_sealed)


async def holder_person(session: AsyncSession, card_id: uuid.UUID) -> uuid.UUID:
    """The person behind a holder's card.

    :raises LicenceNotFound: for a card that no longer exists (nothing to show).
    """
    card = await session.get(Card, card_id)
    if card is None:
        raise LicenceNotFound("no card behind this session")
    return card.person_id


async def licences_of_types(
    session: AsyncSession, runtime: Runtime, person_id: uuid.UUID, types: Sequence[str]
) -> list[LicenceView]:
    """The holder's licences of these types (a consent read), each verified now."""
    return [
        view
        for view in await holder_licences(session, runtime, person_id)
        if view.licence.document_type in types
    ]
