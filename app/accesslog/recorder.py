"""Derives access-log entries from persisted audit events (the audit consumer's transaction).

Disclosures, as audit events:

- `verify` with a first outcome (`AUDIT_OUTCOME_FIRST`) of an active card: a valid online
  scan. The card is the one in the store's snapshot (`status`); when the store had none (the
  verify path then read it from SQL), the card is looked up by the event's `handle`.
- `verify.offline`: a valid offline scan an offline verifier uploaded (`app.accesslog.offline`).
- `card.read`: an operator read the holder's record (`subject` is the card id).
- `family.<action>` (`app.family`): a guardian acted for a ward; one entry in each person's
  log (entry ids `<event id>:g` and `<event id>:w`), naming the other person.
- a valid online scan of a token a guardian fetched for a ward (its `cti` is in
  `family_presentations`): the ward's entry names the guardian, and the guardian gets an
  entry too (`<event id>:g`).

Entries carry the event's id as primary key, so a redelivered batch adds nothing twice, and
they are written in the transaction that stores the audit rows, so none is lost either. What
the hot path did not put in the event (organisation name, city, the scanner's name, the card id
for a handle) is looked up here, off the verify path, with one query per kind and batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accesslog.models import AccessLogEntry, AccessSource
from app.audit.chain import AuditRecord
from app.cards.models import Card, CardStatus
from app.cards.snapshot import CardSnapshot
from app.catalog.scenes import BASE_ATTRIBUTES, SCENES
from app.clients.models import ApiClient, Organisation
from app.family.models import FamilyPresentation
from app.store.base import AUDIT_OUTCOME_FIRST

VERIFY_ACTION = "verify"
OFFLINE_SCAN_ACTION = "verify.offline"
OPERATOR_READ_ACTION = "card.read"
VALID_OUTCOME = "valid"
READ_OUTCOME = "read"

_FIRST_OUTCOME = orjson.dumps({"outcome": AUDIT_OUTCOME_FIRST}).decode()[1:-1]
_ACTIONS = frozenset({VERIFY_ACTION, OFFLINE_SCAN_ACTION, OPERATOR_READ_ACTION})
FAMILY_PREFIX = "family."
FAMILY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "qr_shown": ("qr_token",),
    "status_viewed": ("card_status",),
    "access_log_viewed": ("access_log",),
    "loss_reported": ("card_status",),
}
"""What a guardian's action disclosed of the ward (nothing for invitations and endings)."""


@dataclass(frozen=True, slots=True)
class Disclosure:
    """An access-log entry as the event says it; names and the card are resolved later."""

    event_id: str
    occurred_at: datetime
    source: AccessSource
    actor: str
    card_id: uuid.UUID | None
    handle: str | None
    organisation_id: uuid.UUID | None
    scene: str | None
    attributes: tuple[str, ...]
    outcome: str
    party: str | None = None
    cti: str | None = None


def scene_attributes(scene: str | None, data: dict[str, Any]) -> tuple[str, ...]:
    """The attributes the answer carried: the event's list when it has one, otherwise what
    the scene's catalog entry discloses (the base attributes for no or an unknown scene)."""
    listed = data.get("attributes")
    if isinstance(listed, list) and all(isinstance(item, str) for item in listed):
        return tuple(listed)
    catalogued = None if scene is None else SCENES.get(scene)
    allowed = BASE_ATTRIBUTES if catalogued is None else catalogued.attributes
    return tuple(sorted(allowed))


def disclosures(event: AuditRecord) -> list[Disclosure]:
    """The entries an audit event makes (most events make none)."""
    if event.action.startswith(FAMILY_PREFIX):
        return _family(event)
    found = disclosure(event)
    return [] if found is None else [found]


def _family(event: AuditRecord) -> list[Disclosure]:
    try:
        data = orjson.loads(event.data)
        guardian = uuid.UUID(str(data["guardian"]))
        ward = uuid.UUID(str(data["ward"]))
        labels = (str(data.get("guardian_label", "")), str(data.get("ward_label", "")))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return []
    action = event.action.removeprefix(FAMILY_PREFIX)
    attributes = FAMILY_ATTRIBUTES.get(action, ())
    return [
        Disclosure(
            f"{event.event_id}:{side}",
            event.occurred_at,
            AccessSource.family,
            event.actor,
            card_id,
            None,
            None,
            None,
            attributes,
            action,
            party=party,
        )
        for side, card_id, party in (("g", guardian, labels[1]), ("w", ward, labels[0]))
    ]


def disclosure(event: AuditRecord) -> Disclosure | None:
    """The disclosure an audit event records, or None (most events disclose nothing)."""
    if event.action not in _ACTIONS:
        return None
    if event.action == VERIFY_ACTION and _FIRST_OUTCOME not in event.data:
        return None  # refused, replayed: nothing was disclosed (and no JSON parsed)
    try:
        data = orjson.loads(event.data)
        if not isinstance(data, dict):
            return None
        if event.action == VERIFY_ACTION:
            return _online_scan(event, data)
        if event.action == OFFLINE_SCAN_ACTION:
            return _offline_scan(event, data)
        return _operator_read(event, data)
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        return None


def _online_scan(event: AuditRecord, data: dict[str, Any]) -> Disclosure | None:
    if data.get("outcome") != AUDIT_OUTCOME_FIRST:
        return None
    card_id = None
    handle = _text(data.get("handle"))
    status = _text(data.get("status"))
    if status:
        snapshot = CardSnapshot.decode(status.encode())
        if snapshot.status is not CardStatus.active:
            return None
        card_id = snapshot.card_id
    elif handle is None or ":" in handle:
        return None  # another issuer's card, or nothing to find the card by
    scene = _text(data.get("scene"))
    return Disclosure(
        event.event_id,
        event.occurred_at,
        AccessSource.online_scan,
        event.actor,
        card_id,
        handle,
        uuid.UUID(str(data["org"])),
        scene,
        scene_attributes(scene, data),
        VALID_OUTCOME,
        cti=_text(data.get("cti")),
    )


