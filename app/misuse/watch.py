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
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

import orjson
from sqlmodel import col, select

from app.audit.chain import AuditRecord
from app.audit.log import record
from app.cards.models import CardStatus
from app.cards.snapshot import CardSnapshot
from app.clients.models import Organisation
from app.cooperative import in_slices
from app.misuse.detector import Finding, Sighting, impossible_travel, scan_rate
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
    return f"misuse:last:{card_id.hex}"


def rate_key(card_id: uuid.UUID, minute: int) -> str:
    return f"misuse:rate:{card_id.hex}:{minute}"


def valid_scan(event: AuditRecord) -> tuple[uuid.UUID, uuid.UUID, float] | None:
    """(card id, organisation id, Unix time) of a verify event that found an active card.

    `event.data` is canonical JSON (no whitespace), so an event without the text of a first
    outcome (a replay, a refused scan) is passed over without being parsed.
    """
    if event.action != "verify" or _FIRST_OUTCOME not in event.data:
        return None
    try:
        data = event.data_object()
        if data.get("outcome") != AUDIT_OUTCOME_FIRST or not data.get("status"):
            return None
        snapshot = CardSnapshot.decode(str(data["status"]).encode())
        organisation = _organisation_id(str(data["org"]))
    except (orjson.JSONDecodeError, AttributeError, KeyError, ValueError):
        return None
    if snapshot.status is not CardStatus.active:
        return None
    return snapshot.card_id, organisation, event.occurred_at.timestamp()


_FIRST_OUTCOME = orjson.dumps({"outcome": AUDIT_OUTCOME_FIRST}).decode()[1:-1]


@lru_cache(maxsize=4096)
def _organisation_id(text: str) -> uuid.UUID:
    """Venues are few and each scans often: their ids are parsed once, not once a scan."""
    return uuid.UUID(text)


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
            (event, scan)
            async for part in in_slices(events)
            for event in part
            if (scan := valid_scan(event)) is not None
        ]
        if not scans:
            return
        locations = await self._locations({organisation for _, (_, organisation, _) in scans})
        by_card: dict[uuid.UUID, list[Sighting]] = defaultdict(list)
        for event, (card_id, organisation, at) in scans:
            latitude, longitude = locations.get(organisation, (None, None))
            by_card[card_id].append(
                Sighting(event.event_id, card_id, organisation, at, latitude, longitude)
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

    async def _observe(
        self, by_card: Mapping[uuid.UUID, list[Sighting]]
    ) -> list[tuple[uuid.UUID, Finding]]:
        """Compares each scan of a card with the one before it, in time order: the batch's
        last sightings read in one round trip, the new ones and the per-minute counts written
        in one more (`Store.get_many`, `Store.write_many`), whatever the number of cards."""
        store = self.runtime.store
        settings = self.runtime.settings
        cards = list(by_card)
        stored_raw = await store.get_many([last_sighting_key(card_id) for card_id in cards])
        findings: list[tuple[uuid.UUID, Finding]] = []
        latest_writes: list[tuple[str, bytes, float]] = []
        counted: list[tuple[uuid.UUID, int, int]] = []
        async for part in in_slices(list(zip(cards, stored_raw, strict=True))):
            for card_id, raw in part:
                stored = latest = None
                if raw is not None:
                    try:
                        stored = latest = Sighting.decode(raw)
                    except ValueError:
                        stored = latest = None
                per_minute: Counter[int] = Counter()
                for sighting in sorted(by_card[card_id], key=lambda item: item.at):
                    if latest is not None and latest.event_id == sighting.event_id:
                        continue  # a redelivered event: already counted and compared
                    travel = impossible_travel(latest, sighting, settings.misuse_max_speed_kmh)
                    if travel is not None:
                        findings.append((card_id, travel))
                    if latest is None or sighting.at >= latest.at:
                        latest = sighting
                    per_minute[math.floor(sighting.at / 60)] += 1
                if latest is not None and latest is not stored:
                    key = last_sighting_key(card_id)
                    latest_writes.append((key, latest.encode(), LAST_SIGHTING_TTL))
                counted += [
                    (card_id, minute, scans) for minute, scans in sorted(per_minute.items())
                ]
        counts = await store.write_many(
            latest_writes,
            [
                (rate_key(card_id, minute), scans, RATE_WINDOW_TTL)
                for card_id, minute, scans in counted
            ],
        )
        limit = settings.misuse_max_scans_per_minute
        for (card_id, minute, scans), count in zip(counted, counts, strict=True):
            rate = scan_rate(count, limit, minute, scans)
            if rate is not None:
                findings.append((card_id, rate))
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
