"""The hash chain over audit rows: each row's `hash` covers the previous row's hash and its own
contents, so an edited, deleted or reordered row breaks the chain at that row.

Appends are serialised across processes (one writer at a time extends the chain): PostgreSQL
takes a transaction-scoped advisory lock, SQLite takes its single write lock before reading
the head of the chain. Row ids are reserved explicitly in chain order, so walking rows by id
walks the chain.

Deleting the newest rows (truncating the tail) leaves a valid shorter chain; detecting that
needs the head hash anchored elsewhere (a signed checkpoint), which this module does not do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import false, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.models import AuditEvent

GENESIS_HASH = "0" * 64
CHAIN_LOCK_KEY = 0x5353_4341_5544_4954
"""The PostgreSQL advisory lock of the chain ("SSCAUDIT"); held by the appending transaction."""

VERIFY_PAGE = 1000


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One event ready to be chained; `data` is the canonical JSON text stored as is."""

    event_id: str
    occurred_at: datetime
    action: str
    actor: str
    subject: str
    data: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """`rows` counts the rows checked; walking stops at the first broken row."""

    rows: int
    first_broken_id: int | None
    reason: str

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None


def canonical_data(data: object) -> str:
    """The stored form of an event's data: sorted keys, no whitespace, so it hashes stably.

    :raises TypeError: when `data` holds something JSON cannot represent.
    """
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


def utc_iso(moment: datetime) -> str:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat(timespec="microseconds")


def chain_hash(prev_hash: str, record: AuditRecord) -> str:
    """SHA-256 hex over the previous hash and a JSON array of the row's contents (a JSON
    array cannot be ambiguous the way a plain concatenation of fields can)."""
    contents = orjson.dumps(
        [
            record.event_id,
            utc_iso(record.occurred_at),
            record.action,
            record.actor,
            record.subject,
            record.data,
        ]
    )
    return hashlib.sha256(prev_hash.encode("ascii") + contents).hexdigest()


def stored_record(row: AuditEvent) -> AuditRecord:
    """The hashed contents of a stored row."""
    return AuditRecord(
        event_id=row.event_id,
        occurred_at=row.occurred_at,
        action=row.action,
        actor=row.actor,
        subject=row.subject,
        data=row.data,
    )


async def append_records(session: AsyncSession, records: Sequence[AuditRecord]) -> int:
    """Chains and inserts the records whose `event_id` is not stored yet; returns how many.

    Idempotent: a record already persisted (a redelivered stream entry) or repeated within
    `records` is skipped. Only flushes; the caller's transaction commits, which also
    releases the chain lock.
    """
    if not records:
        return 0
    backend = await _lock_chain(session)
    wanted = {record.event_id for record in records}
    stored = await session.exec(
        select(AuditEvent.event_id).where(col(AuditEvent.event_id).in_(wanted))
    )
    seen = set(stored.all())
    fresh: list[AuditRecord] = []
    for record in records:
        if record.event_id not in seen:
            seen.add(record.event_id)
            fresh.append(record)
    if not fresh:
        return 0
    head = (
        await session.exec(
            select(AuditEvent.id, AuditEvent.hash).order_by(col(AuditEvent.id).desc()).limit(1)
        )
    ).first()
    ids = await _reserve_ids(session, backend, len(fresh), head[0] if head else None)
    prev_hash = head[1] if head else GENESIS_HASH
    for row_id, record in zip(ids, fresh, strict=True):
        digest = chain_hash(prev_hash, record)
        session.add(
            AuditEvent(
                id=row_id,
                event_id=record.event_id,
                occurred_at=record.occurred_at,
                action=record.action,
                actor=record.actor,
                subject=record.subject,
                data=record.data,
                prev_hash=prev_hash,
                hash=digest,
            )
        )
        prev_hash = digest
    await session.flush()
    return len(fresh)


async def _lock_chain(session: AsyncSession) -> str:
    """Serialises appenders before the head of the chain is read; returns the backend name."""
    backend = (await session.connection()).dialect.name
    if backend == "postgresql":
        await session.exec(select(func.pg_advisory_xact_lock(CHAIN_LOCK_KEY)))
    else:
        # A write statement (even one matching no row) makes SQLite take its write lock now,
        # before the reads below, so another writer waits instead of forking the chain.
        await session.exec(update(AuditEvent).where(false()).values(id=AuditEvent.id))
    return backend


async def _reserve_ids(
    session: AsyncSession, backend: str, count: int, last_id: int | None
) -> list[int]:
    """Ids in chain order. PostgreSQL takes them from the table's sequence (so later default
    inserts cannot collide); SQLite, holding the write lock, continues after the last row."""
    if backend == "postgresql":
        sequence = func.pg_get_serial_sequence(AuditEvent.__tablename__, "id")
        reserved = await session.exec(
            select(func.nextval(sequence)).select_from(func.generate_series(1, count))
        )
        return sorted(int(value) for value in reserved.all())
    start = (last_id or 0) + 1
    return list(range(start, start + count))


async def verify_chain(session: AsyncSession, *, page: int = VERIFY_PAGE) -> ChainReport:
    """Walks every row in id order and recomputes the chain; stops at the first broken row.

    Reads page by page and lets go of each checked row, so memory stays flat on a long log.
    """
    rows = 0
    expected_prev = GENESIS_HASH
    last_id = 0
    while True:
        statement = (
            select(AuditEvent)
            .where(col(AuditEvent.id) > last_id)
            .order_by(col(AuditEvent.id))
            .limit(page)
        )
        batch = (await session.exec(statement)).all()
        if not batch:
            return ChainReport(rows=rows, first_broken_id=None, reason="intact")
        for row in batch:
            rows += 1
            if row.prev_hash != expected_prev:
                return ChainReport(
                    rows=rows,
                    first_broken_id=row.id,
                    reason="prev_hash does not match the previous row's hash: a row before "
                    "it was deleted, inserted or reordered",
                )
            if chain_hash(row.prev_hash, stored_record(row)) != row.hash:
                return ChainReport(
                    rows=rows,
                    first_broken_id=row.id,
                    reason="hash does not match the row's contents: the row was edited",
                )
            expected_prev = row.hash
            last_id = row.id or 0
            session.expunge(row)
