"""`RedisClusterStore`: the `Store` protocol on Redis Cluster (`redis+cluster://` URLs)."""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import ResponseError

from app.store.base import (
    EPOCH_KEY,
    EpochChanged,
    ScanClaim,
    ScanClaimResult,
    StoreUnavailable,
    StreamEntry,
    Subscription,
    check_scan_claim,
)
from app.store.redis import scripts
from app.store.redis.common import (
    as_text,
    optional_bytes,
    stream_entry,
    ttl_millis,
    unavailable_on_error,
)
from app.store.redis.plain import RedisStore

DEFAULT_SLOT_GROUPS = 16
MAX_SLOT_GROUPS = 256
CLUSTER_SLOTS = 16384
STREAM_POLL_INTERVAL = 0.05
"""Seconds between polls of a sharded stream while `stream_read` waits for new entries."""


class RedisClusterStore(RedisStore):
    """`Store` on Redis Cluster, where every key of one script must hash to one slot.

    Slot groups: key K lives at `{namespace}:{<tag g>}:K`, g = crc32(K) mod `slot_groups`.
    The tags are picked so the groups spread evenly over the 16384 slots, hence over the
    masters; K's place depends on its name only, so `get` finds what a claim wrote.
    `slot_groups` must be the same on every machine and stay fixed while data lives.

    Streams are sharded, one shard per group: `stream_append` writes to the shard of the
    stream name's own group (plain appends stay in order); a claim appends its audit entry
    to the shard of its replay key's group, in the same slot. `stream_read` reads every
    shard (pending entries first, then new ones, merged in entry-id order; order is strict
    within a shard only) and polls while it waits. Entry ids carry their shard
    (`<id>@<group>`), which `stream_ack` uses.

    A claim batch takes two steps, each one round trip per node, all nodes concurrently:
    (a) one pipeline GETs the batch's principals and card statuses (any slots);
    (b) per slot group, one Lua script claims the replay keys (GET, then SET EX when absent:
    exactly one first) of the claims whose principal was ok in (a), and appends every
    claim's audit entry. The window between (a) and (b) is one round trip: a scanner
    disabled within it may still consume a token, and a first claim stores the card status
    read in (a), which is also the status it returns, so verdict and record agree.
    """

    def __init__(
        self,
        client: RedisCluster,
        blocking_client: RedisCluster,
        *,
        namespace: str,
        socket_timeout: float,
        slot_groups: int = DEFAULT_SLOT_GROUPS,
        max_connections: int = 64,
    ) -> None:
        """`max_connections` bounds the commands in flight, hence connections per node."""
        if not 1 <= slot_groups <= MAX_SLOT_GROUPS:
            raise ValueError(f"slot_groups must be within 1..{MAX_SLOT_GROUPS}")
        if "{" in namespace or "}" in namespace:
            raise ValueError("a cluster namespace must not contain braces (hash tags)")
        super().__init__(
            client,
            blocking_client,
            namespace=namespace,
            socket_timeout=socket_timeout,
        )
        self._cluster = client
        self._blocking_cluster = blocking_client
        # redis-py's cluster client fails rather than waits when a node's pool is exhausted;
        # bounding the commands in flight to `max_connections` makes a burst wait instead.
        self._in_flight = asyncio.Semaphore(max_connections)
        self._slot_table_loaded = False
        self._slot_table_lock = asyncio.Lock()
        self._heads = tuple(f"{self._prefix}{{{tag}}}:" for tag in group_tags(slot_groups))
        self._claim_group = client.register_script(scripts.CLAIM_GROUP)
        self._incr_with_ttl = client.register_script(scripts.INCR_WITH_TTL)

    @classmethod
    def from_cluster_url(
        cls,
        url: str,
        *,
        namespace: str = "ssc",
        socket_timeout: float = 0.5,
        max_connections: int = 64,
    ) -> RedisClusterStore:
        """`redis+cluster://[user:password@]host:port[,host:port...][?slot_groups=N]`.

        The hosts are startup nodes: any reachable one tells the client the whole cluster.
        Beyond `max_connections` commands in flight, callers wait for a free slot (at most
        `socket_timeout`), as with the standalone pool.
        """
        parts = urlsplit(url)
        options = parse_qs(parts.query)
        slot_groups = int(options.pop("slot_groups", [str(DEFAULT_SLOT_GROUPS)])[-1])
        if options:
            raise ValueError(f"unknown cluster URL options: {sorted(options)}")
        nodes = [_startup_node(address) for address in parts.netloc.rpartition("@")[2].split(",")]
        common: dict[str, Any] = {
            "startup_nodes": nodes,
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "ssl": parts.scheme == "rediss+cluster",
            "socket_connect_timeout": socket_timeout,
            "retry": Retry(NoBackoff(), 0),
            "decode_responses": False,
        }
        return cls(
            RedisCluster(socket_timeout=socket_timeout, max_connections=max_connections, **common),
            RedisCluster(socket_timeout=None, **common),
            namespace=namespace,
            socket_timeout=socket_timeout,
            slot_groups=slot_groups,
            max_connections=max_connections,
        )

    def _key(self, key: str) -> str:
        return self._heads[self._group(key)] + key

    def _group(self, key: str) -> int:
        return zlib.crc32(key.encode()) % len(self._heads)

    @contextlib.asynccontextmanager
    async def _bounded(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._socket_timeout):
                await self._in_flight.acquire()
        except TimeoutError:
            raise StoreUnavailable("redis: every connection is busy") from None
        try:
            if not self._slot_table_loaded:
                await self._load_slot_table()
            yield
        finally:
            self._in_flight.release()

    async def _load_slot_table(self) -> None:
        """Once, before the first command: redis-py breaks when a burst of first commands
        each try to load it."""
        async with self._slot_table_lock:
            if not self._slot_table_loaded:
                with unavailable_on_error():
                    await self._cluster.initialize()
                self._slot_table_loaded = True

    async def ping(self) -> None:
        async with self._bounded():
            await super().ping()

    async def get(self, key: str) -> bytes | None:
        async with self._bounded():
            return await super().get(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """One pipeline: the keys may live on several nodes (one round trip per node)."""
        if not keys:
            return []
        with unavailable_on_error():
            async with self._bounded(), self._cluster.pipeline() as pipe:
                for key in keys:
                    pipe.get(self._key(key))
                values = await pipe.execute()
        return [optional_bytes(value) for value in values]

    async def incr_and_get_many(
        self, counter: str, ttl: float, keys: Sequence[str]
    ) -> tuple[int, list[bytes | None]]:
        """One pipeline (one round trip per node); the keys may live on several nodes."""
        px = ttl_millis(ttl)
        with unavailable_on_error():
            async with self._bounded(), self._cluster.pipeline() as pipe:
                name = self._key(counter)
                # SET NX creates the counter with its ttl; INCR keeps an existing ttl.
                pipe.set(name, 0, px=px, nx=True)
                pipe.incr(name)
                for key in keys:
                    pipe.get(self._key(key))
                _, count, *values = await pipe.execute()
        return int(count), [optional_bytes(value) for value in values]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        async with self._bounded():
            await super().set(key, value, ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None) -> bool:
        async with self._bounded():
            return await super().set_if_absent(key, value, ttl)

    async def incr(self, key: str, ttl: float | None = None, amount: int = 1) -> int:
        """A script rather than MULTI: redis-py's cluster transactions cost several trips."""
        px = ttl_millis(ttl)
        async with self._bounded():
            if px is None:
                return await super().incr(key, amount=amount)
            with unavailable_on_error():
                count = await self._incr_with_ttl(keys=[self._key(key)], args=[px, amount])
        return int(count)

    async def write_many(
        self,
        values: Sequence[tuple[str, bytes, float]],
        counters: Sequence[tuple[str, int, float]],
    ) -> list[int]:
        """Key by key, concurrently: the keys of a batch lie in many slots."""
        await asyncio.gather(*(self.set(key, value, ttl) for key, value, ttl in values))
        counts = await asyncio.gather(
            *(self.incr(key, ttl, amount) for key, amount, ttl in counters)
        )
        return list(counts)

    async def publish(self, channel: str, message: bytes) -> None:
        async with self._bounded():
            await super().publish(channel, message)

    async def delete(self, key: str) -> None:
        """Unlinks the key and every shard of a stream by that name."""
        async with self._bounded():
            with unavailable_on_error():
                await self._cluster.unlink(*(head + key for head in self._heads))

    async def subscribe(self, channel: str) -> Subscription:
        """PUBLISH reaches every node of a cluster, so one node's connection hears a channel."""
        with unavailable_on_error():
            # The pub/sub client picks its node from the slot table, loaded on first use.
            await self._blocking_cluster.initialize()
        return await super().subscribe(channel)

    async def stream_append(self, stream: str, fields: Mapping[str, str]) -> str:
        async with self._bounded():
            entry_id = await super().stream_append(stream, fields)
        return f"{entry_id}@{self._group(stream)}"

    async def stream_read(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int
    ) -> list[StreamEntry]:
        """Pending entries of `consumer` on any shard first; only when none, new entries.

        Polls every `STREAM_POLL_INTERVAL` up to `block_ms`: one blocking read cannot
        span shards on different nodes.
        """
        if count < 1:
            raise ValueError("count must be positive")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_ms / 1000
        with unavailable_on_error():
            pending = await self._read_shards(stream, group, consumer, count, start="0")
            if pending:
                return pending
            while True:
                fresh = await self._read_shards(stream, group, consumer, count, start=">")
                remaining = deadline - loop.time()
                if fresh or remaining <= 0:
                    return fresh
                await asyncio.sleep(min(STREAM_POLL_INTERVAL, remaining))

    async def stream_ack(self, stream: str, group: str, entry_ids: Sequence[str]) -> None:
        """Ids that name no shard of this store were not delivered by it and are ignored."""
        by_shard: dict[int, list[str]] = {}
        for entry_id in entry_ids:
            raw, _, suffix = entry_id.rpartition("@")
            if raw and suffix.isdigit() and int(suffix) < len(self._heads):
                by_shard.setdefault(int(suffix), []).append(raw)
        if not by_shard:
            return
        async with self._bounded(), self._cluster.pipeline() as pipe:
            with unavailable_on_error():
                for shard, ids in by_shard.items():
                    pipe.xack(self._heads[shard] + stream, group, *ids)
                await pipe.execute()

    async def stream_trim_acknowledged(self, stream: str) -> int:
        """Each shard on its own: a shard's entries are acknowledged shard by shard."""
        remaining = 0
        with unavailable_on_error():
            async with self._bounded():
                for head in self._heads:
                    remaining += await self._trim_acknowledged(head + stream)
        return remaining

    async def stream_reclaim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        """Every shard, oldest first across shards, at most `count` in all."""
        if count < 1:
            raise ValueError("count must be positive")
        with unavailable_on_error():
            async with self._bounded(), self._cluster.pipeline() as pipe:
                for head in self._heads:
                    pipe.xautoclaim(
                        head + stream, group, consumer, min_idle_ms, start_id="0-0", count=count
                    )
                replies = await pipe.execute(raise_on_error=False)
        found: list[tuple[tuple[int, int, int], StreamEntry]] = []
        for shard, reply in enumerate(replies):
            if isinstance(reply, ResponseError) and str(reply).startswith("NOGROUP"):
                continue
            if isinstance(reply, Exception):
                raise StoreUnavailable(f"redis: {reply}") from reply
            for entry_id, fields in reply[1]:
                if fields:
                    millis, _, sequence = entry_id.partition(b"-")
                    entry = stream_entry(entry_id, fields)
                    found.append(
                        (
                            (int(millis), int(sequence), shard),
                            StreamEntry(f"{entry.entry_id}@{shard}", entry.fields),
                        )
                    )
        found.sort(key=lambda item: item[0])
        return [entry for _, entry in found[:count]]

    async def claim_scans(
        self, claims: Sequence[ScanClaim], *, epoch: bytes | None = None
    ) -> list[ScanClaimResult]:
        """The epoch is read in step (a) with the principals: a master that lost its data
        between (a) and (b), or one other than the epoch key's, goes unnoticed until the
        epoch key's own master loses it or the periodic check runs (see README)."""
        if not claims:
            return []
        for claim in claims:
            check_scan_claim(claim)
        reads = list(dict.fromkeys(k for c in claims for k in (c.principal_key, c.status_key)))
        if epoch is not None:
            reads.append(EPOCH_KEY)
        batches: dict[tuple[int, str], list[int]] = {}
        for index, claim in enumerate(claims):
            group = (self._group(claim.replay_key), claim.audit_stream)
            batches.setdefault(group, []).append(index)
        with unavailable_on_error():
            async with self._bounded(), self._cluster.pipeline() as pipe:
                for key in reads:
                    pipe.get(self._key(key))
                values = dict(zip(reads, map(optional_bytes, await pipe.execute()), strict=True))
            if epoch is not None and values[EPOCH_KEY] != epoch:
                raise EpochChanged(values[EPOCH_KEY])
            replies = await asyncio.gather(
                *(
                    self._claim_batch(group, stream, [claims[i] for i in indexes], values)
                    for (group, stream), indexes in batches.items()
                )
            )
        results: list[ScanClaimResult | None] = [None] * len(claims)
        for indexes, reply in zip(batches.values(), replies, strict=True):
            for index, (first, existing) in zip(indexes, reply, strict=True):
                claim = claims[index]
                principal = values[claim.principal_key]
                ok = principal == claim.principal_ok
                status = values[claim.status_key] if ok else None
                results[index] = ScanClaimResult(principal, first, existing, status)
        return [result for result in results if result is not None]

    async def _claim_batch(
        self, group: int, stream: str, claims: list[ScanClaim], values: dict[str, bytes | None]
    ) -> list[tuple[bool, bytes | None]]:
        keys = [self._heads[group] + stream] + [self._key(c.replay_key) for c in claims]
        args: list[bytes | str | int] = []
        for claim in claims:
            principal = values[claim.principal_key]
            ok = principal == claim.principal_ok
            status = (values[claim.status_key] if ok else None) or b""
            state = b"1" if ok else b"" if principal is None else b"0"
            args += (state, status, claim.claim, claim.ttl, len(claim.audit_fields))
            for name, value in claim.audit_fields.items():
                args += (name, value)
        async with self._bounded():
            flat = await self._claim_group(keys=keys, args=args)
        return [(flat[i] == 1, optional_bytes(flat[i + 1])) for i in range(0, len(flat), 2)]

    async def _read_shards(
        self, stream: str, group: str, consumer: str, count: int, *, start: str
    ) -> list[StreamEntry]:
        """One read per shard in one pipeline; creates missing groups, acks trimmed ids."""
        shards = [head + stream for head in self._heads]
        async with self._bounded(), self._cluster.pipeline() as pipe:
            for name in shards:
                pipe.xreadgroup(group, consumer, {name: start}, count=count)
            replies = await pipe.execute(raise_on_error=False)
        missing: list[int] = []
        trimmed: dict[int, list[bytes]] = {}
        found: list[tuple[tuple[int, int, int], bytes, dict[bytes, bytes]]] = []
        for shard, reply in enumerate(replies):
            if isinstance(reply, ResponseError) and str(reply).startswith("NOGROUP"):
                missing.append(shard)
                continue
            if isinstance(reply, Exception):
                raise reply
            for entry_id, fields in reply[0][1] if reply else ():
                if not fields:  # Trimmed away while pending: nothing left to deliver.
                    trimmed.setdefault(shard, []).append(entry_id)
                    continue
                millis, _, sequence = entry_id.partition(b"-")
                found.append(((int(millis), int(sequence), shard), entry_id, fields))
        if missing or trimmed:
            async with self._bounded():
                await self._repair_shards(shards, group, missing, trimmed)
        found.sort(key=lambda item: item[0])
        return [
            StreamEntry(f"{as_text(entry_id)}@{order[2]}", stream_entry(entry_id, fields).fields)
            for order, entry_id, fields in found[:count]
        ]

    async def _repair_shards(
        self, shards: list[str], group: str, missing: list[int], trimmed: dict[int, list[bytes]]
    ) -> None:
        async with self._cluster.pipeline() as pipe:
            for shard in missing:
                pipe.xgroup_create(shards[shard], group, id="0", mkstream=True)
            for shard, ids in trimmed.items():
                pipe.xack(shards[shard], group, *ids)
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            # BUSYGROUP: another reader created the group first.
            if isinstance(reply, Exception) and not str(reply).startswith("BUSYGROUP"):
                raise reply


def group_tags(groups: int) -> tuple[str, ...]:
    """One hash tag per slot group, tag g hashing into the g-th of `groups` equal slot ranges,
    so the groups spread over the masters however the cluster assigned its slot ranges."""
    tags: list[str] = []
    for group in range(groups):
        low, high = group * CLUSTER_SLOTS // groups, (group + 1) * CLUSTER_SLOTS // groups
        attempt = 0
        while not low <= key_slot(f"{group}.{attempt}".encode()) < high:
            attempt += 1
        tags.append(f"{group}.{attempt}")
    return tuple(tags)


def _startup_node(address: str) -> ClusterNode:
    parts = urlsplit(f"//{address}")
    if not parts.hostname:
        raise ValueError(f"cluster node {address!r} has no host")
    return ClusterNode(parts.hostname, parts.port or 6379)
