"""Derives access-log entries from persisted audit events (the audit consumer's transaction).

Disclosures, as audit events:

- `verify` with a first outcome (`AUDIT_OUTCOME_FIRST`) of an active card: a valid online
  scan. The card is the one in the store's snapshot (`status`); when the store had none (the
  verify path then read it from SQL), the card is looked up by the event's `handle`.
- `verify.offline`: a valid offline scan an offline verifier uploaded (`app.accesslog.offline`).
- `card.read`: an operator read the holder's record (`subject` is the card id).
- `oidc.login`, `oidc.refresh`, `oidc.userinfo`: a relying party (an app the holder logged in
  to with the card) received claims (`app.oidc.service.audit_disclosure`; `subject` is the
  card id, `data.name` the app's name, `data.attributes` the claims); `oidc.kiosk_scan`: a
  service-hall kiosk read the holder's code to start a sign-in (scene `service_hall_login`,
  nothing disclosed until the holder approves).
- `family.<action>` (`app.family`): a guardian acted for a ward; one entry in each person's
  log (entry ids `<event id>:g` and `<event id>:w`), naming the other person.
- a valid online scan of a token a guardian fetched for a ward (its `cti` is in
  `family_presentations`): the ward's entry names the guardian, and the guardian gets an
  entry too (`<event id>:g`).
- `vault.share_created` / `vault.share_opened`: the holder shared a vault document, and a
  recipient opened the share (downloaded it); `subject` is the card id, the purpose stated
  when sharing is shown as the venue (`app.vault.shares`).
- `vault.issuer_downloaded`: the issuer of a vault document downloaded its file (the employer
  a signed labour contract, `app.vault.push.issuer_file`); the issuer's name is the venue.

Entries carry the event's id as primary key, so a redelivered batch adds nothing twice, and
they are written in the transaction that stores the audit rows, so none is lost either. What
the hot path did not put in the event (organisation name, city, the scanner's name, the card id
for a handle) is looked up here, off the verify path, with one statement per batch (`_look_up`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Dialect,
    Select,
    String,
    Table,
    cast,
    insert,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accesslog.models import AccessLogEntry, AccessSource
from app.audit.chain import (
    AuditRecord,
    any_of,
    any_of_parameter,
    any_of_value,
    bulk_insert,
    stored_time,
)
from app.cards.models import Card, CardStatus
from app.cards.snapshot import snapshot_card
from app.catalog.scenes import default_attribute_names
from app.clients.models import ApiClient, Organisation
from app.family.models import FamilyPresentation
from app.store.base import AUDIT_OUTCOME_FIRST

VERIFY_ACTION = "verify"
OFFLINE_SCAN_ACTION = "verify.offline"
OPERATOR_READ_ACTION = "card.read"
DOCUMENT_SHARED_ACTION = "vault.share_created"
DOCUMENT_OPENED_ACTION = "vault.share_opened"
ISSUER_DOWNLOAD_ACTION = "vault.issuer_downloaded"
VALID_OUTCOME = "valid"
READ_OUTCOME = "read"

_FIRST_OUTCOME = orjson.dumps({"outcome": AUDIT_OUTCOME_FIRST}).decode()[1:-1]
LICENCE_SCAN_ACTION = "licence.presented"
CONSENT_READ_ACTION = "consent.read"
CONSENT_REFUSED_ACTION = "consent.read.refused"
RELYING_PARTY_ACTIONS = frozenset(
    {"oidc.login", "oidc.refresh", "oidc.userinfo", "oidc.kiosk_scan"}
)
_ACTIONS = frozenset(
    {
        VERIFY_ACTION,
        OFFLINE_SCAN_ACTION,
        OPERATOR_READ_ACTION,
        DOCUMENT_SHARED_ACTION,
        DOCUMENT_OPENED_ACTION,
        ISSUER_DOWNLOAD_ACTION,
        LICENCE_SCAN_ACTION,
        CONSENT_READ_ACTION,
        CONSENT_REFUSED_ACTION,
    }
) | (RELYING_PARTY_ACTIONS)
FAMILY_PREFIX = "family."
FAMILY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "qr_shown": ("qr_token",),
    "status_viewed": ("card_status",),
    "access_log_viewed": ("access_log",),
    "loss_reported": ("card_status",),
}
"""What a guardian's action disclosed of the ward (nothing for invitations and endings)."""
_DOCUMENT_OUTCOMES = {
    DOCUMENT_SHARED_ACTION: "shared",
    DOCUMENT_OPENED_ACTION: "downloaded",
    ISSUER_DOWNLOAD_ACTION: "issuer_downloaded",
}


