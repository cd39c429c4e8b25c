"""The hash chain: appends are idempotent and serialised; tampering is found at its row."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.audit.chain import (
    AUDIT_TABLE,
    GENESIS_HASH,
    AuditRecord,
    any_of,
    append_records,
    chain_hash,
    stored_time,
    verify_chain,
)
from app.audit.models import AuditEvent
from app.db import Database
from tests.app.audit.conftest import START, audit_record, stored_rows


async def append(database: Database, records: list[AuditRecord]) -> int:
    async with database.session() as session:
        return await append_records(session, records)


async def verify(database: Database) -> tuple[int, int | None, str]:
    async with database.session() as session:
        report = await verify_chain(session, page=3)
    return report.rows, report.first_broken_id, report.reason


async def execute(database: Database, sql: str, **params: object) -> None:
    async with database.session() as session:
        await session.exec(sa.text(sql).bindparams(**params))


def utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


async def chain_of(database: Database, length: int) -> list[int]:
    """Appends `length` records in two transactions; returns the row ids in chain order."""
    half = length // 2
    await append(database, [audit_record(n) for n in range(half)])
    await append(database, [audit_record(n) for n in range(half, length)])
    return [row.id for row in await stored_rows(database) if row.id is not None]


class TestChainHash:
    def test_covers_the_previous_hash_and_a_json_array_of_the_contents(self) -> None:
        record = AuditRecord("e1", datetime(2026, 1, 1, tzinfo=UTC), "a", "b", "c", "{}")
        contents = b'["e1","2026-01-01T00:00:00.000000+00:00","a","b","c","{}"]'
        expected = hashlib.sha256(GENESIS_HASH.encode() + contents).hexdigest()
        assert chain_hash(GENESIS_HASH, record) == expected

    def test_reads_a_naive_datetime_as_utc_like_sqlite_returns_it(self) -> None:
        aware = audit_record(1)
        naive = AuditRecord(
            aware.event_id,
            aware.occurred_at.replace(tzinfo=None),
            aware.action,
            aware.actor,
            aware.subject,
            aware.data,
        )
        assert chain_hash(GENESIS_HASH, naive) == chain_hash(GENESIS_HASH, aware)

    def test_field_boundaries_cannot_be_shifted(self) -> None:
        left = AuditRecord("e1", START, "ab", "c", "", "{}")
        right = AuditRecord("e1", START, "a", "bc", "", "{}")
        assert chain_hash(GENESIS_HASH, left) != chain_hash(GENESIS_HASH, right)


class TestAppend:
    async def test_links_each_row_to_the_previous_one(self, database: Database) -> None:
        await chain_of(database, 5)
        rows = await stored_rows(database)
        assert [row.event_id for row in rows] == [f"event-{n}" for n in range(5)]
        assert rows[0].prev_hash == GENESIS_HASH
        assert [row.prev_hash for row in rows[1:]] == [row.hash for row in rows[:-1]]

    async def test_skips_event_ids_already_stored_or_repeated(self, database: Database) -> None:
        assert await append(database, [audit_record(1), audit_record(2)]) == 2
        repeated = [audit_record(2), audit_record(3), audit_record(3, event_id="event-3")]
        assert await append(database, repeated) == 1
        assert [row.event_id for row in await stored_rows(database)] == [
            "event-1",
            "event-2",
            "event-3",
        ]

    async def test_stores_each_time_to_the_microsecond(self, database: Database) -> None:
        records = [audit_record(n) for n in range(3)]
        await append(database, records)
        stored = [utc(row.occurred_at) for row in await stored_rows(database)]
        assert stored == [record.occurred_at for record in records]

    async def test_continues_a_chain_written_row_by_row_through_the_orm(
        self, database: Database
    ) -> None:
        """Rows persisted before appends became one multi-row insert stay part of the chain."""
        first = audit_record(0)
        async with database.session() as session:
            session.add(
                AuditEvent(
                    event_id=first.event_id,
                    occurred_at=first.occurred_at,
                    action=first.action,
                    actor=first.actor,
                    subject=first.subject,
                    data=first.data,
                    prev_hash=GENESIS_HASH,
                    hash=chain_hash(GENESIS_HASH, first),
                )
            )
        assert await append(database, [audit_record(n) for n in range(4)]) == 3
        assert await verify(database) == (4, None, "intact")

    async def test_concurrent_appenders_extend_one_chain(self, database_url: str) -> None:
        writers = [Database(database_url) for _ in range(3)]
        try:
            await asyncio.gather(
                *(
                    append(writers[task % 3], [audit_record(task * 10 + n) for n in range(4)])
                    for task in range(12)
                )
            )
            assert await verify(writers[0]) == (48, None, "intact")
        finally:
            for writer in writers:
                await writer.dispose()


class TestAnyOf:
    async def test_matches_as_in_does_whatever_the_text(self, database: Database) -> None:
        actors = ['quote"d', "it's", "张三", "back\\slash", "[1,2]", "plain"]
        await append(
            database,
            [
                AuditRecord(f"e{n}", START, "card.read", actor, "", "{}")
                for n, actor in enumerate(actors)
            ],
        )
        wanted = {*actors[:5], "absent"}
        actor = AUDIT_TABLE.c.actor
        async with database.session() as session:
            connection = await session.connection()
            matched = await connection.execute(
                sa.select(actor).where(any_of(connection.dialect, actor, wanted))
            )
            none = await connection.execute(
                sa.select(actor).where(any_of(connection.dialect, actor, []))
            )
        assert set(matched.scalars()) == set(actors[:5])
        assert none.all() == []


class TestStoredTime:
    """The consumer's own formatting of stored times must give the driver exactly what the
    column type's bind processor gives: SQLite compares the stored text."""

    def test_on_sqlite_equals_the_bind_processor_for_any_time(self) -> None:
        dialect = sqlite.dialect()
        column = AUDIT_TABLE.c.occurred_at
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        assert process is not None
        convert = stored_time(column, dialect)
        assert convert is not process  # the cheaper one is in use
        moments = [START + timedelta(seconds=n * 9973.123457) for n in range(-2000, 2000)]
        moments += [
            datetime(1, 1, 1),
            datetime(999, 12, 31, 23, 59, 59, 999999),
            datetime(2026, 12, 3, tzinfo=timezone(timedelta(hours=-5))),
            datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ]
        for moment in moments:
            assert convert(moment) == process(moment), moment

    def test_a_column_stored_in_another_format_keeps_its_own_processor(self) -> None:
        dialect = sqlite.dialect()
        column = sa.Column("at", sqlite.DATETIME(storage_format="%(year)04d%(month)02d%(day)02d"))
        moment = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
        assert stored_time(column, dialect)(moment) == "20261203"

    def test_on_postgresql_the_driver_gets_the_time_itself(self) -> None:
        dialect = postgresql.asyncpg.dialect()
        moment = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
        assert stored_time(AUDIT_TABLE.c.occurred_at, dialect)(moment) is moment


