"""Persists the audit stream to SQL, at least once and idempotently.

Each cycle reads a batch from the stream's consumer group, writes it in one transaction
(rows keyed by the entry's `eid`, so a redelivered entry is skipped) and acknowledges it only
after the commit. A crash between commit and acknowledgement redelivers the batch to the
same consumer name, which skips what is already stored: nothing lost, nothing doubled.

The same transaction writes the holders' access-log entries of the batch
(`app.accesslog.recorder`), keyed by event id as well: a kill and restart mid-stream neither
loses nor doubles one.

Every `checkpoint_every` seconds (SSC_AUDIT_CHECKPOINT_INTERVAL), and once more at shutdown,
the consumer also writes a signed checkpoint of the chain's head (`app.audit.checkpoints`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson

from app.accesslog.recorder import record_disclosures
from app.audit.chain import AUDIT_TABLE, AuditRecord, append_records, canonical_data
from app.audit.checkpoints import Checkpoint, checkpoint_key, write_checkpoint
from app.audit.log import AUDIT_STREAM
from app.background_tasks import stop_tasks
from app.cards.snapshot import snapshot_without_view
from app.cooperative import in_slices
from app.db import Database, DatabaseUnavailable
from app.notifications.delivery import NotificationSenders, notification_sweep
from app.notifications.service import record_notifications
from app.runtime import Runtime
from app.store import Store, StoreUnavailable, StreamEntry

logger = logging.getLogger("ssc.audit")

DEFAULT_GROUP = "sql-writer"
UNPARSEABLE_ACTION = "audit.unparseable"
CONSUMER_ACTOR = "system:audit-consumer"
IDLE_POLL_SECONDS = 0.1
"""How long `run` pauses after an empty read when reads do not block (`block_ms=0`)."""
RECLAIM_IDLE_MS = 60_000
"""How long an entry stays unacknowledged with one consumer before another takes it over:
far beyond a batch's write time, so a live consumer keeps what it is writing."""
RECLAIM_EVERY_SECONDS = 15.0
TRIM_EVERY_SECONDS = 1.0
BACKLOG_WARNING = 100_000
"""Entries waiting in the stream beyond which each trim warns (about half a minute of a
busy worker's scans)."""
GATHER_SECONDS = 0.02
"""How long `run` lets entries gather after a batch that was not full.

Each batch costs a transaction, the chain lock, the head read and a commit besides its rows;
at moderate rates, batches of a few entries made the in-API consumer cost about as much CPU
as the verify requests that fed it. A longer window saves more CPU but processes a larger
batch in one go on the event loop, which the verify requests then wait for: at half the
one-worker maximum, no window gave p99 12 ms with the worker 0.97 cores busy, 0.1 s gave
p99 30 ms at 0.77 cores, 0.02 s gave p99 9 ms at 0.84 cores (load/PROFILE.md)."""

_EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_CORE_FIELDS = frozenset({"eid", "at", "action", "actor", "subject", "data"})

PersistedHook = Callable[[Sequence[AuditRecord]], Awaitable[None]]
"""Called with each batch once it is stored (e.g. the misuse watch); may see a redelivered
event again, and its failures never hold up the stream."""


def _width(column: str) -> int:
    """The column's width, so parsing refuses what PostgreSQL would refuse for the batch."""
    column_type = AUDIT_TABLE.columns[column].type
    length = getattr(column_type, "length", None)
    if not isinstance(length, int):
        raise TypeError(f"audit_events.{column} has no width")
    return length


_WIDTHS = {name: _width(name) for name in ("action", "actor", "subject")}


class UnparseableEntry(ValueError):
    """A stream entry that does not make an audit row; it is stored raw instead."""


def default_consumer_name() -> str:
    """Host name and process id: each process its own consumer, so the workers of one host
    never read each other's unacknowledged entries (with one shared name each re-read what
    the others had in flight, parsed it twice and fed it to the misuse watch twice). What a
    process leaves unacknowledged when it dies is reclaimed by the others (`reclaim_once`)."""
    return f"{socket.gethostname()[:50] or 'audit'}:{os.getpid()}"


