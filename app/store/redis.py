"""`RedisStore`: the `Store` protocol on Redis, shared by every worker of the service.

Every key and channel lives under `f"{namespace}:"`. Every Redis failure, including a
timeout, surfaces as `StoreUnavailable` so callers fail closed; the timeouts are short
(`socket_timeout`, no retries) so an unreachable Redis costs one timeout, not ten.

Keys are built in `_key` only: for Redis Cluster all keys of one `claim_scans` script must
hash to one slot, which will be arranged there (hash tags) without touching the callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT, FieldT

from app.store.base import (
    DEFAULT_STREAM_MAXLEN,
    ScanClaim,
    ScanClaimResult,
    StoreUnavailable,
    StreamEntry,
    Subscription,
    check_scan_claim,
)

# KEYS per claim: principal, replay, status, audit stream.
# ARGV: maxlen, then per claim: claim, ttl, principal_ok, n audit fields, n name/value pairs.
# Returns 4 values per claim: principal, first (1/0), existing, status.
_CLAIM_SCANS_LUA = """
local maxlen = ARGV[1]
local out = {}
local n = 0
local a = 2
for k = 1, #KEYS, 4 do
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
  redis.call('XADD', KEYS[k + 3], 'MAXLEN', '~', maxlen, '*',
    'outcome', outcome, 'status', status or '', unpack(ARGV, fields_from, fields_to))
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = principal, first, existing, status
  n = n + 4
  a = fields_to + 1
end
return out
"""

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


@contextlib.contextmanager
def _unavailable_on_error() -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as error:  # OSError covers asyncio's TimeoutError.
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
        client: aioredis.Redis,
        blocking_client: aioredis.Redis,
        *,
        namespace: str,
        socket_timeout: float,
        stream_maxlen: int = DEFAULT_STREAM_MAXLEN,
    ) -> None:
        """`blocking_client` has no read timeout; it serves only reads bounded by a deadline."""
        if not namespace:
            raise ValueError("namespace must not be empty")
        self._redis = client
        self._blocking = blocking_client
        self._prefix = f"{namespace}:"
        self._socket_timeout = socket_timeout
        self._stream_maxlen = stream_maxlen
        self._claim_scans = client.register_script(_CLAIM_SCANS_LUA)
        self._subscriptions: set[RedisSubscription] = set()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "ssc",
        socket_timeout: float = 0.5,
        max_connections: int = 64,
        stream_maxlen: int = DEFAULT_STREAM_MAXLEN,
    ) -> RedisStore:
        """Connects lazily: nothing is sent before the first command.

        Beyond `max_connections` commands in flight, callers wait for a free connection
        (at most `socket_timeout`) rather than fail at once on a burst.
        """
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
            stream_maxlen=stream_maxlen,
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

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        px = _millis(ttl)
        with _unavailable_on_error():
            stored = await self._redis.set(self._key(key), value, px=px, nx=True)
        return bool(stored)

    async def delete(self, key: str) -> None:
        with _unavailable_on_error():
            await self._redis.unlink(self._key(key))

    async def incr(self, key: str, ttl: float | None = None) -> int:
        name = self._key(key)
        px = _millis(ttl)
        with _unavailable_on_error():
            if px is None:
                count = await self._redis.incr(name)
            else:
                async with self._redis.pipeline(transaction=True) as pipe:
                    # SET NX creates the counter with its ttl; INCR keeps an existing ttl.
                    pipe.set(name, 0, px=px, nx=True)
                    pipe.incr(name)
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
            entry_id = await self._redis.xadd(
                self._key(stream),
                entry,
                maxlen=self._stream_maxlen,
                approximate=True,
            )
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

    async def claim_scans(self, claims: Sequence[ScanClaim]) -> list[ScanClaimResult]:
        if not claims:
            return []
        keys: list[str] = []
        args: list[bytes | str | int] = [self._stream_maxlen]
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
        with _unavailable_on_error():
            flat = await self._claim_scans(keys=keys, args=args)
        return [
            ScanClaimResult(
                principal=_optional_bytes(flat[i]),
                first=flat[i + 1] == 1,
                existing=_optional_bytes(flat[i + 2]),
                status=_optional_bytes(flat[i + 3]),
            )
            for i in range(0, len(flat), 4)
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


def _millis(ttl: float | None) -> int | None:
    if ttl is None:
        return None
    if ttl <= 0:
        raise ValueError(f"ttl must be positive, got {ttl}")
    return max(1, round(ttl * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


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