class TestVerifyChain:
    async def test_an_empty_log_is_intact(self, database: Database) -> None:
        assert await verify(database) == (0, None, "intact")

    async def test_an_untouched_chain_is_intact(self, database: Database) -> None:
        await chain_of(database, 7)
        assert await verify(database) == (7, None, "intact")

    @pytest.mark.parametrize("column", ["actor", "data", "action", "event_id"])
    async def test_finds_an_edited_row(self, database: Database, column: str) -> None:
        ids = await chain_of(database, 7)
        await execute(database, f"UPDATE audit_events SET {column} = 'x' WHERE id = :id", id=ids[4])
        rows, broken, reason = await verify(database)
        assert (rows, broken) == (5, ids[4])
        assert "edited" in reason

    async def test_finds_an_edited_time(self, database: Database) -> None:
        ids = await chain_of(database, 4)
        await execute(
            database,
            "UPDATE audit_events SET occurred_at = :at WHERE id = :id",
            at=START + timedelta(days=1),
            id=ids[1],
        )
        assert (await verify(database))[1] == ids[1]

    async def test_finds_an_edit_that_recomputed_the_row_hash(self, database: Database) -> None:
        ids = await chain_of(database, 5)
        rows = await stored_rows(database)
        forged = AuditRecord(
            rows[2].event_id, rows[2].occurred_at, "card.found", "x", rows[2].subject, "{}"
        )
        await execute(
            database,
            "UPDATE audit_events SET action = 'card.found', actor = 'x', data = '{}',"
            " hash = :hash WHERE id = :id",
            hash=chain_hash(rows[2].prev_hash, forged),
            id=ids[2],
        )
        rows_checked, broken, reason = await verify(database)
        assert (rows_checked, broken) == (4, ids[3])
        assert "deleted, inserted or reordered" in reason

    @pytest.mark.parametrize("position", [0, 3])
    async def test_finds_a_deleted_row(self, database: Database, position: int) -> None:
        ids = await chain_of(database, 6)
        await execute(database, "DELETE FROM audit_events WHERE id = :id", id=ids[position])
        rows, broken, reason = await verify(database)
        assert (rows, broken) == (position + 1, ids[position + 1])
        assert "prev_hash" in reason

    async def test_finds_reordered_rows(self, database: Database) -> None:
        ids = await chain_of(database, 6)
        swap = [(ids[2], -1), (ids[3], ids[2]), (-1, ids[3])]
        for old, new in swap:
            await execute(
                database,
                "UPDATE audit_events SET id = :new WHERE id = :old",
                **{
                    "new": new,
                    "old": old,
                },
            )
        assert (await verify(database))[1] == ids[2]
