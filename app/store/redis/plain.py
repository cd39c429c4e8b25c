"""`RedisStore`: the `Store` protocol on one Redis server, shared by every worker.

Every key and channel lives under `f"{namespace}:"`. Every Redis failure, including a
timeout, surfaces as `StoreUnavailable` so callers fail closed; the timeouts are short
(`socket_timeout`, no retries) so an unreachable Redis costs one timeout, not ten.

Keys are built in `_key` only, so Redis Cluster (`RedisClusterStore` in `cluster.py`, chosen
by the URL scheme `redis+cluster://`) places keys without the callers knowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
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
from app.store.redis import scripts
from app.store.redis.common import (
    Client,
    as_text,
    optional_bytes,
    stream_entry,
    stream_id,
    ttl_millis,
    unavailable_on_error,
)

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


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
        client: Client,
        blocking_client: Client,
        *,
        namespace: str,
        socket_timeout: float,
        claim_channel: ClaimChannel | None = None,
        qr_channel: ClaimChannel | None = None,
        write_channel: ClaimChannel | None = None,
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
        self._claim_scans = client.register_script(scripts.CLAIM_SCANS)
        self._incr_and_get_many = client.register_script(scripts.INCR_AND_GET_MANY)
        self._write_many = client.register_script(scripts.WRITE_MANY)
        self._claim_channel = claim_channel
        self._qr_channel = qr_channel
        self._write_channel = write_channel
        self._subscriptions: set[RedisSubscription] = set()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "ssc",
        socket_timeout: float = 0.5,
        max_connections: int = 64,
        claim_channel: bool = True,
    ) -> RedisStore:
        """Connects lazily: nothing is sent before the first command.

        Beyond `max_connections` commands in flight, callers wait for a free connection
        (at most `socket_timeout`) rather than fail at once on a burst.
        `redis+cluster://` and `rediss+cluster://` URLs give a `RedisClusterStore`.
        `claim_channel` False sends `claim_scans` (and `incr_and_get_many`, `write_many`)
        through redis-py even where a `ClaimChannel` could carry it (plain TCP); the cluster
        store never uses one.
        """
        if url.startswith(CLUSTER_SCHEMES):
            from app.store.redis.cluster import RedisClusterStore  # noqa: PLC0415 (a subclass)

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
            claim_channel=(
                _claim_channel(pool, socket_timeout, scripts.CLAIM_SCANS) if claim_channel else None
            ),
            qr_channel=(
                _claim_channel(pool, socket_timeout, scripts.INCR_AND_GET_MANY)
                if claim_channel
                else None
            ),
            write_channel=(
                _claim_channel(pool, socket_timeout, scripts.WRITE_MANY) if claim_channel else None
            ),
        )

    @property
    def uses_claim_channel(self) -> bool:
        """Whether `claim_scans` travels on a `ClaimChannel` rather than redis-py."""
        return self._claim_channel is not None

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def ping(self) -> None:
        with unavailable_on_error():
            await self._redis.ping()

    async def get(self, key: str) -> bytes | None:
        with unavailable_on_error():
            value = await self._redis.get(self._key(key))
        return optional_bytes(value)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        with unavailable_on_error():
            values = await self._redis.mget([self._key(key) for key in keys])
        return [optional_bytes(value) for value in values]

    async def incr_and_get_many(
        self, counter: str, ttl: float, keys: Sequence[str]
    ) -> tuple[int, list[bytes | None]]:
        """One script (`lua/incr_and_get_many.lua`), on the QR channel when there is one."""
        px = ttl_millis(ttl)
        assert px is not None
        names = [self._key(counter), *(self._key(key) for key in keys)]
        if self._qr_channel is not None:
            reply = await self._qr_channel.run_script(names, [px])
        else:
            with unavailable_on_error():
                reply = await self._incr_and_get_many(keys=names, args=[px])
        return int(reply[0]), [optional_bytes(value) for value in reply[1:]]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        with unavailable_on_error():
            await self._redis.set(self._key(key), value, px=ttl_millis(ttl))

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None) -> bool:
        px = ttl_millis(ttl)
        with unavailable_on_error():
            stored = await self._redis.set(self._key(key), value, px=px, nx=True)
        return bool(stored)

    async def delete(self, key: str) -> None:
        with unavailable_on_error():
            await self._redis.unlink(self._key(key))

    async def incr(self, key: str, ttl: float | None = None, amount: int = 1) -> int:
        name = self._key(key)
        px = ttl_millis(ttl)
        with unavailable_on_error():
            if px is None:
                count = await self._redis.incrby(name, amount)
            else:
                async with self._redis.pipeline(transaction=True) as pipe:
                    # SET NX creates the counter with its ttl; INCR keeps an existing ttl.
                    pipe.set(name, 0, px=px, nx=True)
                    pipe.incrby(name, amount)
                    _, count = await pipe.execute()
        return int(count)

    async def write_many(
        self,
        values: Sequence[tuple[str, bytes, float]],
        counters: Sequence[tuple[str, int, float]],
    ) -> list[int]:
        """One script (`lua/write_many.lua`) for the whole batch, on a channel of its own when
        there is one: the misuse watch sends six arguments per card, which redis-py's
        argument encoder packed at about a microsecond each."""
        if not values and not counters:
            return []
        keys = [self._key(key) for key, _, _ in values]
        keys += [self._key(key) for key, _, _ in counters]
        arguments: list[bytes | int] = [len(values)]
        arguments += [value for _, value, _ in values]
        arguments += [_millis(ttl) for _, _, ttl in values]
        for _, amount, ttl in counters:
            arguments += [amount, _millis(ttl)]
        if self._write_channel is not None:
            counts = await self._write_channel.run_script(keys, arguments)
        else:
            with unavailable_on_error():
                counts = await self._write_many(keys=keys, args=arguments)
        return [int(count) for count in counts]

    async def publish(self, channel: str, message: bytes) -> None:
        with unavailable_on_error():
            await self._redis.publish(self._key(channel), message)

    async def subscribe(self, channel: str) -> Subscription:
        name = self._key(channel)
        pubsub = self._blocking.pubsub()
        try:
            with unavailable_on_error():
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
        with unavailable_on_error():
            entry_id = await self._redis.xadd(self._key(stream), entry)
        return as_text(entry_id)

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
        with unavailable_on_error():
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
        return [stream_entry(entry_id, fields) for entry_id, fields in fresh]

    async def stream_ack(self, stream: str, group: str, entry_ids: Sequence[str]) -> None:
        if not entry_ids:
            return
        with unavailable_on_error():
            await self._redis.xack(self._key(stream), group, *entry_ids)

    async def stream_trim_acknowledged(self, stream: str) -> int:
        with unavailable_on_error():
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
                    needed.append(stream_id(oldest_pending))
                else:
                    millis, sequence = stream_id(group["last-delivered-id"])
                    needed.append((millis, sequence + 1))
            millis, sequence = min(needed)
            await self._redis.xtrim(name, minid=f"{millis}-{sequence}", approximate=False)
        return int(await self._redis.xlen(name))

    async def stream_reclaim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        if count < 1:
            raise ValueError("count must be positive")
        with unavailable_on_error():
            try:
                reply = await self._redis.xautoclaim(
                    self._key(stream), group, consumer, min_idle_ms, start_id="0-0", count=count
                )
            except ResponseError as error:
                if not str(error).startswith("NOGROUP"):
                    raise
                return []
        # Redis 7 drops entries trimmed while pending from the pending list itself.
        return [stream_entry(entry_id, fields) for entry_id, fields in reply[1] if fields]

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
            with unavailable_on_error():
                flat = await self._claim_scans(keys=keys, args=args)
        if flat[0] != 1:
            raise EpochChanged(optional_bytes(flat[1]))
        return [  # positional (principal, first, existing, status): one per scan
            ScanClaimResult(
                optional_bytes(flat[i]),
                flat[i + 1] == 1,
                optional_bytes(flat[i + 2]),
                optional_bytes(flat[i + 3]),
            )
            for i in range(1, len(flat), 4)
        ]

    async def drop_namespace(self) -> None:
        """Deletes every key of this store's namespace (tests, decommissioning)."""
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self._prefix) + "*"
        with unavailable_on_error():
            batch: list[bytes] = []
            async for key in self._redis.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    await self._redis.unlink(*batch)
                    batch.clear()
            if batch:
                await self._redis.unlink(*batch)

    async def close(self) -> None:
        for channel in (self._claim_channel, self._qr_channel, self._write_channel):
            if channel is not None:
                channel.close()
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
        return [stream_entry(entry_id, fields) for entry_id, fields in pending if fields]


def _claim_channel(
    pool: aioredis.ConnectionPool, timeout: float, script: str
) -> ClaimChannel | None:
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
    return ClaimChannel(address, script, timeout=timeout)


def _millis(ttl: float) -> int:
    millis = ttl_millis(ttl)
    assert millis is not None
    return millis
