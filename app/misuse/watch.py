"""Feeds persisted verify events to the misuse detector, off the verify hot path.

The audit consumer calls `MisuseWatch.on_persisted` with each batch it stored. A verify event
that claimed a token of an active card (a `valid` verdict) is a sighting of that card. The last
sighting per card and the per-minute scan counts live in the store with short lifetimes, so
the consumers of every worker share them. The read-compare-write of the last sighting is not
atomic: two consumers handling scans of one card at the same instant may compare each with an
older sighting. That can miss a signal, never invent one, which suits alerts that punish
nobody. A redelivered event is recognised by its id and not compared with itself.
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import orjson
from sqlmodel import col, select

from app.audit.chain import AuditRecord
from app.audit.log import record
from app.cards.models import CardStatus
from app.cards.snapshot import snapshot_card
from app.clients.models import Organisation
from app.cooperative import in_slices
from app.misuse.detector import (
    Finding,
    Sighting,
    encode_sighting,
    impossible_travel,
    scan_rate,
    sighting_fields,
)
from app.misuse.models import MisuseAlert
from app.runtime import Runtime
from app.store.base import AUDIT_OUTCOME_FIRST

logger = logging.getLogger("ssc.misuse")

WATCH_ACTOR = "system:misuse-watch"
LAST_SIGHTING_TTL = 6 * 3600
"""Beyond 6 hours apart (1800 km at 300 km/h) two scans tell little about travel."""
RATE_WINDOW_TTL = 120
LOCATION_CACHE_SECONDS = 60.0

Location = tuple[float | None, float | None]


def last_sighting_key(card_id: uuid.UUID) -> str:
    return _last_sighting_key(card_id.hex)


def rate_key(card_id: uuid.UUID, minute: int) -> str:
    return _rate_key(card_id.hex, minute)


def _last_sighting_key(card_hex: str) -> str:
    return f"misuse:last:{card_hex}"


def _rate_key(card_hex: str, minute: int) -> str:
    return f"misuse:rate:{card_hex}:{minute}"


def valid_scan(event: AuditRecord) -> tuple[uuid.UUID, uuid.UUID, float] | None:
    """(card id, organisation id, Unix time) of a verify event that found an active card."""
    scan = _scan(event)
    if scan is None:
        return None
    card_hex, organisation, at = scan
    try:
        return uuid.UUID(hex=card_hex), uuid.UUID(organisation), at
    except ValueError:
        return None


def _scan(event: AuditRecord) -> tuple[str, str, float] | None:
    """`valid_scan` with the ids as the event carries them (the card's hex, the organisation's
    text, not yet checked to be a UUID): the watch parses each organisation once a batch.

    `event.data` is canonical JSON (no whitespace), so an event without the text of a first
    outcome (a replay, a refused scan) is passed over without being parsed.
    """
    if event.action != "verify" or _FIRST_OUTCOME not in event.data:
        return None
    try:
        data = event.data_object()
        if data.get("outcome") != AUDIT_OUTCOME_FIRST or not data.get("status"):
            return None
        status, card_hex = snapshot_card(str(data["status"]))
        organisation = str(data["org"])
    except (orjson.JSONDecodeError, AttributeError, KeyError, ValueError):
        return None
    if status != CardStatus.active:
        return None
    return card_hex, organisation, event.occurred_at.timestamp()


_FIRST_OUTCOME = orjson.dumps({"outcome": AUDIT_OUTCOME_FIRST}).decode()[1:-1]
_HEX = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class _Venue:
    """An organisation as sightings need it, built once a batch."""

    id: uuid.UUID
    hex: str
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True, slots=True)
class _Seen:
    """A sighting with ids as hex: the watch compares and stores these, and builds a
    `Sighting` (UUIDs) only to measure travel between two located venues."""

    event_id: str
    card_hex: str
    organisation_hex: str
    at: float
    latitude: float | None
    longitude: float | None

    @property
    def located(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    def sighting(self) -> Sighting:
        return Sighting(
            self.event_id,
            uuid.UUID(hex=self.card_hex),
            uuid.UUID(hex=self.organisation_hex),
            self.at,
            self.latitude,
            self.longitude,
        )


def _stored_seen(raw: bytes) -> _Seen | None:
    """The last sighting as stored, or None when it is not one (`Sighting.decode` refuses)."""
    try:
        event_id, card, organisation, at, latitude, longitude = sighting_fields(raw)
        if _HEX.fullmatch(card) is None:
            card = uuid.UUID(hex=card).hex
        if _HEX.fullmatch(organisation) is None:
            organisation = uuid.UUID(hex=organisation).hex
    except ValueError:
        return None
    return _Seen(event_id, card, organisation, at, latitude, longitude)


def _organisation_ids(texts: set[str]) -> dict[str, uuid.UUID]:
    """The organisations by their text in the events; text that is no UUID is left out."""
    parsed: dict[str, uuid.UUID] = {}
    for text in texts:
        try:
            parsed[text] = uuid.UUID(text)
        except ValueError:
            continue
    return parsed


class MisuseWatch:
    """The audit consumer's `on_persisted` hook: raises `misuse_alerts` rows, nothing more.

    It runs in the API workers beside the verify path, so it works per card rather than per
    event: one read and one write of the last sighting, and one counter update per minute,
    for all of a batch's scans of a card; organisation locations are cached for a minute.
    """

    def __init__(self, runtime: Runtime, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self._clock = clock
        self._locations_cache: dict[uuid.UUID, tuple[float, Location]] = {}

    async def on_persisted(self, events: Sequence[AuditRecord]) -> None:
        scans = [
            (event.event_id, scan)
            async for part in in_slices(events)
            for event in part
            if (scan := _scan(event)) is not None
        ]
        if not scans:
            return
        organisations = _organisation_ids({organisation for _, (_, organisation, _) in scans})
        locations = await self._locations(set(organisations.values()))
        venues = {
            text: _Venue(organisation, organisation.hex, *locations.get(organisation, (None, None)))
            for text, organisation in organisations.items()
        }
        by_card: dict[str, list[_Seen]] = defaultdict(list)
        for event_id, (card_hex, organisation_text, at) in scans:
            venue = venues.get(organisation_text)
            if venue is not None:
                by_card[card_hex].append(
                    _Seen(event_id, card_hex, venue.hex, at, venue.latitude, venue.longitude)
                )
        findings = await self._observe(by_card)
        if findings:
            await self._raise_alerts(findings)

    async def _locations(self, organisations: set[uuid.UUID]) -> Mapping[uuid.UUID, Location]:
        now = self._clock()
        cached = self._locations_cache
        missing = {
            organisation
            for organisation in organisations
            if organisation not in cached or cached[organisation][0] < now
        }
        if missing:
            statement = select(
                Organisation.id, Organisation.latitude, Organisation.longitude
            ).where(col(Organisation.id).in_(missing))
            async with self.runtime.database.session() as session:
                rows = (await session.exec(statement)).all()
            for row in rows:
                cached[row[0]] = (now + LOCATION_CACHE_SECONDS, (row[1], row[2]))
        return {org: cached[org][1] for org in organisations if org in cached}

    async def _observe(self, by_card: Mapping[str, list[_Seen]]) -> list[tuple[uuid.UUID, Finding]]:
        """Compares each scan of a card with the one before it, in time order: the batch's
        last sightings read in one round trip, the new ones and the per-minute counts written
        in one more (`Store.get_many`, `Store.write_many`), whatever the number of cards."""
        store = self.runtime.store
        settings = self.runtime.settings
        max_speed = settings.misuse_max_speed_kmh
        cards = list(by_card)
        stored_raw = await store.get_many([_last_sighting_key(card_hex) for card_hex in cards])
        findings: list[tuple[uuid.UUID, Finding]] = []
        latest_writes: list[tuple[str, bytes, float]] = []
        counted: list[tuple[str, int, int]] = []
        async for part in in_slices(list(zip(cards, stored_raw, strict=True))):
            for card_hex, raw in part:
                stored = latest = None if raw is None else _stored_seen(raw)
                per_minute: dict[int, int] = {}
                seen = by_card[card_hex]
                for sighting in seen if len(seen) == 1 else sorted(seen, key=_time):
                    if latest is not None:
                        if latest.event_id == sighting.event_id:
                            continue  # a redelivered event: already counted and compared
                        if (
                            latest.organisation_hex != sighting.organisation_hex
                            and latest.card_hex == card_hex
                            and latest.located
                            and sighting.located
                        ):
                            travel = impossible_travel(
                                latest.sighting(), sighting.sighting(), max_speed
                            )
                            if travel is not None:
                                findings.append((uuid.UUID(hex=card_hex), travel))
                    if latest is None or sighting.at >= latest.at:
                        latest = sighting
                    minute = math.floor(sighting.at / 60)
                    per_minute[minute] = per_minute.get(minute, 0) + 1
                if latest is not None and latest is not stored:
                    encoded = encode_sighting(
                        latest.event_id,
                        card_hex,
                        latest.organisation_hex,
                        latest.at,
                        latitude=latest.latitude,
                        longitude=latest.longitude,
                    )
                    latest_writes.append((_last_sighting_key(card_hex), encoded, LAST_SIGHTING_TTL))
                counted += [
                    (card_hex, minute, scans) for minute, scans in sorted(per_minute.items())
                ]
        counts = await store.write_many(
            latest_writes,
            [
                (_rate_key(card_hex, minute), scans, RATE_WINDOW_TTL)
                for card_hex, minute, scans in counted
            ],
        )
        limit = settings.misuse_max_scans_per_minute
        for (card_hex, minute, scans), count in zip(counted, counts, strict=True):
            rate = scan_rate(count, limit, minute, scans)
            if rate is not None:
                findings.append((uuid.UUID(hex=card_hex), rate))
        return findings

    async def _raise_alerts(self, findings: Sequence[tuple[uuid.UUID, Finding]]) -> None:
        alerts = [
            MisuseAlert(card_id=card_id, kind=finding.kind.value, details=finding.details)
            for card_id, finding in findings
        ]
        async with self.runtime.database.session() as session:
            session.add_all(alerts)
        for alert in alerts:
            logger.info("misuse alert %s (%s) for card %s", alert.id, alert.kind, alert.card_id)
            await record(
                self.runtime.store,
                "misuse.alert_raised",
                WATCH_ACTOR,
                str(alert.card_id),
                {"alert": str(alert.id), "kind": alert.kind},
            )


def _time(seen: _Seen) -> float:
    return seen.at
