"""`MemoryStore`: the `Store` protocol inside one process, for laptops, `make run` and tests.

Every method is atomic with respect to other coroutines: a check-and-set never awaits
between the check and the set. Only `stream_read` (while blocking) and subscriptions wait.
State lives in this process only, so several workers each see their own store.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from app.store.base import (
    AUDIT_OUTCOME_AGAIN,
    AUDIT_OUTCOME_FIRST,
    AUDIT_OUTCOME_PRINCIPAL_REJECTED,
    EPOCH_KEY,
    EpochChanged,
    ScanClaim,
    ScanClaimResult,
    StoreError,
    StoreUnavailable,
    StreamEntry,
    Subscription,
    check_scan_claim,
)

SUBSCRIPTION_BUFFER = 10_000
"""Messages a subscriber may lag behind before it is cut off, like Redis' output buffer limit."""

_StreamId = tuple[int, int]


@dataclass(slots=True)
class _Value:
    data: bytes
    expires_at: float | None


@dataclass(slots=True)
class _Group:
    last_delivered: _StreamId = (0, 0)
    pending: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per consumer, the ids delivered and not yet acknowledged, in delivery order, with the
    time of their last delivery."""
    owner: dict[str, str] = field(default_factory=dict)
    """Entry id -> the consumer that holds it pending."""


@dataclass(slots=True)
class _Stream:
    ids: list[_StreamId] = field(default_factory=list)
    entries: dict[str, dict[str, str]] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    last_id: _StreamId = (0, 0)
    groups: dict[str, _Group] = field(default_factory=dict)
    appended: asyncio.Event = field(default_factory=asyncio.Event)


class MemorySubscription:
    """Messages of one channel, buffered in an asyncio queue until read."""

    def __init__(self, store: MemoryStore, channel: str) -> None:
        self._store = store
        self._channel = channel
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=SUBSCRIPTION_BUFFER + 1)
        self._closed = False
        self._overflowed = False

    def _deliver(self, message: bytes) -> None:
        if self._overflowed:
            return
        if self._queue.qsize() >= SUBSCRIPTION_BUFFER:
            # A subscriber that silently missed messages would serve stale cache entries;
            # failing it makes the owner resubscribe and start afresh.
            self._overflowed = True
            self._store._unsubscribe(self._channel, self)
            self._queue.put_nowait(None)
            return
        self._queue.put_nowait(message)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        message = await self._queue.get()
        if message is None:
            if self._overflowed and not self._closed:
                raise StoreUnavailable(f"subscriber of {self._channel!r} fell behind")
            raise StopAsyncIteration
        return message

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._store._unsubscribe(self._channel, self)
        # Wakes a reader blocked in __anext__; the slot kept free in the queue guarantees room.
        if not self._queue.full():
            self._queue.put_nowait(None)


class MemoryStore:
    """In-process `Store`: expiry by monotonic time, streams with consumer groups, pub/sub."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, _Value] = {}
        self._expiries: list[tuple[float, str]] = []
        self._streams: dict[str, _Stream] = {}
        self._channels: dict[str, set[MemorySubscription]] = {}
        self._closed = False

    async def ping(self) -> None:
        if self._closed:
            raise StoreUnavailable("store is closed")

    async def get(self, key: str) -> bytes | None:
        value = self._live(key, self._clock())
        return None if value is None else value.data

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = self._clock()
        values = [self._live(key, now) for key in keys]
        return [None if value is None else value.data for value in values]

    async def incr_and_get_many(
        self, counter: str, ttl: float, keys: Sequence[str]
    ) -> tuple[int, list[bytes | None]]:
        return await self.incr(counter, ttl), await self.get_many(keys)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        now = self._clock()
        self._sweep(now)
        self._put(key, value, _expiry(now, ttl))

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None) -> bool:
        now = self._clock()
        self._sweep(now)
        expires_at = _expiry(now, ttl)
        if self._live(key, now) is not None:
            return False
        self._put(key, value, expires_at)
        return True

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)
        self._streams.pop(key, None)

    async def incr(self, key: str, ttl: float | None = None, amount: int = 1) -> int:
        now = self._clock()
        self._sweep(now)
        expires_at = _expiry(now, ttl)
        current = self._live(key, now)
        if current is None:
            self._put(key, str(amount).encode(), expires_at)
            return amount
        try:
            count = int(current.data) + amount
        except ValueError:
            raise StoreError(f"value at {key!r} is not an integer") from None
        current.data = str(count).encode()
        return count

    async def write_many(
        self,
        values: Sequence[tuple[str, bytes, float]],
        counters: Sequence[tuple[str, int, float]],
    ) -> list[int]:
        for key, value, ttl in values:
            await self.set(key, value, ttl)
        return [await self.incr(key, ttl, amount) for key, amount, ttl in counters]

    async def publish(self, channel: str, message: bytes) -> None:
        for subscription in list(self._channels.get(channel, ())):
            subscription._deliver(message)

    async def subscribe(self, channel: str) -> Subscription:
        subscription = MemorySubscription(self, channel)
        self._channels.setdefault(channel, set()).add(subscription)
        return subscription

    def _unsubscribe(self, channel: str, subscription: MemorySubscription) -> None:
        subscribers = self._channels.get(channel)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._channels[channel]

    async def stream_append(self, stream: str, fields: Mapping[str, str]) -> str:
        if not fields:
            raise ValueError("a stream entry needs at least one field")
        return self._append(stream, dict(fields))

    async def stream_read(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int
    ) -> list[StreamEntry]:
        """Pending entries of `consumer` first; only when it has none, new entries.

        Waits up to `block_ms` for new entries; `block_ms <= 0` returns at once.
        """
        if count < 1:
            raise ValueError("count must be positive")
        deadline = self._clock() + block_ms / 1000
        while True:
            state = self._stream(stream)
            entries = _read_group(
                state, state.groups.setdefault(group, _Group()), consumer, count, self._clock()
            )
            remaining = deadline - self._clock()
            if entries or remaining <= 0:
                return entries
            try:
                await asyncio.wait_for(state.appended.wait(), remaining)
            except TimeoutError:
                return []

    async def stream_ack(self, stream: str, group: str, entry_ids: Sequence[str]) -> None:
        state = self._streams.get(stream)
        consumer_group = None if state is None else state.groups.get(group)
        if consumer_group is None:
            return
        for entry_id in entry_ids:
            consumer = consumer_group.owner.pop(entry_id, None)
            if consumer is not None:
                consumer_group.pending[consumer].pop(entry_id, None)

    async def stream_trim_acknowledged(self, stream: str) -> int:
        state = self._streams.get(stream)
        if state is None:
            return 0
        if state.groups:
            needed = min(_oldest_needed(group) for group in state.groups.values())
            cut = bisect.bisect_left(state.ids, needed)
            for trimmed in state.keys[:cut]:
                del state.entries[trimmed]
            del state.ids[:cut]
            del state.keys[:cut]
        return len(state.ids)

    async def stream_reclaim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        if count < 1:
            raise ValueError("count must be positive")
        state = self._streams.get(stream)
        consumer_group = None if state is None else state.groups.get(group)
        if state is None or consumer_group is None:
            return []
        now = self._clock()
        idle_since = now - min_idle_ms / 1000
        stale = sorted(
            (_order(entry_id), entry_id, owner)
            for owner, delivered in consumer_group.pending.items()
            for entry_id, at in delivered.items()
            if at <= idle_since
        )
        reclaimed: list[StreamEntry] = []
        mine = consumer_group.pending.setdefault(consumer, {})
        for _, entry_id, owner in stale:
            if len(reclaimed) == count:
                break
            del consumer_group.pending[owner][entry_id]
            fields = state.entries.get(entry_id)
            if fields is None:  # trimmed away while pending: dropped, as Redis 7 does
                consumer_group.owner.pop(entry_id, None)
                continue
            mine[entry_id] = now
            consumer_group.owner[entry_id] = consumer
            reclaimed.append(StreamEntry(entry_id, dict(fields)))
        return reclaimed

    async def claim_scans(
        self, claims: Sequence[ScanClaim], *, epoch: bytes | None = None
    ) -> list[ScanClaimResult]:
        for claim in claims:
            check_scan_claim(claim)
        now = self._clock()
        self._sweep(now)
        if epoch is not None and claims:
            found = self._live(EPOCH_KEY, now)
            if found is None or found.data != epoch:
                raise EpochChanged(None if found is None else found.data)
        return [self._claim(claim, now) for claim in claims]

    async def close(self) -> None:
        self._closed = True
        for subscribers in list(self._channels.values()):
            for subscription in list(subscribers):
                await subscription.aclose()

    def _claim(self, claim: ScanClaim, now: float) -> ScanClaimResult:
        principal_value = self._live(claim.principal_key, now)
        principal = None if principal_value is None else principal_value.data
        first = False
        existing: bytes | None = None
        status: bytes | None = None
        if principal is None:  # Nobody is answered this: see `ScanClaim`.
            return ScanClaimResult(principal=None, first=False, existing=None, status=None)
        if principal != claim.principal_ok:
            outcome = AUDIT_OUTCOME_PRINCIPAL_REJECTED
        else:
            status_value = self._live(claim.status_key, now)
            status = None if status_value is None else status_value.data
            replay = self._live(claim.replay_key, now)
            if replay is None:
                stored = claim.claim + b"|" + (status or b"")
                self._put(claim.replay_key, stored, now + claim.ttl)
                first = True
                outcome = AUDIT_OUTCOME_FIRST
            else:
                existing = replay.data
                outcome = AUDIT_OUTCOME_AGAIN
        audit = dict(claim.audit_fields)
        audit["outcome"] = outcome
        audit["status"] = (status or b"").decode(errors="replace")
        self._append(claim.audit_stream, audit)
        return ScanClaimResult(principal=principal, first=first, existing=existing, status=status)

    def _live(self, key: str, now: float) -> _Value | None:
        value = self._values.get(key)
        if value is None:
            return None
        if value.expires_at is not None and value.expires_at <= now:
            del self._values[key]
            return None
        return value

    def _put(self, key: str, data: bytes, expires_at: float | None) -> None:
        self._values[key] = _Value(data, expires_at)
        if expires_at is not None:
            heapq.heappush(self._expiries, (expires_at, key))

    def _sweep(self, now: float) -> None:
        """Drops expired keys that nobody reads again, so replay keys do not pile up."""
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            expires_at, key = heapq.heappop(expiries)
            value = self._values.get(key)
            if value is not None and value.expires_at == expires_at:
                del self._values[key]

    def _stream(self, stream: str) -> _Stream:
        state = self._streams.get(stream)
        if state is None:
            state = self._streams[stream] = _Stream()
        return state

    def _append(self, stream: str, fields: dict[str, str]) -> str:
        state = self._stream(stream)
        millis = int(time.time() * 1000)
        last_millis, last_seq = state.last_id
        new_id = (millis, 0) if millis > last_millis else (last_millis, last_seq + 1)
        entry_id = f"{new_id[0]}-{new_id[1]}"
        state.last_id = new_id
        state.ids.append(new_id)
        state.keys.append(entry_id)
        state.entries[entry_id] = fields
        state.appended.set()
        state.appended = asyncio.Event()
        return entry_id