@dataclass(slots=True)  # not frozen: a record of the hot path (docs/architecture.md)
class Disclosure:
    """An access-log entry as the event says it; names and the card are resolved later."""

    event_id: str
    occurred_at: datetime
    source: AccessSource
    actor: str
    card_id: str | None
    """32 lower-case hex digits (`UUID.hex`): the form scans carry it in, kept as text since a
    UUID object per scan cost more than the rest of the entry."""
    handle: str | None
    organisation_id: str | None
    """As the event names it; parsed once per batch (`record_disclosures`)."""
    scene: str | None
    attributes: tuple[str, ...]
    outcome: str
    reader_name: str | None = None
    """Who read, when the event names it (a relying party's display name)."""
    party: str | None = None
    cti: str | None = None
    venue: str | None = None
    """Shown instead of the scanner's name (a share's purpose)."""


def scene_attributes(scene: str | None, data: dict[str, Any]) -> tuple[str, ...]:
    """The attributes the answer carried: the event's list when it names one, otherwise what
    the default catalog discloses for the scene. A scan names the list of the catalog in
    effect at the scan when it differs from the default catalog's (so the usual event stays
    as short as before); an uploaded offline scan names an empty list, its answer having
    carried no attribute.
    """
    listed = data.get("attributes")
    if type(listed) is list and all(type(item) is str for item in listed):
        return tuple(listed)
    return default_attribute_names(scene)


def disclosures(event: AuditRecord) -> list[Disclosure]:
    """The entries an audit event makes (most events make none)."""
    if event.action.startswith(FAMILY_PREFIX):
        return _family(event)
    found = disclosure(event)
    return [] if found is None else [found]


def _family(event: AuditRecord) -> list[Disclosure]:
    try:
        data = orjson.loads(event.data)
        guardian = uuid.UUID(str(data["guardian"])).hex
        ward = uuid.UUID(str(data["ward"])).hex
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
        data = event.data_object()
        if not isinstance(data, dict):
            return None
        if event.action == VERIFY_ACTION:
            return _online_scan(event, data)
        if event.action == OFFLINE_SCAN_ACTION:
            return _offline_scan(event, data)
        if event.action in _DOCUMENT_OUTCOMES:
            return _document_disclosure(event, data)
        if event.action == LICENCE_SCAN_ACTION:
            return _licence_scan(event, data)
        if event.action in {CONSENT_READ_ACTION, CONSENT_REFUSED_ACTION}:
            return _department_read(event, data)
        if event.action in RELYING_PARTY_ACTIONS:
            return _relying_party(event, data)
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
        card_status, card_id = snapshot_card(status)
        if card_status != CardStatus.active:
            return None
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
        str(data["org"]),
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
        str(data["org"]),
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
        uuid.UUID(event.subject).hex,
        None,
        None,
        None,
        tuple(str(item) for item in data.get("attributes", ())),
        READ_OUTCOME,
    )


def _document_disclosure(event: AuditRecord, data: dict[str, Any]) -> Disclosure | None:
    shared = event.action == DOCUMENT_SHARED_ACTION
    return Disclosure(
        event.event_id,
        event.occurred_at,
        AccessSource.document_shared if shared else AccessSource.document_opened,
        event.actor,
        uuid.UUID(event.subject).hex,
        None,
        None,
        None,
        (str(data.get("doc_type", "")), f"document:{data.get('document', '')}"),
        _DOCUMENT_OUTCOMES[event.action],
        venue=str(data.get("purpose", ""))[:200],
    )


