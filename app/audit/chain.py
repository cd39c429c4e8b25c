"""The hash chain over audit rows: each row's `hash` covers the previous row's hash and its own
contents, so an edited, deleted or reordered row breaks the chain at that row.

Appends are serialised across processes (one writer at a time extends the chain): PostgreSQL
takes a transaction-scoped advisory lock, SQLite takes its single write lock before reading
the head of the chain. Row ids are reserved explicitly in chain order, so walking rows by id
walks the chain.

Deleting the newest rows (truncating the tail) leaves a valid shorter chain; detecting that
needs the head anchored elsewhere: `app.audit.checkpoints` writes signed checkpoints of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Dialect,
    String,
    Table,
    any_,
    bindparam,
    false,
    func,
    insert,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.models import AuditEvent
from app.cooperative import in_slices

GENESIS_HASH = "0" * 64
CHAIN_LOCK_KEY = 0x5353_4341_5544_4954
"""The PostgreSQL advisory lock of the chain ("SSCAUDIT"); held by the appending transaction."""

VERIFY_PAGE = 1000
AUDIT_ROW_COLUMNS = (
    "id",
    "event_id",
    "occurred_at",
    "action",
    "actor",
    "subject",
    "data",
    "prev_hash",
    "hash",
)
"""The values of each inserted row, in the table's column order."""
AUDIT_TABLE: Table = AuditEvent.__table__  # type: ignore[attr-defined]
"""For Core inserts; SQLModel models do not declare their `__table__` to type checkers."""


