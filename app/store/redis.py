"""`RedisStore`: the `Store` protocol on Redis, shared by every worker of the service.

Every key and channel lives under `f"{namespace}:"`. Every Redis failure, including a
timeout, surfaces as `StoreUnavailable` so callers fail closed; the timeouts are short
(`socket_timeout`, no retries) so an unreachable Redis costs one timeout, not ten.

Keys are built in `_key` only, so Redis Cluster (`RedisClusterStore`, chosen by the URL
scheme `redis+cluster://`) places keys without the callers knowing; see its docstring.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError, ResponseError
from redis.typing import EncodableT, FieldT

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
from app.store.claim_channel import ChannelAddress, ClaimChannel

# KEYS: the epoch key, then per claim: principal, replay, status, audit stream.
# ARGV: the expected epoch (empty: not checked), then per claim: claim, ttl, principal_ok,
# n audit fields, n name/value pairs.
# Returns 1 then 4 values per claim: principal, first (1/0), existing, status; or, when the
# epoch key does not hold the expected epoch, only 0 and what it holds (nothing written).
# A missing principal writes nothing, not even the audit entry (see `ScanClaim`).
_CLAIM_SCANS_LUA = """
if ARGV[1] ~= '' then
  local epoch = redis.call('GET', KEYS[1])
  if epoch ~= ARGV[1] then
    return {0, epoch}
  end
end
local out = {1}
local n = 1
local a = 2
for k = 2, #KEYS, 4 do
  local fields_from = a + 4
  local fields_to = fields_from + 2 * tonumber(ARGV[a + 3]) - 1
  local principal = redis.call('GET', KEYS[k])
  local first, existing, status, outcome = 0, false, false, 'principal_rejected'
  if principal == ARGV[a + 2] then
    status = redis.call('GET', KEYS[k + 2])
    existing = redis.call('GET', KEYS[k + 1])
    if existing then
      outcome = 'again'
    else
      redis.call('SET', KEYS[k + 1], ARGV[a] .. '|' .. (status or ''), 'EX', ARGV[a + 1])
      first, outcome = 1, 'first'
    end
  end
  if principal then
    redis.call('XADD', KEYS[k + 3], '*',
      'outcome', outcome, 'status', status or '', unpack(ARGV, fields_from, fields_to))
  end
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = principal, first, existing, status
  n = n + 4
  a = fields_to + 1