def _licence_scan(event: AuditRecord, data: dict[str, Any]) -> Disclosure:
    """A scanner read one e-licence from its presentation QR (`app.licences.presentations`)."""
    return Disclosure(
        event.event_id,
        event.occurred_at,
        AccessSource.licence_scan,
        event.actor,
        uuid.UUID(event.subject).hex,
        None,
        str(data["org"]),
        _text(data.get("scene")),
        tuple(str(item) for item in data.get("attributes", ())),
        VALID_OUTCOME,
    )


def _department_read(event: AuditRecord, data: dict[str, Any]) -> Disclosure:
    """A department read (or tried to read, without a valid consent) the holder's data
    (`app.consents`); `scene` carries the stated purpose."""
    refused = event.action == CONSENT_REFUSED_ACTION
    return Disclosure(
        event.event_id,
        event.occurred_at,
        AccessSource.department_refused if refused else AccessSource.department_read,
        event.actor,
        uuid.UUID(event.subject).hex,
        None,
        None,
        (_text(data.get("purpose")) or "")[:64] or None,
        tuple(str(item) for item in data.get("items", ())),
        "refused" if refused else READ_OUTCOME,
    )


def _relying_party(event: AuditRecord, data: dict[str, Any]) -> Disclosure | None:
    return Disclosure(
        event.event_id,
        event.occurred_at,
        AccessSource.relying_party,
        event.actor,
        uuid.UUID(event.subject).hex,
        None,
        None,
        _text(data.get("scene")),
        tuple(str(item) for item in data.get("attributes", ())),
        event.action.removeprefix("oidc."),
        reader_name=_text(data.get("name")),
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
    organisation_ids = _organisation_ids(found)
    # An event naming no valid organisation id discloses nothing a holder could be shown.
    found = [
        item
        for item in found
        if item.organisation_id is None or item.organisation_id in organisation_ids
    ]
    if not found:
        return 0
    # Core statements on the session's connection: the ORM's per-statement work cost more
    # than these lookups do for a whole batch.
    connection = await session.connection()
    looked = await _look_up(connection, found, set(organisation_ids.values()))
    found = _with_presenters(found, looked.presenters)
    stored: set[str] = set()
    if look_up_stored:
        event_id = _ENTRY_TABLE.c.event_id
        wanted = {item.event_id for item in found}
        statement = select(event_id).where(any_of(connection.dialect, event_id, wanted))
        stored = set((await connection.execute(statement)).scalars())
    fresh = {item.event_id: item for item in found if item.event_id not in stored}
    if not fresh:
        return 0
    cards, organisations, venues = looked.cards, looked.organisations, looked.venues
    insert_rows = _entry_insert(connection.dialect)
    # Per organisation and per attribute list once a batch, not once an entry.
    named = {
        text: (insert_rows.uuid(organisation_id), *organisations.get(organisation_id, ("", "")))
        for text, organisation_id in organisation_ids.items()
    }
    unnamed: tuple[object, str, str] = (None, "", "")
    listed: dict[tuple[str, ...], object] = {}
    rows: list[tuple[object, ...]] = []
    for item in fresh.values():
        card_id = item.card_id
        if card_id is None:
            card_id = cards.get(item.handle or "")
            if card_id is None:
                continue  # no such card (or no longer active): nothing of a holder's shown
        organisation_id, name, region = (
            unnamed if item.organisation_id is None else named[item.organisation_id]
        )
        if item.reader_name is not None:
            name = item.reader_name
        venue = item.venue if item.venue is not None else venues.get(item.actor, item.actor)
        attributes = listed.get(item.attributes)
        if attributes is None:
            attributes = listed[item.attributes] = insert_rows.attributes(list(item.attributes))
        rows.append(
            (
                item.event_id,
                insert_rows.card_id(card_id),
                insert_rows.time(item.occurred_at),
                item.source.value,
                organisation_id,
                name,
                venue,
                item.actor,
                region,
                item.scene,
                attributes,
                item.outcome,
                item.party,
            )
        )
    await bulk_insert(connection, _ENTRY_TABLE.name, _ENTRY_COLUMNS, insert_rows.sql, rows)
    return len(rows)


def _organisation_ids(found: Iterable[Disclosure]) -> dict[str, uuid.UUID]:
    """The organisations `found` names, by their text in the events; text that is no UUID is
    left out."""
    parsed: dict[str, uuid.UUID] = {}
    for text in {item.organisation_id for item in found if item.organisation_id is not None}:
        try:
            parsed[text] = uuid.UUID(text)
        except ValueError:
            continue
    return parsed


_ENTRY_COLUMNS = (
    "event_id",
    "card_id",
    "occurred_at",
    "source",
    "organisation_id",
    "organisation",
    "venue",
    "actor",
    "region_code",
    "scene",
    "attributes",
    "outcome",
    "party",
)
_ENTRY_TABLE: Table = AccessLogEntry.__table__  # type: ignore[attr-defined]
_CONVERTING = frozenset({"card_id", "occurred_at", "organisation_id", "attributes"})
"""The columns whose values `_EntryInsert` converts; the others go to the driver as they are."""


@dataclass(frozen=True, slots=True)
class _EntryInsert:
    """The INSERT of access-log rows in the driver's own terms, for one executemany: ORM
    objects and the unit of work cost about 200 us of CPU per entry in the audit consumer,
    more than everything else it does for a scan together (load/bench_audit.py). Values are
    converted by each column type's own bind processor, as SQLAlchemy would, except a card
    id's hex text where the driver takes it as it is (SQLite stores it so, asyncpg parses
    it)."""

    sql: str
    card_id: Callable[[str], object]
    uuid: Callable[[uuid.UUID], object]
    time: Callable[[datetime], object]
    attributes: Callable[[list[str]], object]


@lru_cache(maxsize=8)
def _entry_insert(dialect: Dialect) -> _EntryInsert:
    compiled = insert(_ENTRY_TABLE).compile(dialect=dialect, column_keys=list(_ENTRY_COLUMNS))
    if compiled.positiontup != list(_ENTRY_COLUMNS):
        raise RuntimeError(f"{dialect.name}: access-log rows need a positional parameter style")
    processors = {
        name: _ENTRY_TABLE.columns[name].type.dialect_impl(dialect).bind_processor(dialect)
        for name in _ENTRY_COLUMNS
    }
    converting = {name for name, process in processors.items() if process is not None}
    if converting - _CONVERTING:
        raise RuntimeError(f"{dialect.name}: access-log columns {converting} convert values")
    to_uuid = processors["card_id"] or _unchanged
    probe = uuid.UUID(int=0x0123456789ABCDEF)
    takes_hex = to_uuid(probe) == probe.hex or (
        processors["card_id"] is None and dialect.driver == "asyncpg"
    )
    return _EntryInsert(
        compiled.string,
        _unchanged if takes_hex else lambda card_id: to_uuid(uuid.UUID(hex=card_id)),
        processors["organisation_id"] or _unchanged,
        stored_time(_ENTRY_TABLE.c.occurred_at, dialect),
        processors["attributes"] or _unchanged,
    )


def _unchanged(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class _Presenter:
    guardian_label: str
    guardian_card_id: str
    ward_card_id: str
    """Card ids as 32 lower-case hex digits."""


@dataclass(frozen=True, slots=True)
class _Looked:
    """What a batch's entries name, from SQL: the guardians who fetched scanned tokens (by
    cti), active cards' ids (hex) by handle, organisations' names and regions, scanners'
    names (by client id)."""

    presenters: dict[str, _Presenter]
    cards: dict[str, str]
    organisations: dict[uuid.UUID, tuple[str, str]]
    venues: dict[str, str]


async def _look_up(
    connection: AsyncConnection, found: list[Disclosure], organisation_ids: set[uuid.UUID]
) -> _Looked:
    """Everything a batch's entries name, in ONE statement (`_LookUp`): each statement costs
    a round trip to the driver and SQLAlchemy's per-statement work, which on SQLite cost
    more CPU than the batch's rows (load/PROFILE.md)."""
    looked = _Looked({}, {}, {}, {})
    actors = {item.actor for item in found}
    if not actors:
        return looked
    look_up = _look_up_statement(connection.dialect)
    parameters = look_up.parameters(
        ctis={item.cti for item in found if item.cti is not None},
        handles={item.handle for item in found if item.card_id is None and item.handle},
        organisations=organisation_ids,
        clients=actors,
    )
    rows: Sequence[Any] = (await connection.exec_driver_sql(look_up.sql, parameters)).all()
    for kind, key, first, second, third in rows:
        if kind == "p":
            looked.presenters[key] = _Presenter(first, _hex(second), _hex(third))
        elif kind == "h":
            looked.cards[key] = _hex(first)
        elif kind == "o":
            looked.organisations[uuid.UUID(key)] = (first, second)
        else:
            looked.venues[key] = first
    return looked


@dataclass(frozen=True, slots=True)
class _LookUp:
    """`_look_up`'s statement, compiled once per dialect: a `UNION ALL` of a select per kind
    (`kind, key, value, value, value`, all text), each filtered by one parameter holding all
    the batch's values (`app.audit.chain.any_of`)."""

    sql: str
    order: tuple[str, ...]
    """The parameters' names in the driver's positional order."""
    columns: Mapping[str, ColumnElement[Any]]
    dialect: Dialect

    def parameters(self, **values: Collection[Any]) -> tuple[object, ...]:
        return tuple(
            any_of_value(self.dialect, self.columns[name], values[name]) for name in self.order
        )


@lru_cache(maxsize=8)
def _look_up_statement(dialect: Dialect) -> _LookUp:
    presented, cards = _PRESENTATIONS.c, _CARDS.c
    organisations, clients = _ORGANISATIONS.c, _CLIENTS.c
    columns: dict[str, ColumnElement[Any]] = {
        "ctis": presented.cti,
        "handles": cards.handle,
        "organisations": organisations.id,
        "clients": clients.client_id,
    }

    def matching(name: str) -> ColumnElement[bool]:
        return any_of_parameter(dialect, columns[name], name)

    statement = union_all(
        _row(
            "p",
            presented.cti,
            presented.guardian_label,
            presented.guardian_card_id,
            presented.ward_card_id,
        ).where(matching("ctis")),
        _row("h", cards.handle, cards.id)
        .where(matching("handles"))
        .where(cards.status == literal_column(f"'{CardStatus.active.value}'")),
        _row("o", organisations.id, organisations.name, organisations.region_code).where(
            matching("organisations")
        ),
        _row("c", clients.client_id, clients.name).where(matching("clients")),
    )
    compiled = statement.compile(dialect=dialect)
    order = tuple(compiled.positiontup or ())
    if set(order) != set(columns) or len(order) != len(columns):
        raise RuntimeError(f"{dialect.name}: the access-log lookup needs positional parameters")
    return _LookUp(compiled.string, order, columns, dialect)


def _row(
    kind: str, key: ColumnElement[Any], *values: ColumnElement[Any]
) -> Select[str, str, str, str, str]:
    """A select of `(kind, key, value, value, value)`, all text, for `_look_up`'s union."""
    first, second, third = [cast(value, String) for value in values] + [null().cast(String)] * (
        3 - len(values)
    )
    return select(literal_column(f"'{kind}'", String), cast(key, String), first, second, third)


def _hex(card_id: str) -> str:
    """A card id as the union gives it (hex on SQLite, dashed on PostgreSQL), as 32 hex."""
    return uuid.UUID(card_id).hex


def _with_presenters(
    found: list[Disclosure], presenters: dict[str, _Presenter]
) -> list[Disclosure]:
    """Online scans of tokens a guardian fetched for a ward: the ward's entry names the
    guardian, and the guardian's log gets the scan too."""
    if not presenters:
        return found
    result: list[Disclosure] = []
    for item in found:
        presented = presenters.get(item.cti or "")
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


_PRESENTATIONS: Table = FamilyPresentation.__table__  # type: ignore[attr-defined]
_CARDS: Table = Card.__table__  # type: ignore[attr-defined]
_ORGANISATIONS: Table = Organisation.__table__  # type: ignore[attr-defined]
_CLIENTS: Table = ApiClient.__table__  # type: ignore[attr-defined]
