"""The audit consumer: every recorded event reaches SQL exactly once, even across a crash."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import orjson
import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.chain import AuditRecord, verify_chain
from app.audit.consumer import (
    DEFAULT_GROUP,
    UNPARSEABLE_ACTION,
    AuditConsumer,
    UnparseableEntry,
    default_consumer_name,
    parse_entry,
    unparseable_record,
)
from app.audit.log import AUDIT_STREAM, audit_fields, record
from app.db import Database
from app.store import Store, StoreUnavailable, StreamEntry
from tests.app.audit.conftest import stored_rows

CONSUMER = "api-host-1"
WAIT = 10.0
"""Upper bound for the background consumer to catch up; only reached when it is broken."""


def consumer_of(
    store: Store | KilledAfterCommit, database: Database, **options: Any
) -> AuditConsumer:
    """A consumer under the name a restarted API on the same host uses again."""
    return AuditConsumer(cast(Store, store), database, consumer=CONSUMER, block_ms=0, **options)


async def drain(consumer: AuditConsumer) -> int:
    handled = 0
    while count := await consumer.drain_once():
        handled += count
    return handled


async def record_events(store: Store, count: int) -> list[str]:
    return [
        await record(store, "card.lost", f"holder:{n}", f"card-{n}", {"n": n, "why": "挂失"})
        for n in range(count)
    ]


async def assert_stored_once(database: Database, event_ids: Sequence[str]) -> None:
    rows = await stored_rows(database)
    assert sorted(row.event_id for row in rows) == sorted(event_ids)
    async with database.session() as session:
        assert (await verify_chain(session)).intact


async def wait_for_rows(database: Database, count: int) -> None:
    async with asyncio.timeout(WAIT):
        while len(await stored_rows(database)) < count:
            await asyncio.sleep(0.01)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait([task])


class KilledAfterCommit:
    """The store as a crashing API sees it: the process dies as it acknowledges a batch
    whose rows are already committed."""

    def __init__(self, store: Store, *, acks_before_kill: int) -> None:
        self._store = store
        self._acks_left = acks_before_kill

    async def stream_read(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int
    ) -> list[StreamEntry]:
        return await self._store.stream_read(stream, group, consumer, count, block_ms)

    async def stream_reclaim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        return await self._store.stream_reclaim(stream, group, consumer, min_idle_ms, count)

    async def stream_trim_acknowledged(self, stream: str) -> int:
        return await self._store.stream_trim_acknowledged(stream)

    async def stream_ack(self, stream: str, group: str, entry_ids: Sequence[str]) -> None:
        if self._acks_left == 0:
            raise asyncio.CancelledError
        self._acks_left -= 1
        await self._store.stream_ack(stream, group, entry_ids)


class UnavailableAtFirst(KilledAfterCommit):
    """A store that refuses the first reads, like a Redis still starting."""

    def __init__(self, store: Store, *, failures: int) -> None:
        super().__init__(store, acks_before_kill=-1)
        self.failures_left = failures

    async def stream_read(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int
    ) -> list[StreamEntry]:
        if self.failures_left:
            self.failures_left -= 1
            raise StoreUnavailable("redis: connection refused")
        return await super().stream_read(stream, group, consumer, count, block_ms)


class SwallowsCancellation(KilledAfterCommit):
    """A store client that, like `asyncio.wait_for` on Python 3.11, can lose a cancellation."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, acks_before_kill=-1)
        self.reading = asyncio.Event()

    async def stream_read(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int
    ) -> list[StreamEntry]:
        self.reading.set()
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            return []
        return []


class DatabaseDownAtFirst(Database):
    def __init__(self, url: str, *, failures: int) -> None:
        super().__init__(url)
        self.failures_left = failures

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        if self.failures_left:
            self.failures_left -= 1
            raise OperationalError("INSERT", {}, ConnectionResetError("connection reset"))
        async with super().session() as session:
            yield session


class TestPersisting:
    async def test_recorded_events_arrive_in_sql_once(
        self, store: Store, database: Database
    ) -> None:
        event_ids = await record_events(store, 25)
        assert await drain(consumer_of(store, database, batch=10)) == 25
        await assert_stored_once(database, event_ids)
        first = (await stored_rows(database))[0]
        assert (first.action, first.actor, first.subject) == ("card.lost", "holder:0", "card-0")
        assert orjson.loads(first.data) == {"n": 0, "why": "挂失"}

    async def test_store_fields_are_folded_into_data(
        self, store: Store, database: Database
    ) -> None:
        fields = audit_fields("verify", "scanner:7", "card-1", {"scene": "library"})
        await store.stream_append(AUDIT_STREAM, {**fields, "outcome": "again", "status": "lost"})
        await drain(consumer_of(store, database))
        (row,) = await stored_rows(database)
        assert orjson.loads(row.data) == {"scene": "library", "outcome": "again", "status": "lost"}

    async def test_an_entry_appended_twice_is_stored_once(
        self, store: Store, database: Database
    ) -> None:
        fields = audit_fields("card.cancel", "admin:1", "card-9")
        for _ in range(2):
            await store.stream_append(AUDIT_STREAM, fields)
        assert await drain(consumer_of(store, database)) == 2
        await assert_stored_once(database, [fields["eid"]])