def _offline_scan(event: AuditRecord, data: dict[str, Any]) -> Disclosure | None:
    handle = _text(data.get("handle"))
    if handle is None or data.get("verdict") != VALID_OUTCOME:
        return None
    scene = _text(data.get("scene"))
    scanned_at = datetime.fromisoformat(str(data["scanned_at"]))
    return Disclosure(
        event.event_id,
        scanned_at,
        AccessSource.offline_scan,
        event.actor,
        None,
        handle,
        uuid.UUID(str(data["org"])),
        scene,
        scene_attributes(scene, data),
        VALID_OUTCOME,
    )


def _operator_read(event: AuditRecord, data: dict[str, Any]) -> Disclosure | None:
    return Disclosure(
        event.event_id,
        event.occurred_at,
        AccessSource.operator_read,
        event.actor,
        uuid.UUID(event.subject),
        None,
        None,
        None,
        tuple(str(item) for item in data.get("attributes", ())),
        READ_OUTCOME,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


async def record_disclosures(
    session: AsyncSession, events: Sequence[AuditRecord], *, look_up_stored: bool = True
) -> int:
    """Adds the access-log entries of `events` not stored yet, in the caller's transaction;
    returns how many were added. `look_up_stored=False` when the caller knows none is (it
    stored every event's audit row just now, in this transaction)."""
    found = [item for event in events for item in disclosures(event)]
    if not found:
        return 0
    found = await _with_presenters(session, found)
    stored: set[str] = set()
    if look_up_stored:
        wanted = {item.event_id for item in found}
        statement = select(AccessLogEntry.event_id).where(col(AccessLogEntry.event_id).in_(wanted))
        stored = set((await session.exec(statement)).all())
    fresh = {item.event_id: item for item in found if item.event_id not in stored}
    if not fresh:
        return 0
    cards = await _cards_by_handle(session, {i.handle for i in fresh.values() if i.card_id is None})
    organisations = await _organisations(
        session, {i.organisation_id for i in fresh.values() if i.organisation_id is not None}
    )
    venues = await _client_names(session, {item.actor for item in fresh.values()})
    entries: list[AccessLogEntry] = []
    for item in fresh.values():
        card_id = item.card_id
        if card_id is None:
            card_id = cards.get(item.handle or "")
            if card_id is None:
                continue  # no such card (or no longer active): nothing of a holder's shown
        name, region = organisations.get(item.organisation_id, ("", ""))
        entries.append(
            AccessLogEntry(
                event_id=item.event_id,
                card_id=card_id,
                occurred_at=item.occurred_at,
                source=item.source.value,
                organisation_id=item.organisation_id,
                organisation=name,
                venue=venues.get(item.actor, item.actor),
                actor=item.actor,
                region_code=region,
                scene=item.scene,
                attributes=list(item.attributes),
                outcome=item.outcome,
                party=item.party,
            )
        )
    session.add_all(entries)
    await session.flush()
    return len(entries)


async def _with_presenters(session: AsyncSession, found: list[Disclosure]) -> list[Disclosure]:
    """Online scans of tokens a guardian fetched for a ward: the ward's entry names the
    guardian, and the guardian's log gets the scan too (one query per batch)."""
    ctis = {item.cti for item in found if item.cti is not None}
    if not ctis:
        return found
    rows = (
        await session.exec(select(FamilyPresentation).where(col(FamilyPresentation.cti).in_(ctis)))
    ).all()
    if not rows:
        return found
    by_cti = {row.cti: row for row in rows}
    result: list[Disclosure] = []
    for item in found:
        presented = by_cti.get(item.cti or "")
        if presented is None:
            result.append(item)
            continue
        ward = replace(item, party=presented.guardian_label, card_id=presented.ward_card_id)
        guardian = replace(
            item,
            event_id=f"{item.event_id}:g",
            card_id=presented.guardian_card_id,
            handle=None,
            party=presented.guardian_label,
        )
        result.extend((ward, guardian))
    return result


async def _cards_by_handle(
    session: AsyncSession, handles: Iterable[str | None]
) -> dict[str, uuid.UUID]:
    """Active cards by handle (a scan of a card the store did not know, or an offline scan)."""
    wanted = {handle for handle in handles if handle}
    if not wanted:
        return {}
    rows = await session.exec(
        select(Card.handle, Card.id)
        .where(col(Card.handle).in_(wanted))
        .where(Card.status == CardStatus.active)
    )
    return {handle: card_id for handle, card_id in rows.all()}


async def _organisations(
    session: AsyncSession, ids: set[uuid.UUID]
) -> dict[uuid.UUID | None, tuple[str, str]]:
    if not ids:
        return {}
    rows = await session.exec(
        select(Organisation.id, Organisation.name, Organisation.region_code).where(
            col(Organisation.id).in_(ids)
        )
    )
    return {row[0]: (row[1], row[2]) for row in rows.all()}


async def _client_names(session: AsyncSession, client_ids: set[str]) -> dict[str, str]:
    rows = await session.exec(
        select(ApiClient.client_id, ApiClient.name).where(col(ApiClient.client_id).in_(client_ids))
    )
    return {client_id: name for client_id, name in rows.all()}