end
return out
"""

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
DEFAULT_SLOT_GROUPS = 16
MAX_SLOT_GROUPS = 256
CLUSTER_SLOTS = 16384
STREAM_POLL_INTERVAL = 0.05
"""Seconds between polls of a sharded stream while `stream_read` waits for new entries."""

_Client = aioredis.Redis | RedisCluster

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


@contextlib.contextmanager
def _unavailable_on_error() -> Iterator[None]:
    try:
        yield
    # OSError covers asyncio's TimeoutError; RedisClusterException a cluster without a node
    # for a slot.
    except (RedisError, RedisClusterException, OSError) as error:
        raise StoreUnavailable(f"redis: {error or type(error).__name__}") from error


class RedisSubscription:
    """Message payloads of one channel, on a dedicated pub/sub connection."""

    def __init__(
        self,
        pubsub: aioredis.client.PubSub,
        channel: str,
        on_close: Callable[[RedisSubscription], None],
    ) -> None:
        self._pubsub = pubsub
        self._channel = channel
        self._on_close = on_close
        self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        while not self._closed:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except (RedisError, OSError) as error:
                if self._closed:
                    break
                raise StoreUnavailable(
                    f"redis subscription to {self._channel!r}: {error}"
                ) from error
            if message is not None and message["type"] == "message":
                data = message["data"]
                assert isinstance(data, bytes)
                return data
        raise StopAsyncIteration

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._on_close(self)
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]


class RedisStore:
    """`Store` on Redis; build it with `from_url`, close it with `close`."""

    def __init__(
        self,
        client: _Client,
        blocking_client: _Client,
        *,
        namespace: str,
        socket_timeout: float,
        claim_channel: ClaimChannel | None = None,
    ) -> None:
        """`blocking_client` has no read timeout; it serves only reads bounded by a deadline.
        `claim_channel` carries `claim_scans` when given (see `ClaimChannel`); without it the
        claim goes through redis-py like every other command."""
        if not namespace:
            raise ValueError("namespace must not be empty")
        self._redis = client
        self._blocking = blocking_client
        self._prefix = f"{namespace}:"
        self._socket_timeout = socket_timeout
        self._claim_scans = client.register_script(_CLAIM_SCANS_LUA)
        self._claim_channel = claim_channel
        self._subscriptions: set[RedisSubscription] = set()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "ssc",
        socket_timeout: float = 0.5,
        max_connections: int = 64,
    ) -> RedisStore:
        """Connects lazily: nothing is sent before the first command.

        Beyond `max_connections` commands in flight, callers wait for a free connection
        (at most `socket_timeout`) rather than fail at once on a burst.
        `redis+cluster://` and `rediss+cluster://` URLs give a `RedisClusterStore`.
        """
        if url.startswith(CLUSTER_SCHEMES):
            return RedisClusterStore.from_cluster_url(
                url,
                namespace=namespace,
                socket_timeout=socket_timeout,
                max_connections=max_connections,
            )
        common: dict[str, Any] = {
            "socket_connect_timeout": socket_timeout,
            "retry": Retry(NoBackoff(), 0),
            "decode_responses": False,
        }
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=socket_timeout,
            socket_timeout=socket_timeout,
            **common,
        )
        blocking = aioredis.Redis.from_url(url, socket_timeout=None, **common)
        return cls(
            aioredis.Redis.from_pool(pool),
            blocking,
            namespace=namespace,
            socket_timeout=socket_timeout,
            claim_channel=_claim_channel(pool, socket_timeout),
        )

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def ping(self) -> None:
        with _unavailable_on_error():
            await self._redis.ping()

    async def get(self, key: str) -> bytes | None:
        with _unavailable_on_error():
            value = await self._redis.get(self._key(key))
        return _optional_bytes(value)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        with _unavailable_on_error():
            await self._redis.set(self._key(key), value, px=_millis(ttl))

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None) -> bool:
        px = _millis(ttl)
        with _unavailable_on_error():
            stored = await self._redis.set(self._key(key), value, px=px, nx=True)
        return bool(stored)

    async def delete(self, key: str) -> None:
        with _unavailable_on_error():
            await self._redis.unlink(self._key(key))

    async def incr(self, key: str, ttl: float | None = None, amount: int = 1) -> int:
        name = self._key(key)
        px = _millis(ttl)
        with _unavailable_on_error():
            if px is None:
                count = await self._redis.incrby(name, amount)
            else:
                async with self._redis.pipeline(transaction=True) as pipe:
                    # SET NX creates the counter with its ttl; INCR keeps an existing ttl.
                    pipe.set(name, 0, px=px, nx=True)
                    pipe.incrby(name, amount)
                    _, count = await pipe.execute()
        return int(count)

    async def publish(self, channel: str, message: bytes) -> None:
        with _unavailable_on_error():
            await self._redis.publish(self._key(channel), message)

    async def subscribe(self, channel: str) -> Subscription:
        name = self._key(channel)
        pubsub = self._blocking.pubsub()
        try:
            with _unavailable_on_error():
                async with asyncio.timeout(self._socket_timeout):
                    await pubsub.subscribe(name)
                    # Redis confirms once the subscription is active; a publish sent after
                    # this point reaches us.
                    while True:
                        confirmation = await pubsub.get_message(timeout=self._socket_timeout)
                        if confirmation is not None and confirmation["type"] == "subscribe":
                            break
        except BaseException:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        subscription = RedisSubscription(pubsub, channel, self._subscriptions.discard)
        self._subscriptions.add(subscription)
        return subscription

    async def stream_append(self, stream: str, fields: Mapping[str, str]) -> str:
        if not fields:
            raise ValueError("a stream entry needs at least one field")
        entry: dict[FieldT, EncodableT] = {name: value for name, value in fields.items()}
        with _unavailable_on_error():
            entry_id = await self._redis.xadd(self._key(stream), entry)
        return _text(entry_id)

    async def stream_read(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int
    ) -> list[StreamEntry]:
        """Pending entries of `consumer` first; only when it has none, new entries.

        Waits up to `block_ms` for new entries; `block_ms <= 0` returns at once (unlike
        Redis, where BLOCK 0 waits forever).
        """
        if count < 1:
            raise ValueError("count must be positive")
        name = self._key(stream)
        with _unavailable_on_error():
            try:
                pending = await self._read_group(name, group, consumer, count, start="0")
            except ResponseError as error:
                if not str(error).startswith("NOGROUP"):
                    raise
                await self._create_group(name, group)
                pending = []
            if pending:
                return await self._deliverable(name, group, pending)
            fresh = await self._read_group(
                name, group, consumer, count, start=">", block_ms=block_ms
            )
        return [_entry(entry_id, fields) for entry_id, fields in fresh]

    async def stream_ack(self, stream: str, group: str, entry_ids: Sequence[str]) -> None:
        if not entry_ids:
            return
        with _unavailable_on_error():
            await self._redis.xack(self._key(stream), group, *entry_ids)

    async def stream_trim_acknowledged(self, stream: str) -> int:
        with _unavailable_on_error():
            return await self._trim_acknowledged(self._key(stream))

    async def _trim_acknowledged(self, name: str) -> int:
        """XTRIM MINID at the oldest entry some group still needs: its oldest pending entry,
        or the one after its last delivered. Entries delivered meanwhile are newer than
        that point and acknowledgements only move it forward, so nothing needed is cut.

        XINFO and XPENDING are two commands: a group that had pending entries may have
        acknowledged them all in between (XPENDING then reports `min` None). Nothing of it is
        pending then, so it needs only what follows the last delivered id XINFO reported
        (later deliveries are newer still)."""
        try:
            groups: list[dict[str, Any]] = await self._redis.xinfo_groups(name)
        except ResponseError as error:
            if "no such key" not in str(error).lower():
                raise
            return 0
        if groups:
            needed: list[tuple[int, int]] = []
            for group in groups:
                oldest_pending = None
                if group["pending"]:
                    summary = await self._redis.xpending(name, group["name"])
                    oldest_pending = summary["min"]
                if oldest_pending is not None:
                    needed.append(_stream_id(oldest_pending))
                else:
                    millis, sequence = _stream_id(group["last-delivered-id"])
                    needed.append((millis, sequence + 1))
            millis, sequence = min(needed)
            await self._redis.xtrim(name, minid=f"{millis}-{sequence}", approximate=False)
        return int(await self._redis.xlen(name))

    async def stream_reclaim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        if count < 1:
            raise ValueError("count must be positive")
        with _unavailable_on_error():
            try:
                reply = await self._redis.xautoclaim(
                    self._key(stream), group, consumer, min_idle_ms, start_id="0-0", count=count
                )
            except ResponseError as error:
                if not str(error).startswith("NOGROUP"):
                    raise
                return []
        # Redis 7 drops entries trimmed while pending from the pending list itself.
        return [_entry(entry_id, fields) for entry_id, fields in reply[1] if fields]

    async def claim_scans(
        self, claims: Sequence[ScanClaim], *, epoch: bytes | None = None
    ) -> list[ScanClaimResult]:
        if not claims:
            return []
        keys: list[str] = [self._key(EPOCH_KEY)]
        args: list[bytes | str | int] = [b"" if epoch is None else epoch]
        for claim in claims:
            check_scan_claim(claim)
            keys += (
                self._key(claim.principal_key),
                self._key(claim.replay_key),
                self._key(claim.status_key),
                self._key(claim.audit_stream),
            )
            args += (claim.claim, claim.ttl, claim.principal_ok, len(claim.audit_fields))
            for name, value in claim.audit_fields.items():
                args += (name, value)
        if self._claim_channel is not None:
            flat = await self._claim_channel.run_script(keys, args)
        else:
            with _unavailable_on_error():
                flat = await self._claim_scans(keys=keys, args=args)
        if flat[0] != 1:
            raise EpochChanged(_optional_bytes(flat[1]))
        return [
            ScanClaimResult(
                principal=_optional_bytes(flat[i]),
                first=flat[i + 1] == 1,
                existing=_optional_bytes(flat[i + 2]),
                status=_optional_bytes(flat[i + 3]),
            )
            for i in range(1, len(flat), 4)
        ]

    async def drop_namespace(self) -> None:
        """Deletes every key of this store's namespace (tests, decommissioning)."""
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self._prefix) + "*"
        with _unavailable_on_error():
            batch: list[bytes] = []
            async for key in self._redis.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    await self._redis.unlink(*batch)
                    batch.clear()
            if batch:
                await self._redis.unlink(*batch)

    async def close(self) -> None:
        if self._claim_channel is not None:
            self._claim_channel.close()
        for subscription in list(self._subscriptions):
            await subscription.aclose()
        for client in (self._redis, self._blocking):
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def _create_group(self, name: str, group: str) -> None:
        try:
            await self._redis.xgroup_create(name, group, id="0", mkstream=True)
        except ResponseError as error:
            if not str(error).startswith("BUSYGROUP"):  # Another reader created it first.
                raise

    async def _read_group(
        self, name: str, group: str, consumer: str, count: int, *, start: str, block_ms: int = 0
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        reply: Any
        if block_ms <= 0:
            reply = await self._redis.xreadgroup(group, consumer, {name: start}, count=count)
        else:
            # The blocking client has no read timeout of its own; this deadline bounds it.
            async with asyncio.timeout(block_ms / 1000 + self._socket_timeout):
                reply = await self._blocking.xreadgroup(
                    group, consumer, {name: start}, count=count, block=block_ms
                )
        if not reply:
            return []
        entries: list[tuple[bytes, dict[bytes, bytes]]] = reply[0][1]
        return entries

    async def _deliverable(
        self, name: str, group: str, pending: list[tuple[bytes, dict[bytes, bytes]]]
    ) -> list[StreamEntry]:
        """Pending entries that still exist; ids trimmed away (empty) are acknowledged."""
        trimmed = [entry_id for entry_id, fields in pending if not fields]
        if trimmed:
            await self._redis.xack(name, group, *trimmed)
        return [_entry(entry_id, fields) for entry_id, fields in pending if fields]


# KEYS: the audit stream shard of this slot group, then one replay key per claim.
# ARGV per claim: principal ok (1/0, or empty when missing: nothing is written for it, see
# `ScanClaim`), status, claim, ttl, n audit fields, n name/value pairs.
# Returns 2 values per claim: first (1/0), existing.
_CLAIM_GROUP_LUA = """
local stream = KEYS[1]
local out = {}
local n = 0
local a = 1
for k = 2, #KEYS do
  local status = ARGV[a + 1]
  local fields_from = a + 5
  local fields_to = fields_from + 2 * tonumber(ARGV[a + 4]) - 1
  local first, existing, outcome = 0, false, 'principal_rejected'
  if ARGV[a] == '1' then
    existing = redis.call('GET', KEYS[k])
    if existing then
      outcome = 'again'
    else
      redis.call('SET', KEYS[k], ARGV[a + 2] .. '|' .. status, 'EX', ARGV[a + 3])
      first, outcome = 1, 'first'
    end
  end
  if ARGV[a] ~= '' then
    redis.call('XADD', stream, '*',
      'outcome', outcome, 'status', status, unpack(ARGV, fields_from, fields_to))
  end
  out[n + 1], out[n + 2] = first, existing
  n = n + 2
  a = fields_to + 1
end
return out
"""

# SET NX creates the counter with its ttl; INCR keeps an existing ttl.
_INCR_WITH_TTL_LUA = """
redis.call('SET', KEYS[1], 0, 'PX', ARGV[1], 'NX')
return redis.call('INCRBY', KEYS[1], ARGV[2])
"""


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
        self._claim_group = client.register_script(_CLAIM_GROUP_LUA)
        self._incr_with_ttl = client.register_script(_INCR_WITH_TTL_LUA)

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
                with _unavailable_on_error():
                    await self._cluster.initialize()
                self._slot_table_loaded = True

    async def ping(self) -> None:
        async with self._bounded():
            await super().ping()

    async def get(self, key: str) -> bytes | None:
        async with self._bounded():
            return await super().get(key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        async with self._bounded():
            await super().set(key, value, ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None) -> bool:
        async with self._bounded():
            return await super().set_if_absent(key, value, ttl)

    async def incr(self, key: str, ttl: float | None = None, amount: int = 1) -> int:
        """A script rather than MULTI: redis-py's cluster transactions cost several trips."""
        px = _millis(ttl)
        async with self._bounded():
            if px is None:
                return await super().incr(key, amount=amount)
            with _unavailable_on_error():
                count = await self._incr_with_ttl(keys=[self._key(key)], args=[px, amount])
        return int(count)

    async def publish(self, channel: str, message: bytes) -> None:
        async with self._bounded():
            await super().publish(channel, message)

    async def delete(self, key: str) -> None:
        """Unlinks the key and every shard of a stream by that name."""
        async with self._bounded():
            with _unavailable_on_error():
                await self._cluster.unlink(*(head + key for head in self._heads))

    async def subscribe(self, channel: str) -> Subscription:
        """PUBLISH reaches every node of a cluster, so one node's connection hears a channel."""
        with _unavailable_on_error():
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
        with _unavailable_on_error():
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
            with _unavailable_on_error():
                for shard, ids in by_shard.items():
                    pipe.xack(self._heads[shard] + stream, group, *ids)
                await pipe.execute()

    async def stream_trim_acknowledged(self, stream: str) -> int:
        """Each shard on its own: a shard's entries are acknowledged shard by shard."""
        remaining = 0
        with _unavailable_on_error():
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
        with _unavailable_on_error():
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
                    entry = _entry(entry_id, fields)
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
        with _unavailable_on_error():
            async with self._bounded(), self._cluster.pipeline() as pipe:
                for key in reads:
                    pipe.get(self._key(key))
                values = dict(zip(reads, map(_optional_bytes, await pipe.execute()), strict=True))
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
        return [(flat[i] == 1, _optional_bytes(flat[i + 1])) for i in range(0, len(flat), 2)]

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
            StreamEntry(f"{_text(entry_id)}@{order[2]}", _entry(entry_id, fields).fields)
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


def _claim_channel(pool: aioredis.ConnectionPool, timeout: float) -> ClaimChannel | None:
    """A `ClaimChannel` to the pool's server when it is plain TCP (TLS and Unix sockets keep
    redis-py's path, which knows how to open them)."""
    if pool.connection_class is not aioredis.Connection:
        return None
    options = pool.connection_kwargs
    address = ChannelAddress(
        host=str(options.get("host", "localhost")),
        port=int(options.get("port", 6379)),
        db=int(options.get("db", 0) or 0),
        username=options.get("username"),
        password=options.get("password"),
    )
    return ClaimChannel(address, _CLAIM_SCANS_LUA, timeout=timeout)


def _startup_node(address: str) -> ClusterNode:
    parts = urlsplit(f"//{address}")
    if not parts.hostname:
        raise ValueError(f"cluster node {address!r} has no host")
    return ClusterNode(parts.hostname, parts.port or 6379)


def _millis(ttl: float | None) -> int | None:
    if ttl is None:
        return None
    if ttl <= 0:
        raise ValueError(f"ttl must be positive, got {ttl}")
    return max(1, round(ttl * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _stream_id(value: bytes | str) -> tuple[int, int]:
    millis, _, sequence = _text(value).partition("-")
    return int(millis), int(sequence or 0)


def _optional_bytes(value: object) -> bytes | None:
    if value is None:
        return None
    assert isinstance(value, bytes)
    return value


def _entry(entry_id: bytes, fields: dict[bytes, bytes]) -> StreamEntry:
    return StreamEntry(
        _text(entry_id),
        {
            name.decode(errors="replace"): value.decode(errors="replace")
            for name, value in fields.items()
        },
    )