def parse_entry(entry: StreamEntry) -> AuditRecord:
    """The audit record of a stream entry written with `app.audit.log.audit_fields`.

    Fields beyond those (the verify script's `outcome` and `status`) are folded into `data`;
    they are set by the store, so they win over a producer's key of the same name.

    :raises UnparseableEntry: when a field is missing, malformed or too long for its column.
    """
    fields = entry.fields
    try:
        event_id, at, action, actor = fields["eid"], fields["at"], fields["action"], fields["actor"]
    except KeyError as missing:
        raise UnparseableEntry(f"{missing.args[0]} is missing") from None
    subject = fields.get("subject", "")
    if not _EVENT_ID.fullmatch(event_id):
        raise UnparseableEntry("eid is not 1-64 characters of [A-Za-z0-9._:-]")
    occurred_at = _timestamp(at)
    if not action:
        raise UnparseableEntry("action is empty")
    if not actor:
        raise UnparseableEntry("actor is empty")
    _check_text("action", action)
    _check_text("actor", actor)
    _check_text("subject", subject)
    try:
        data: Any = orjson.loads(fields.get("data", "{}"))
    except orjson.JSONDecodeError as error:
        raise UnparseableEntry(f"data is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise UnparseableEntry("data is not a JSON object")
    for name in fields.keys() - _CORE_FIELDS:
        data[name] = fields[name]
    if isinstance(data.get("status"), str):
        # The card snapshot a scan read: kept without its sealed attribute view, which the
        # permanent audit log has no use for (personal data, even sealed, is kept no longer
        # than needed).
        data["status"] = snapshot_without_view(data["status"])
    try:
        stored = canonical_data(data)
    except TypeError as error:  # e.g. a lone surrogate in an extra field
        raise UnparseableEntry(f"data cannot be stored: {error}") from None
    return AuditRecord(event_id, occurred_at, action, actor, subject, stored, data)


def unparseable_record(entry: StreamEntry, reason: str, now: datetime) -> AuditRecord:
    """Keeps a broken entry as evidence (raw fields, escaped) rather than blocking the stream.

    Keyed by its `eid` when that is usable, so a redelivery is still skipped; otherwise by
    the stream entry id, which is stable across redeliveries.
    """
    eid = entry.fields.get("eid", "")
    event_id = eid if _EVENT_ID.fullmatch(eid) else f"entry:{entry.entry_id}"[:64]
    raw = {_escaped(name): _escaped(value) for name, value in entry.fields.items()}
    data = {"reason": reason, "entry_id": _escaped(entry.entry_id), "fields": raw}
    return AuditRecord(
        event_id=event_id,
        occurred_at=now,
        action=UNPARSEABLE_ACTION,
        actor=CONSUMER_ACTOR,
        subject="",
        data=canonical_data(data),
    )


def entry_record(entry: StreamEntry, now: datetime) -> AuditRecord:
    try:
        return parse_entry(entry)
    except UnparseableEntry as error:
        logger.warning("audit entry %s is unparseable: %s", entry.entry_id, error)
        return unparseable_record(entry, str(error), now)


def _check_text(name: str, value: str) -> None:
    """Refuses what the column or a driver would reject (overlong text, NUL, surrogates),
    since one failing row would fail its whole batch again on every redelivery."""
    if len(value) > _WIDTHS[name]:
        raise UnparseableEntry(f"{name} is longer than {_WIDTHS[name]} characters")
    if "\x00" in value:
        raise UnparseableEntry(f"{name} contains NUL")
    if not value.isascii():  # ASCII text holds no surrogate: only other text is encoded
        try:
            value.encode()
        except UnicodeEncodeError:
            raise UnparseableEntry(f"{name} is not valid Unicode text") from None


def _timestamp(value: str) -> datetime:
    try:
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ValueError(value)
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        raise UnparseableEntry("at is not a Unix time in seconds") from None


def _escaped(value: str) -> str:
    """Text any database stores: lone surrogates and NUL become visible escapes."""
    return value.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")


class AuditConsumer:
    """Moves audit events from the stream to the hash-chained `audit_events` table."""

    def __init__(
        self,
        store: Store,
        database: Database,
        *,
        stream: str = AUDIT_STREAM,
        group: str = DEFAULT_GROUP,
        consumer: str | None = None,
        batch: int = 500,
        block_ms: int = 1000,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        gather_seconds: float = GATHER_SECONDS,
        reclaim_idle_ms: int = RECLAIM_IDLE_MS,
        reclaim_every: float = RECLAIM_EVERY_SECONDS,
        clock: Callable[[], float] = time.time,
        on_persisted: PersistedHook | None = None,
        checkpoint_key: bytes | None = None,
        checkpoint_every: float = 0.0,
        notification_senders: NotificationSenders | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be positive")
        if block_ms < 0:
            raise ValueError("block_ms must not be negative")
        self.store = store
        self.database = database
        self.stream = stream
        self.group = group
        self.consumer = consumer or default_consumer_name()
        self.batch = batch
        self.block_ms = block_ms
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.gather_seconds = gather_seconds
        self.reclaim_idle_ms = reclaim_idle_ms
        self.reclaim_every = reclaim_every
        self._clock = clock
        self.on_persisted = on_persisted
        self.checkpoint_key = checkpoint_key
        self.checkpoint_every = checkpoint_every
        self.notification_senders = notification_senders or NotificationSenders()
        """Delivery channels besides the inbox (`app.notifications.delivery`)."""
        self.backlog = 0
        """Entries waiting in the stream at the last `trim_once`."""
        self._writing = False
        self._stopping = False

    async def drain_once(self, *, block_ms: int | None = None) -> int:
        """One read, write and acknowledgement; returns the entries acknowledged (0: none
        waiting). Acknowledges only after the commit, so a failure redelivers the batch.

        :raises StoreUnavailable: when the store cannot be reached.
        :raises DatabaseUnavailable: when the database cannot be reached or the commit fails.
        :raises sqlalchemy.exc.SQLAlchemyError: when the batch cannot be written.
        """
        entries = await self.store.stream_read(
            self.stream,
            self.group,
            self.consumer,
            self.batch,
            self.block_ms if block_ms is None else block_ms,
        )
        return await self._persist(entries)

    async def reclaim_once(self) -> int:
        """Takes over and persists entries another consumer left unacknowledged for
        `reclaim_idle_ms` (it died, or is stuck); returns how many.

        :raises StoreUnavailable, DatabaseUnavailable, SQLAlchemyError: as `drain_once`.
        """
        entries = await self.store.stream_reclaim(
            self.stream, self.group, self.consumer, self.reclaim_idle_ms, self.batch
        )
        if entries:
            logger.warning("audit: took over %d entries left by another consumer", len(entries))
        return await self._persist(entries)

    async def trim_once(self) -> int:
        """Drops from the stream what every consumer group has acknowledged; returns and keeps
        (`backlog`) how many entries wait, and warns when that many means the consumers are
        falling behind: the stream keeps them all, in Redis memory, until they are written.

        :raises StoreUnavailable: when the store cannot be reached.
        """
        self.backlog = await self.store.stream_trim_acknowledged(self.stream)
        if self.backlog > BACKLOG_WARNING:
            logger.warning(
                "audit: %d entries wait in the stream; add consumers (ssc audit consume)",
                self.backlog,
            )
        return self.backlog

    async def checkpoint_once(self) -> Checkpoint | None:
        """Writes a signed checkpoint of the chain's head unless the latest one names it
        already (or no key is set); returns it, and logs it so copies live outside the
        database.

        :raises DatabaseUnavailable, SQLAlchemyError: as `drain_once`.
        """
        if self.checkpoint_key is None:
            return None
        now = datetime.fromtimestamp(self._clock(), UTC)
        async with self.database.session() as session:
            written = await write_checkpoint(session, self.checkpoint_key, now)
        if written is not None:
            logger.info(
                "audit checkpoint: %s hash %s mac %s",
                written.describe(),
                written.row_hash,
                written.mac,
            )
        return written

    async def _persist(self, entries: Sequence[StreamEntry]) -> int:
        if not entries:
            return 0
        now = datetime.fromtimestamp(self._clock(), UTC)
        records = [entry_record(entry, now) async for part in in_slices(entries) for entry in part]
        self._writing = True
        try:
            async with self.database.session() as session:
                written = await append_records(session, records)
                # Entries are only ever stored with their audit rows: if every row was new,
                # no entry of the batch can be stored yet.
                await record_disclosures(session, records, look_up_stored=written < len(records))
                notified = await record_notifications(session, records, self.notification_senders)
            await self.store.stream_ack(self.stream, self.group, [e.entry_id for e in entries])
        finally:
            self._writing = False
        if notified:
            self.notification_senders.wake()  # the sweep sends them (`notification_sweep`)
        if written < len(entries):
            logger.info("audit: %d redelivered entries were already stored", len(entries) - written)
        if self.on_persisted is not None:
            try:
                await self.on_persisted(records)
            except Exception:
                logger.exception("audit: the on_persisted hook failed; the events are stored")
        return len(entries)

    async def run(self) -> None:
        """Drains until stopped or cancelled. Store and database failures are logged and
        retried with exponential backoff: audit events wait in the stream, never dropped."""
        delay = self.retry_initial
        reclaim_at = trim_at = time.monotonic()
        checkpoint_at = reclaim_at + self.checkpoint_every
        checkpoints = self.checkpoint_key is not None and self.checkpoint_every > 0
        while not self._stopping:
            _raise_if_cancelled()
            try:
                if checkpoints and time.monotonic() >= checkpoint_at:
                    checkpoint_at = time.monotonic() + self.checkpoint_every
                    await self.checkpoint_once()
                if time.monotonic() >= reclaim_at:
                    reclaim_at = time.monotonic() + self.reclaim_every
                    await self.reclaim_once()
                if time.monotonic() >= trim_at:
                    trim_at = time.monotonic() + TRIM_EVERY_SECONDS
                    await self.trim_once()
                handled = await self.drain_once()
            except StoreUnavailable as error:
                logger.warning("audit stream unavailable, retry in %.1f s: %s", delay, error)
            except DatabaseUnavailable:
                pass  # the database logs the outage once; the events wait in the stream
            except Exception:
                logger.exception("writing audit events failed, retry in %.1f s", delay)
            else:
                delay = self.retry_initial
                if not handled and self.block_ms == 0:
                    await asyncio.sleep(IDLE_POLL_SECONDS)
                elif 0 < handled < self.batch and self.gather_seconds > 0:
                    await asyncio.sleep(self.gather_seconds)
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)

    async def flush(self, *, max_seconds: float) -> int:
        """Writes what is waiting now, without blocking for more; returns the entries handled.

        Used at shutdown, since the memory store forgets its stream when the process exits.
        Never raises: failures are logged and the entries stay in the stream.
        """
        handled = 0
        try:
            async with asyncio.timeout(max_seconds):
                while count := await self.drain_once(block_ms=0):
                    handled += count
                    _raise_if_cancelled()
        except TimeoutError:
            logger.warning(
                "audit flush stopped after %.1f s; the rest stays in the stream", max_seconds
            )
        except Exception:
            logger.exception("audit flush failed; the rest stays in the stream")
        return handled

    @asynccontextmanager
    async def running(self, *, stop_timeout: float = 5.0) -> AsyncIterator[None]:
        """Runs the consumer in the background; on exit stops it and flushes the stream.

        A batch being written is let finish (bounded by `stop_timeout`): cancelling inside a
        transaction can leave a SQLite connection holding the write lock. A read or a backoff
        pause is cancelled at once.
        """
        self._stopping = False
        task = asyncio.create_task(self.run(), name=f"audit-consumer:{self.consumer}")
        try:
            yield
        finally:
            self._stopping = True
            if not self._writing:
                task.cancel()
            _, pending = await asyncio.wait([task], timeout=stop_timeout)
            await stop_tasks(pending)  # still writing, or its cancellation was swallowed
            await self.flush(max_seconds=stop_timeout)
            if self.checkpoint_every > 0:
                await self._final_checkpoint(stop_timeout)

    async def _final_checkpoint(self, max_seconds: float) -> None:
        """At shutdown: the head as left, anchored. Never raises."""
        try:
            async with asyncio.timeout(max_seconds):
                await self.checkpoint_once()
        except (DatabaseUnavailable, TimeoutError):
            logger.warning("audit: the shutdown checkpoint could not be written")
        except Exception:
            logger.exception("audit: the shutdown checkpoint could not be written")


def _raise_if_cancelled() -> None:
    """Re-raises a cancellation that a library swallowed: on Python 3.11, `asyncio.wait_for`
    (used inside redis-py) can return normally although its task was cancelled."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@asynccontextmanager
async def audit_consumer(
    runtime: Runtime, *, on_persisted: PersistedHook | None = None
) -> AsyncIterator[AuditConsumer]:
    """The API's consumer, with an engine of its own: its chain-lock transactions never take a
    connection from the request pool, and its statements never mix with a request's. The
    notification sweep (delivery by the senders besides the inbox) runs next to it, on the
    same engine."""
    settings = runtime.settings
    database = Database(settings.database_url, health=runtime.database.health)
    every = settings.audit_checkpoint_interval
    consumer = AuditConsumer(
        runtime.store,
        database,
        on_persisted=on_persisted,
        checkpoint_key=checkpoint_key(settings) if every > 0 else None,
        checkpoint_every=every,
        notification_senders=runtime.notification_senders,
    )
    try:
        async with (
            consumer.running(),
            notification_sweep(
                runtime.notification_senders,
                database,
                every=settings.notification_sweep_interval,
            ),
        ):
            yield consumer
    finally:
        await database.dispose()