class TestNoLoss:
    async def test_a_consumer_killed_mid_stream_and_restarted_loses_and_doubles_nothing(
        self, store: Store, database: Database
    ) -> None:
        event_ids = await record_events(store, 60)
        doomed = consumer_of(KilledAfterCommit(store, acks_before_kill=2), database, batch=8)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.create_task(doomed.run())
        committed = len(await stored_rows(database))
        assert committed == 3 * 8, "killed after committing its third batch, before the ack"

        restarted = consumer_of(store, database, batch=8)
        assert await drain(restarted) == 60 - 2 * 8
        await assert_stored_once(database, event_ids)


class TestResilience:
    async def test_run_outlasts_an_unavailable_store(
        self, store: Store, database: Database
    ) -> None:
        event_ids = await record_events(store, 5)
        flaky = UnavailableAtFirst(store, failures=2)
        task = asyncio.create_task(consumer_of(flaky, database, retry_initial=0.01).run())
        try:
            await wait_for_rows(database, 5)
        finally:
            await stop(task)
        assert flaky.failures_left == 0
        await assert_stored_once(database, event_ids)

    async def test_run_outlasts_a_database_error(
        self, store: Store, database: Database, database_url: str
    ) -> None:
        flaky = DatabaseDownAtFirst(database_url, failures=2)
        try:
            event_ids = await record_events(store, 5)
            task = asyncio.create_task(consumer_of(store, flaky, retry_initial=0.01).run())
            try:
                await wait_for_rows(database, 5)
            finally:
                await stop(task)
            assert flaky.failures_left == 0
        finally:
            await flaky.dispose()
        await assert_stored_once(database, event_ids)
        assert await consumer_of(store, database).drain_once() == 0

    async def test_stops_even_when_a_library_swallowed_the_cancellation(
        self, store: Store, database: Database
    ) -> None:
        swallowing = SwallowsCancellation(store)
        task = asyncio.create_task(consumer_of(swallowing, database).run())
        await swallowing.reading.wait()
        async with asyncio.timeout(WAIT / 2):
            await stop(task)
        assert task.cancelled()

    async def test_a_trickle_is_written_in_gathered_batches(
        self, store: Store, database: Database
    ) -> None:
        batches: list[int] = []

        async def count_batch(records: Sequence[AuditRecord]) -> None:
            batches.append(len(records))

        consumer = AuditConsumer(
            store, database, consumer=CONSUMER, block_ms=50, gather_seconds=0.5,
            on_persisted=count_batch,
        )  # fmt: skip
        async with consumer.running():
            first = await record_events(store, 1)
            await wait_for_rows(database, 1)
            rest = []
            for _ in range(5):
                rest += await record_events(store, 1)
                await asyncio.sleep(0.02)
            await wait_for_rows(database, 6)
        assert batches == [1, 5]
        await assert_stored_once(database, first + rest)

    async def test_the_stream_lets_go_of_entries_only_once_they_are_stored(
        self, store: Store, database: Database
    ) -> None:
        consumer = consumer_of(store, database, batch=3)
        await record_events(store, 5)
        assert await consumer.trim_once() == 5  # no group has read them yet
        assert await consumer.drain_once() == 3
        assert await consumer.trim_once() == 2
        assert consumer.backlog == 2
        await drain(consumer)
        assert await consumer.trim_once() == 0
        assert len(await stored_rows(database)) == 5

    async def test_what_a_dead_consumer_left_is_taken_over(
        self, store: Store, database: Database
    ) -> None:
        event_ids = await record_events(store, 4)
        await store.stream_read(AUDIT_STREAM, DEFAULT_GROUP, "died-mid-batch", 10, 0)
        heir = AuditConsumer(store, database, consumer="heir", block_ms=0, reclaim_idle_ms=10)
        assert await heir.drain_once() == 0  # delivered to the dead one, not to the heir
        await asyncio.sleep(0.02)
        assert await heir.reclaim_once() == 4
        await assert_stored_once(database, event_ids)

    async def test_a_live_consumer_keeps_what_it_is_writing(
        self, store: Store, database: Database
    ) -> None:
        await record_events(store, 2)
        await store.stream_read(AUDIT_STREAM, DEFAULT_GROUP, "busy", 10, 0)
        other = AuditConsumer(store, database, consumer="other", block_ms=0)
        assert await other.reclaim_once() == 0

    async def test_workers_of_one_host_each_persist_and_observe_an_event_once(
        self, store: Store, database: Database
    ) -> None:
        seen: list[str] = []

        async def observe(records: Sequence[AuditRecord]) -> None:
            seen.extend(record.event_id for record in records)

        workers = [
            AuditConsumer(
                store, database, consumer=default_consumer_name() + f"/{n}", block_ms=20,
                batch=7, on_persisted=observe,
            )
            for n in range(2)
        ]  # fmt: skip
        async with workers[0].running(), workers[1].running():
            event_ids = await record_events(store, 60)
            await wait_for_rows(database, 60)
        await assert_stored_once(database, event_ids)
        assert sorted(seen) == sorted(event_ids)

    async def test_stopping_flushes_what_is_waiting(self, store: Store, database: Database) -> None:
        consumer = AuditConsumer(store, database, consumer=CONSUMER, block_ms=50)
        async with consumer.running():
            event_ids = await record_events(store, 30)
        await assert_stored_once(database, event_ids)