@dataclass(slots=True)  # not frozen: a record of the hot path (docs/architecture.md)
class AuditRecord:
    """One event ready to be chained; `data` is the canonical JSON text stored as is."""

    event_id: str
    occurred_at: datetime
    action: str
    actor: str
    subject: str
    data: str
    parsed: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    """`data` as the consumer parsed it, when it did: the access log and the misuse watch
    read it from here instead of parsing the JSON again. Not hashed, not stored."""

    def data_object(self) -> Any:
        """`data` as JSON value: `parsed`, or `data` parsed now."""
        return self.parsed if self.parsed is not None else orjson.loads(self.data)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """`rows` counts the rows checked; walking stops at the first broken row."""

    rows: int
    first_broken_id: int | None
    reason: str
    checkpoint: str | None = None
    """What the latest checkpoint showed when the chain is intact (`app.audit.service`)."""

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
    `records` is skipped. Only executes; the caller's transaction commits, which also
    releases the chain lock.
    """
    if not records:
        return 0
    connection = await session.connection()
    await lock_chain(connection)
    seen = await _stored_event_ids(connection, {record.event_id for record in records})
    fresh: list[AuditRecord] = []
    for record in records:
        if record.event_id not in seen:
            seen.add(record.event_id)
            fresh.append(record)
    if not fresh:
        return 0
    head = await chain_head(connection)
    ids = await _reserve_ids(connection, len(fresh), head[0] if head else None)
    prev_hash = head[1] if head else GENESIS_HASH
    row_insert = _row_insert(connection.dialect)
    rows: list[tuple[object, ...]] = []
    async for part in in_slices(list(zip(ids, fresh, strict=True))):
        for row_id, record in part:
            digest = chain_hash(prev_hash, record)
            rows.append(
                (
                    row_id,
                    record.event_id,
                    row_insert.stored_time(record.occurred_at),
                    record.action,
                    record.actor,
                    record.subject,
                    record.data,
                    prev_hash,
                    digest,
                )
            )
            prev_hash = digest
    await bulk_insert(connection, AUDIT_TABLE.name, AUDIT_ROW_COLUMNS, row_insert.sql, rows)
    return len(fresh)


async def bulk_insert(
    connection: AsyncConnection,
    table: str,
    columns: Sequence[str],
    sql: str,
    rows: list[tuple[object, ...]],
) -> None:
    """Inserts `rows` (driver values, in `columns` order) in the caller's transaction: on
    PostgreSQL by `COPY` (asyncpg's `copy_records_to_table`, binary: no statement per row),
    elsewhere by one executemany of `sql`."""
    if not rows:
        return
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "asyncpg":
        raw = await connection.get_raw_connection()
        copier = raw.driver_connection
        assert copier is not None
        await copier.copy_records_to_table(table, records=rows, columns=list(columns))
        return
    await connection.exec_driver_sql(sql, rows)


async def chain_head(connection: AsyncConnection) -> tuple[int, str] | None:
    """The id and hash of the newest row; None for an empty log."""
    head = (
        await connection.execute(
            select(AUDIT_TABLE.c.id, AUDIT_TABLE.c.hash).order_by(AUDIT_TABLE.c.id.desc()).limit(1)
        )
    ).first()
    return None if head is None else (int(head[0]), str(head[1]))


@dataclass(frozen=True, slots=True)
class _RowInsert:
    """The INSERT of audit rows in the driver's own terms, for one executemany of tuples.

    ORM objects and the unit of work cost about ten times SQLite's own insert, and a Core
    insert about twice (its per-row parameter processing): so the statement is compiled once
    per dialect, and the one column whose type converts values (the time: SQLite stores
    text) is converted here by that type's own bind processor, as SQLAlchemy would.
    """

    sql: str
    stored_time: Callable[[datetime], object]


@lru_cache(maxsize=8)
def _row_insert(dialect: Dialect) -> _RowInsert:
    compiled = insert(AUDIT_TABLE).compile(dialect=dialect, column_keys=list(AUDIT_ROW_COLUMNS))
    if compiled.positiontup != list(AUDIT_ROW_COLUMNS):
        raise RuntimeError(f"{dialect.name}: audit rows need a positional parameter style")
    converting = {
        column.name
        for column in AUDIT_TABLE.columns
        if column.type.dialect_impl(dialect).bind_processor(dialect) is not None
    }
    if converting - {"occurred_at"}:
        raise RuntimeError(f"{dialect.name}: audit columns {converting} convert their values")
    return _RowInsert(compiled.string, stored_time(AUDIT_TABLE.c.occurred_at, dialect))


def stored_time(column: ColumnElement[datetime], dialect: Dialect) -> Callable[[datetime], object]:
    """What the driver gets for a time of `column`: its type's bind processor's value.

    On SQLite that processor formats seven fields through a dict, about 4 us per call, twice
    per scan in the audit consumer (the audit row, the access-log entry); `_sqlite_time`
    writes the same text with one `isoformat`. It is used only where it gives what the
    processor gives on every probe time (`_TIME_PROBES`); otherwise the processor is."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return _unchanged
    if all(process(moment) == _sqlite_time(moment) for moment in _TIME_PROBES):
        return _sqlite_time
    return process


def _sqlite_time(moment: datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS.ffffff` of the time's own fields, any offset left out (as
    SQLAlchemy's SQLite `DATETIME` stores it)."""
    return moment.isoformat(" ", "microseconds")[:26]


_TIME_PROBES = (
    datetime(2026, 12, 3, 8, 30, 1, 4000, tzinfo=UTC),
    datetime(2026, 12, 3, 8, 30, 1),
    datetime(999, 1, 2, 3, 4, 5, 999999),
    datetime(2026, 12, 3, 23, 59, 59, 0, tzinfo=timezone(timedelta(hours=8))),
)


def _unchanged(moment: datetime) -> datetime:
    return moment


async def lock_chain(connection: AsyncConnection) -> None:
    """Serialises appenders before the head of the chain is read."""
    if connection.dialect.name == "postgresql":
        await connection.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK_KEY)))
    else:
        # A write statement (even one matching no row) makes SQLite take its write lock now,
        # before the reads below, so another writer waits instead of forking the chain.
        await connection.execute(update(AUDIT_TABLE).where(false()).values(id=AUDIT_TABLE.c.id))


async def _stored_event_ids(connection: AsyncConnection, wanted: set[str]) -> set[str]:
    """The ids among `wanted` that are stored already (redelivered entries)."""
    event_id = AUDIT_TABLE.c.event_id
    statement = select(event_id).where(any_of(connection.dialect, event_id, wanted))
    return set((await connection.execute(statement)).scalars())


def any_of(
    dialect: Dialect, column: ColumnElement[Any], values: Collection[Any]
) -> ColumnElement[bool]:
    """`column IN values` with one parameter however many values (a batch's worth): `IN`
    renders a placeholder per value at every execution (on PostgreSQL a typed one), and each
    count of values is a statement of its own to the driver. PostgreSQL takes an array,
    SQLite a JSON array of the values as the column stores them (`json_each`)."""
    if dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), ARRAY(column.type)))
    listed = func.json_each(bindparam(None, any_of_value(dialect, column, values), String))
    return column.in_(select(listed.table_valued("value").c.value))


def any_of_parameter(
    dialect: Dialect, column: ColumnElement[Any], name: str
) -> ColumnElement[bool]:
    """`any_of` with a named parameter and no value: for a statement compiled once and run
    by the driver with `any_of_value` for `name`."""
    if dialect.name == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    listed = func.json_each(bindparam(name, type_=String))
    return column.in_(select(listed.table_valued("value").c.value))


def any_of_value(dialect: Dialect, column: ColumnElement[Any], values: Collection[Any]) -> Any:
    """The driver value of `any_of_parameter`'s parameter: the values as a list (PostgreSQL's
    array; asyncpg encodes it), or as the JSON array of their stored forms (SQLite)."""
    if dialect.name == "postgresql":
        return list(values)
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    stored = list(values) if process is None else [process(value) for value in values]
    return orjson.dumps(stored).decode()


async def _reserve_ids(connection: AsyncConnection, count: int, last_id: int | None) -> list[int]:
    """Ids in chain order. PostgreSQL takes them from the table's sequence (so later default
    inserts cannot collide); SQLite, holding the write lock, continues after the last row."""
    if connection.dialect.name == "postgresql":
        sequence = func.pg_get_serial_sequence(AUDIT_TABLE.name, "id")
        reserved = await connection.execute(
            select(func.nextval(sequence)).select_from(func.generate_series(1, count))
        )
        return sorted(int(value) for value in reserved.scalars())
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
