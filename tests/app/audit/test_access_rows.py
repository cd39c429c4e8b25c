"""The access-log rows the audit consumer writes, read back through the model on each backend:
the card and organisation ids travel as text through the batch (no UUID object per scan), and
must come back as the same values the ORM would have stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from app.accesslog.models import AccessLogEntry, AccessSource
from app.accesslog.recorder import record_disclosures
from app.audit.chain import AuditRecord, canonical_data
from app.cards.models import CardStatus
from app.cards.snapshot import CardSnapshot, snapshot_without_view
from app.catalog.scenes import BASE_ATTRIBUTES
from app.clients.models import Organisation
from app.db import Database

AT = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
CARD = uuid.uuid4()
OPERATOR_READ_CARD = uuid.uuid4()
VENUE = uuid.uuid4()


def scan(
    event_id: str, org: str, *, card: uuid.UUID = CARD, status: CardStatus = CardStatus.active
) -> AuditRecord:
    snapshot = CardSnapshot.of(status, card, "张*", view="sealed-view").encode().decode()
    data = {
        "cti": f"cti-{event_id}",
        "kid": "k1",
        "org": org,
        "outcome": "first",
        "scene": None,
        "status": snapshot_without_view(snapshot),
    }
    return AuditRecord(event_id, AT, "verify", "scanner-1", "", canonical_data(data))


async def stored_entries(database: Database) -> dict[str, AccessLogEntry]:
    async with database.session() as session:
        rows = (
            await session.exec(select(AccessLogEntry).order_by(col(AccessLogEntry.event_id)))
        ).all()
    return {row.event_id: row for row in rows}


async def test_rows_hold_the_values_of_the_events(database: Database) -> None:
    async with database.session() as session:
        session.add(
            Organisation(id=VENUE, name="省图书馆", venue_type="library", region_code="360100")
        )
    events = [
        scan("e1", str(VENUE)),
        scan("e2", str(VENUE).upper()),  # another spelling of the same id
        scan("e3", "not-a-uuid"),
        scan("e4", str(VENUE), status=CardStatus.lost),
        AuditRecord(
            "e5",
            AT + timedelta(seconds=1),
            "card.read",
            "operator-1",
            str(OPERATOR_READ_CARD),
            canonical_data({"attributes": ["name", "status"]}),
        ),
    ]
    async with database.session() as session:
        assert await record_disclosures(session, events) == 3
    entries = await stored_entries(database)
    assert set(entries) == {"e1", "e2", "e5"}
    for event_id in ("e1", "e2"):
        entry = entries[event_id]
        assert entry.card_id == CARD
        assert entry.organisation_id == VENUE
        assert (entry.organisation, entry.region_code) == ("省图书馆", "360100")
        assert entry.source == AccessSource.online_scan
        assert entry.venue == "scanner-1"
        assert entry.attributes == sorted(BASE_ATTRIBUTES)
        assert entry.occurred_at.replace(tzinfo=UTC) == AT
    read = entries["e5"]
    assert read.card_id == OPERATOR_READ_CARD
    assert read.organisation_id is None
    assert read.attributes == ["name", "status"]
    assert (read.source, read.outcome) == (AccessSource.operator_read, "read")


async def test_a_redelivered_batch_adds_nothing(database: Database) -> None:
    events = [scan("e1", str(VENUE))]
    async with database.session() as session:
        assert await record_disclosures(session, events) == 1
    async with database.session() as session:
        assert await record_disclosures(session, events) == 0
    assert list(await stored_entries(database)) == ["e1"]