BROKEN_ENTRIES = {
    "no eid": {"at": "1767225600", "action": "a", "actor": "b"},
    "eid with spaces": {"eid": "not an id", "at": "1767225600", "action": "a", "actor": "b"},
    "time is not a number": {"eid": "e1", "at": "soon", "action": "a", "actor": "b"},
    "time is not finite": {"eid": "e1", "at": "nan", "action": "a", "actor": "b"},
    "time out of range": {"eid": "e1", "at": "1e300", "action": "a", "actor": "b"},
    "no time": {"eid": "e1", "action": "a", "actor": "b"},
    "no action": {"eid": "e1", "at": "1767225600", "actor": "b"},
    "no actor": {"eid": "e1", "at": "1767225600", "action": "a"},
    "empty action": {"eid": "e1", "at": "1767225600", "action": "", "actor": "b"},
    "empty actor": {"eid": "e1", "at": "1767225600", "action": "a", "actor": ""},
    "actor too long": {"eid": "e1", "at": "1767225600", "action": "a", "actor": "b" * 129},
    "subject too long": {
        "eid": "e1",
        "at": "1767225600",
        "action": "a",
        "actor": "b",
        "subject": "挂" * 129,
    },
    "NUL in action": {"eid": "e1", "at": "1767225600", "action": "a\x00", "actor": "b"},
    "action too long": {"eid": "e1", "at": "1767225600", "action": "a" * 65, "actor": "b"},
    "NUL in actor": {"eid": "e1", "at": "1767225600", "action": "a", "actor": "b\x00"},
    "surrogate in subject": {
        "eid": "e1",
        "at": "1767225600",
        "action": "a",
        "actor": "b",
        "subject": "\udc80",
    },
    "data not JSON": {"eid": "e1", "at": "1767225600", "action": "a", "actor": "b", "data": "{"},
    "data not an object": {
        "eid": "e1",
        "at": "1767225600",
        "action": "a",
        "actor": "b",
        "data": "[1]",
    },
    "surrogate in an extra field": {
        "eid": "e1",
        "at": "1767225600",
        "action": "a",
        "actor": "b",
        "outcome": "\ud800",
    },
}


class TestUnparseableEntries:
    @pytest.mark.parametrize("fields", BROKEN_ENTRIES.values(), ids=BROKEN_ENTRIES.keys())
    def test_are_refused_by_the_parser(self, fields: dict[str, str]) -> None:
        with pytest.raises(UnparseableEntry):
            parse_entry(StreamEntry("1-0", fields))

    @pytest.mark.parametrize("fields", BROKEN_ENTRIES.values(), ids=BROKEN_ENTRIES.keys())
    def test_become_a_storable_record_of_their_raw_fields(self, fields: dict[str, str]) -> None:
        kept = unparseable_record(StreamEntry("1-0", fields), "broken", parse_time())
        assert kept.action == UNPARSEABLE_ACTION
        kept.data.encode()
        assert "\x00" not in kept.data
        assert orjson.loads(kept.data)["reason"] == "broken"

    async def test_are_stored_raw_and_do_not_block_the_stream(
        self, store: Store, database: Database
    ) -> None:
        await store.stream_append(AUDIT_STREAM, {"eid": "bad-1", "at": "soon", "action": "x"})
        await store.stream_append(AUDIT_STREAM, {"actor": "b\x00", "action": "a" * 300})
        good = await record(store, "card.lost", "holder:1", "card-1")
        assert await drain(consumer_of(store, database)) == 3
        rows = await stored_rows(database)
        assert [row.action for row in rows] == [UNPARSEABLE_ACTION, UNPARSEABLE_ACTION, "card.lost"]
        assert rows[0].event_id == "bad-1"
        assert orjson.loads(rows[0].data)["fields"] == {"eid": "bad-1", "at": "soon", "action": "x"}
        assert rows[1].event_id.startswith("entry:")
        assert rows[2].event_id == good


class TestWellFormedEntries:
    def test_text_beyond_ascii_is_accepted_up_to_the_column_width(self) -> None:
        fields = {"eid": "e1", "at": "1767225600.5", "action": "card.lost"}
        parsed = parse_entry(StreamEntry("1-0", {**fields, "actor": "张" * 128, "subject": "卡"}))
        assert (parsed.actor, parsed.subject) == ("张" * 128, "卡")
        assert parsed.occurred_at == datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)


def parse_time() -> datetime:
    return datetime.now(UTC)


def test_each_process_consumes_under_its_own_name() -> None:
    script = "from app.audit.consumer import default_consumer_name as n; print(n())"
    other = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=True, text=True
    ).stdout.strip()
    mine = default_consumer_name()
    assert other != mine
    assert other.rsplit(":", 1)[0] == mine.rsplit(":", 1)[0] == socket.gethostname()[:50]
