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
import uuid
from collections.abc import Mapping, Sequence

import orjson
from sqlmodel import col, select

from app.audit.chain import AuditRecord
from app.audit.log import record
from app.cards.models import CardStatus
from app.cards.snapshot import CardSnapshot
from app.clients.models import Organisation
from app.misuse.detector import Finding, Sighting, impossible_travel, scan_rate
from app.misuse.models import MisuseAlert
from app.runtime import Runtime
from app.store.base import AUDIT_OUTCOME_FIRST

logger = logging.getLogger("ssc.misuse")

WATCH_ACTOR = "system:misuse-watch"
LAST_SIGHTING_TTL = 6 * 3600
"""Beyond 6 hours apart (1800 km at 300 km/h) two scans tell little about travel."""
RATE_WINDOW_TTL = 120


def last_sighting_key(card_id: uuid.UUID) -> str:
    return f"misuse:last:{card_id.hex}"


def rate_key(card_id: uuid.UUID, minute: int) -> str:
    return f"misuse:rate:{card_id.hex}:{minute}"


def valid_scan(event: AuditRecord) -> tuple[uuid.UUID, uuid.UUID, float] | None:
    """(card id, organisation id, Unix time) of a verify event that found an active card."""
    if event.action != "verify":
        return None
    try:
        data = orjson.loads(event.data)
        if data.get("outcome") != AUDIT_OUTCOME_FIRST or not data.get("status"):
            return None
        snapshot = CardSnapshot.decode(str(data["status"]).encode())
        organisation = uuid.UUID(str(data["org"]))
    except (orjson.JSONDecodeError, AttributeError, KeyError, ValueError):
        return None
    if snapshot.status is not CardStatus.active:
        return None
    return snapshot.card_id, organisation, event.occurred_at.timestamp()


class MisuseWatch:
    """The audit consumer's `on_persisted` hook: raises `misuse_alerts` rows, nothing more."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def on_persisted(self, events: Sequence[AuditRecord]) -> None:
        scans = [(event, scan) for event in events if (scan := valid_scan(event)) is not None]
        if not scans:
            return
        locations = await self._locations({organisation for _, (_, organisation, _) in scans})
        findings: list[tuple[uuid.UUID, Finding]] = []
        for event, (card_id, organisation, at) in scans:
            latitude, longitude = locations.get(organisation, (None, None))
            sighting = Sighting(event.event_id, card_id, organisation, at, latitude, longitude)
            findings.extend((card_id, finding) for finding in await self._observe(sighting))
        if findings:
            await self._raise_alerts(findings)

    async def _locations(
        self, organisations: set[uuid.UUID]
    ) -> Mapping[uuid.UUID, tuple[float | None, float | None]]:
        statement = select(Organisation.id, Organisation.latitude, Organisation.longitude).where(
            col(Organisation.id).in_(organisations)
        )
        async with self.runtime.database.session() as session:
            rows = (await session.exec(statement)).all()
        return {row[0]: (row[1], row[2]) for row in rows}

    async def _observe(self, sighting: Sighting) -> list[Finding]:
        store = self.runtime.store
        settings = self.runtime.settings
        findings: list[Finding] = []
        key = last_sighting_key(sighting.card_id)
        raw = await store.get(key)
        previous = None
        if raw is not None:
            try:
                previous = Sighting.decode(raw)
            except ValueError:
                previous = None
        if previous is not None and previous.event_id == sighting.event_id:
            return findings  # a redelivered event: already counted and compared
        travel = impossible_travel(previous, sighting, settings.misuse_max_speed_kmh)
        if travel is not None:
            findings.append(travel)
        if previous is None or sighting.at >= previous.at:
            await store.set(key, sighting.encode(), LAST_SIGHTING_TTL)
        minute = math.floor(sighting.at / 60)
        count = await store.incr(rate_key(sighting.card_id, minute), RATE_WINDOW_TTL)
        rate = scan_rate(count, settings.misuse_max_scans_per_minute, minute)
        if rate is not None:
            findings.append(rate)
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
