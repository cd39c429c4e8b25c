"""Throughput of the audit consumer on SQLite, beside the physical limit of the same inserts.

Run: `.venv/bin/python -m load.bench_audit` (AUDIT_BENCH_EVENTS: verify entries per run,
default 10000). Each measurement gets its own copy of one migrated SQLite file under a temp
directory. Measured, one after the other:

- `sqlite3 executemany`: the finished rows (ids, hashes, stored time strings precomputed)
  inserted with the standard library, 500 per transaction: what SQLite itself costs.
- `parse`: `entry_record` over every entry (pure CPU).
- `append_records`: the parsed records chained and inserted, 500 per transaction.
- `drain_once`: the consumer end to end (memory store read, parse, append, ack), without a
  hook and with the misuse watch as `on_persisted`, whose runtime is reduced to what it
  touches (store, database, settings); every card is scanned at one venue, so no alert fires.
- `valid_scan`: the watch's per-event filter alone (pure CPU).

Each line gives events per second of wall time, CPU microseconds per event (this process,
all threads: aiosqlite works in a thread) and the rate as a share of `sqlite3 executemany`.
The end-to-end runs (own `redis-server`; PostgreSQL with AUDIT_BENCH_POSTGRES) also split the
consumer's CPU by phase: stream read, parse (and the rest of `drain_once`), chain + insert,
access log, notifications, begin + commit, ack, misuse watch.

Objects alive before the measurement (the entries, the imports) are frozen out of the
garbage collector and its young generation collected less often, as `ssc serve` and `ssc
audit consume` do after start-up (`app.long_lived`): otherwise each full collection walks the
bench's own 10,000 entries and is charged to the consumer.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import ExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ParamSpec, TypeVar, cast
from unittest import mock

import asyncpg
import uvloop

from app.audit import consumer as consumer_module
from app.audit.chain import (
    AUDIT_ROW_COLUMNS,
    GENESIS_HASH,
    AuditRecord,
    append_records,
    chain_hash,
    verify_chain,
)
from app.audit.consumer import AuditConsumer, entry_record
from app.audit.log import AUDIT_STREAM, audit_fields
from app.cards.models import CardStatus
from app.cards.snapshot import CardSnapshot
from app.clients.models import Organisation
from app.config import Settings
from app.db import Database, migrate
from app.long_lived import freeze_long_lived
from app.misuse.watch import MisuseWatch, valid_scan
from app.runtime import Runtime
from app.store import Store, StreamEntry
from app.store.base import AUDIT_OUTCOME_FIRST
from app.store.memory import MemoryStore
from app.store.redis import RedisStore
from load.servers import Stack

BATCH = 500
EVENTS = int(os.environ.get("AUDIT_BENCH_EVENTS", "10000"))
ORGANISATIONS = 20
CARDS = 2000
"""About five scans per card: below the per-minute rate limit, so the watch raises nothing."""
COLUMNS = AUDIT_ROW_COLUMNS
INSERT = f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def verify_entries(count: int) -> tuple[list[dict[str, str]], list[uuid.UUID]]:
    """Stream entries as the verify Lua script leaves them: `audit_fields` plus the store's
    `outcome` and `status` (the card snapshot); each card is always scanned at one venue."""
    organisations = [uuid.uuid4() for _ in range(ORGANISATIONS)]
    cards = [uuid.uuid4() for _ in range(CARDS)]
    entries = []
    for n in range(count):
        card = cards[n % CARDS]
        organisation = organisations[card.int % ORGANISATIONS]
        fields = audit_fields(
            "verify",
            f"scanner-{organisation.hex[:12]}",
            "",
            {
                "kid": f"k{n % 3}-Jx8sQ2vN0aT5yR1w",
                "cti": os.urandom(16).hex(),
                "scene": None,
                "org": str(organisation),
            },
        )
        snapshot = CardSnapshot.of(CardStatus.active, card, "张*").encode().decode()
        entries.append({**fields, "outcome": AUDIT_OUTCOME_FIRST, "status": snapshot})
    return entries, organisations


def stream_entries(entries: Sequence[dict[str, str]]) -> list[StreamEntry]:
    return [StreamEntry(f"{n + 1}-0", fields) for n, fields in enumerate(entries)]


def chained_rows(records: Sequence[AuditRecord]) -> list[tuple[Any, ...]]:
    """The rows as SQLite stores them (SQLAlchemy's naive UTC time text), chain included."""
    rows = []
    prev_hash = GENESIS_HASH
    for row_id, record in enumerate(records, start=1):
        digest = chain_hash(prev_hash, record)
        at = record.occurred_at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        rows.append(
            (
                row_id,
                record.event_id,
                at,
                record.action,
                record.actor,
                record.subject,
                record.data,
                prev_hash,
                digest,
            )
        )
        prev_hash = digest
    return rows


class Timer:
    """Wall and process CPU time (all threads) of one measured block."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def report(name: str, timer: Timer, count: int, limit: float | None) -> float:
    rate = count / timer.wall
    share = "" if limit is None else f"{rate / limit:7.1%}"
    print(f"{name:<32} {rate:>10,.0f} ev/s {timer.cpu / count * 1e6:>8.1f} us CPU/ev {share}")
    return rate


def raw_inserts(path: Path, rows: Sequence[tuple[Any, ...]]) -> Timer:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    try:
        with Timer() as timer:
            for start in range(0, len(rows), BATCH):
                connection.execute("BEGIN")
                connection.executemany(INSERT, rows[start : start + BATCH])
                connection.execute("COMMIT")
    finally:
        connection.close()
    return timer


async def timed(run: Callable[[], Awaitable[None]]) -> Timer:
    with Timer() as timer:
        await run()
    return timer


P = ParamSpec("P")
R = TypeVar("R")
PHASES = (
    "stream read",
    "parse and the rest",
    "chain + insert",
    "access log",
    "notifications",
    "begin + commit",
    "ack",
    "misuse watch",
)


class Phases:
    """CPU time of the consumer by phase, each timed once per batch (a clock read costs about
    a microsecond: per event it would weigh on what it measures)."""

    def __init__(self) -> None:
        self.cpu = dict.fromkeys(PHASES, 0.0)

    def timing(self, name: str, call: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        async def timed_call(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.process_time()
            try:
                return await call(*args, **kwargs)
            finally:
                self.cpu[name] += time.process_time() - started

        return timed_call

    def instrument(self, stack: ExitStack, consumer: AuditConsumer) -> None:
        """Wraps what `AuditConsumer.drain_once` calls; the transaction's own cost is what its
        session takes beyond the three writers inside it."""
        for name, attribute in (
            ("chain + insert", "append_records"),
            ("access log", "record_disclosures"),
            ("notifications", "record_notifications"),
        ):
            wrapped = self.timing(name, getattr(consumer_module, attribute))
            stack.enter_context(mock.patch.object(consumer_module, attribute, wrapped))
        store, database = consumer.store, consumer.database
        stack.enter_context(
            mock.patch.object(store, "stream_read", self.timing("stream read", store.stream_read))
        )
        stack.enter_context(
            mock.patch.object(store, "stream_ack", self.timing("ack", store.stream_ack))
        )
        if consumer.on_persisted is not None:
            consumer.on_persisted = self.timing("misuse watch", consumer.on_persisted)
        session = database.session

        @asynccontextmanager
        async def timed_session() -> AsyncIterator[Any]:
            started = time.process_time()
            try:
                async with session() as opened:
                    yield opened
            finally:
                self.cpu["begin + commit"] += time.process_time() - started

        stack.enter_context(mock.patch.object(database, "session", timed_session))

    def report(self, total: Timer, count: int) -> None:
        cpu = dict(self.cpu)
        cpu["begin + commit"] -= cpu["chain + insert"] + cpu["access log"] + cpu["notifications"]
        cpu["parse and the rest"] = total.cpu - sum(
            seconds for name, seconds in cpu.items() if name != "parse and the rest"
        )
        for name in PHASES:
            print(f"  {name:<30} {cpu[name] / count * 1e6:>8.1f} us CPU/ev")


async def append_all(database: Database, records: Sequence[AuditRecord]) -> None:
    for start in range(0, len(records), BATCH):
        async with database.session() as session:
            await append_records(session, records[start : start + BATCH])


async def drain(
    url: str,
    entries: Sequence[dict[str, str]],
    organisations: Sequence[uuid.UUID],
    watch: bool,
    store: Store | None = None,
    phases: Phases | None = None,
) -> Timer:
    database = Database(url)
    store = store or MemoryStore()
    try:
        for start in range(0, len(entries), 20):
            await asyncio.gather(
                *(store.stream_append(AUDIT_STREAM, f) for f in entries[start : start + 20])
            )
        hook = None
        if watch:
            async with database.session() as session:
                session.add_all(
                    Organisation(
                        id=organisation,
                        name=f"venue {n}",
                        venue_type="museum",
                        region_code="360100",
                        latitude=28.68 + n / 100,
                        longitude=115.85,
                    )
                    for n, organisation in enumerate(organisations)
                )
            runtime = SimpleNamespace(store=store, database=database, settings=Settings())
            hook = MisuseWatch(cast(Runtime, runtime)).on_persisted
        consumer = AuditConsumer(
            store, database, consumer="bench", batch=BATCH, block_ms=0, on_persisted=hook
        )

        async def run() -> None:
            while await consumer.drain_once():
                pass

        with ExitStack() as stack:
            if phases is not None:
                phases.instrument(stack, consumer)
            freeze_long_lived()
            timer = await timed(run)
        async with database.session() as session:
            chain = await verify_chain(session)
        # More rows than entries would be alerts the watch raised (and recorded): not meant.
        if chain.rows != len(entries) or not chain.intact:
            raise SystemExit(f"drain left {chain.rows} rows, chain {chain.reason}")
        return timer
    finally:
        await store.close()
        await database.dispose()


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as directory:
        template = Path(directory) / "template.db"
        await migrate(f"sqlite+aiosqlite:///{template}")

        def fresh(name: str) -> Path:
            path = Path(directory) / f"{name}.db"
            shutil.copyfile(template, path)
            return path

        entries, organisations = verify_entries(EVENTS)
        now = datetime.now(UTC)
        records = [entry_record(entry, now) for entry in stream_entries(entries)]
        print(f"{EVENTS} verify entries, batches of {BATCH}, SQLite (WAL) under {directory}")

        limit = report(
            "sqlite3 executemany", raw_inserts(fresh("raw"), chained_rows(records)), EVENTS, None
        )
        with Timer() as parse:
            for entry in stream_entries(entries):
                entry_record(entry, now)
        report("parse (entry_record)", parse, EVENTS, None)
        database = Database(f"sqlite+aiosqlite:///{fresh('append')}")
        try:
            append = await timed(lambda: append_all(database, records))
        finally:
            await database.dispose()
        report("append_records", append, EVENTS, limit)
        for name, watch in (("drain_once", False), ("drain_once + misuse watch", True)):
            url = f"sqlite+aiosqlite:///{fresh(name.replace(' ', ''))}"
            report(name, await drain(url, entries, organisations, watch), EVENTS, limit)
        with Timer() as scans:
            for record in records:
                valid_scan(record)
        report("valid_scan", scans, EVENTS, None)
        await end_to_end(entries, organisations, lambda name: f"sqlite+aiosqlite:///{fresh(name)}")


async def end_to_end(
    entries: Sequence[dict[str, str]],
    organisations: Sequence[uuid.UUID],
    sqlite_url: Callable[[str], str],
) -> None:
    """The consumer as it runs (`drain_once` with the misuse watch) on its own `redis-server`,
    on SQLite and, with AUDIT_BENCH_POSTGRES (an admin URL, e.g.
    `postgresql+asyncpg://postgres@127.0.0.1:5432/postgres`), on a database of its own there."""
    with Stack() as stack:
        stack.start_redis()
        backends = [("SQLite", sqlite_url("e2e"))]
        admin = os.environ.get("AUDIT_BENCH_POSTGRES")
        name = f"ssc_bench_{os.getpid()}"
        if admin:
            await _postgres(admin, f"CREATE DATABASE {name}")
            backends.append(("PostgreSQL", admin.rsplit("/", 1)[0] + "/" + name))
            await migrate(backends[-1][1])
        try:
            for backend, url in backends:
                store = RedisStore.from_url(stack.redis_url, namespace=f"bench-{backend}")
                phases = Phases()
                try:
                    timer = await drain(url, entries, organisations, True, store, phases)
                finally:
                    await store.close()
                report(f"end to end: Redis + {backend}", timer, len(entries), None)
                phases.report(timer, len(entries))
        finally:
            if admin:
                await _postgres(admin, f"DROP DATABASE IF EXISTS {name}")


async def _postgres(admin_url: str, sql: str) -> None:
    connection = await asyncpg.connect(admin_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


if __name__ == "__main__":
    uvloop.run(main())