def _oldest_needed(group: _Group) -> _StreamId:
    """The oldest entry `group` still needs: its oldest pending one, or the one after the last
    it was delivered."""
    pending = [_order(entry_id) for entry_id in group.owner]
    if pending:
        return min(pending)
    millis, sequence = group.last_delivered
    return millis, sequence + 1


def _order(entry_id: str) -> _StreamId:
    millis, _, sequence = entry_id.partition("-")
    return int(millis), int(sequence)


def _expiry(now: float, ttl: float | None) -> float | None:
    if ttl is None:
        return None
    if ttl <= 0:
        raise ValueError(f"ttl must be positive, got {ttl}")
    return now + ttl


def _read_group(
    state: _Stream, group: _Group, consumer: str, count: int, now: float
) -> list[StreamEntry]:
    pending = group.pending.setdefault(consumer, {})
    if pending:
        delivered: list[StreamEntry] = []
        for entry_id in list(pending):
            fields = state.entries.get(entry_id)
            if fields is None:
                # Trimmed away before it was acknowledged: nothing left to deliver.
                del pending[entry_id]
                group.owner.pop(entry_id, None)
                continue
            delivered.append(StreamEntry(entry_id, dict(fields)))
            if len(delivered) == count:
                break
        if delivered:
            return delivered
    start = bisect.bisect_right(state.ids, group.last_delivered)
    fresh = state.keys[start : start + count]
    if fresh:
        group.last_delivered = state.ids[start + len(fresh) - 1]
    for entry_id in fresh:
        pending[entry_id] = now
        group.owner[entry_id] = consumer
    return [StreamEntry(entry_id, dict(state.entries[entry_id])) for entry_id in fresh]
