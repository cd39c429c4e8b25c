"""What only `RedisStore` promises: namespacing, failing closed, surviving a script flush."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from app.store import ScanClaim, StoreUnavailable
from app.store.redis import RedisStore


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


CLAIM = ScanClaim(
    replay_key="replay:cti",
    claim=b"scanner:1",
    ttl=60,
    status_key="status:card",
    principal_key="principal:scanner",
    audit_stream="audit",
)


NewStore = Callable[[], RedisStore]


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def new_store(redis_url: str) -> AsyncIterator[NewStore]:
    """Makes stores in fresh namespaces and drops them afterwards."""
    created: list[RedisStore] = []

    def new() -> RedisStore:
        store = RedisStore.from_url(redis_url, namespace=f"test-{uuid.uuid4().hex[:12]}")
        created.append(store)
        return store

    yield new
    for store in created:
        await store.drop_namespace()
        await store.close()


class TestUnreachable:
    async def test_ping_raises_store_unavailable(self) -> None:
        store = RedisStore.from_url(f"redis://127.0.0.1:{unused_port()}/0")
        try:
            with pytest.raises(StoreUnavailable):
                await store.ping()
        finally:
            await store.close()

    async def test_claim_raises_store_unavailable(self) -> None:
        store = RedisStore.from_url(f"redis://127.0.0.1:{unused_port()}/0")
        try:
            with pytest.raises(StoreUnavailable):
                await store.claim_scans([CLAIM])
        finally:
            await store.close()

    async def test_subscribe_and_stream_read_raise_store_unavailable(self) -> None:
        store = RedisStore.from_url(f"redis://127.0.0.1:{unused_port()}/0")
        try:
            with pytest.raises(StoreUnavailable):
                await store.subscribe("channel")
            with pytest.raises(StoreUnavailable):
                await store.stream_read("s", "g", "c", count=1, block_ms=100)
        finally:
            await store.close()


class TestNamespace:
    async def test_keys_live_under_the_namespace(
        self, redis_url: str, redis_namespace: str, raw_redis: aioredis.Redis
    ) -> None:
        store = RedisStore.from_url(redis_url, namespace=redis_namespace)
        try:
            await store.set("k", b"v")
            assert await raw_redis.get(f"{redis_namespace}:k") == b"v"
            assert await raw_redis.get("k") is None
        finally:
            await store.drop_namespace()
            await store.close()

    async def test_stores_in_other_namespaces_do_not_see_each_other(
        self, new_store: NewStore
    ) -> None:
        first, second = new_store(), new_store()
        await first.set("k", b"first")
        assert await second.get("k") is None

    async def test_drop_namespace_removes_only_its_own_keys(self, new_store: NewStore) -> None:
        doomed, kept = new_store(), new_store()
        for n in range(1500):
            await doomed.set(f"k{n}", b"v")
        await doomed.stream_append("s", {"n": "1"})
        await kept.set("k0", b"kept")
        await doomed.drop_namespace()
        assert await doomed.get("k0") is None
        assert await doomed.get("k1499") is None
        assert await doomed.stream_read("s", "g", "c", count=10, block_ms=0) == []
        assert await kept.get("k0") == b"kept"

    async def test_pubsub_channels_are_namespaced(self, new_store: NewStore) -> None:
        listener, other = new_store(), new_store()
        subscription = await listener.subscribe("c")
        try:
            await other.publish("c", b"other namespace")
            await listener.publish("c", b"own namespace")
            async with asyncio.timeout(2):
                assert await anext(aiter(subscription)) == b"own namespace"
        finally:
            await subscription.aclose()


class TestClaimScript:
    async def test_survives_a_script_cache_flush(
        self, new_store: NewStore, raw_redis: aioredis.Redis
    ) -> None:
        store = new_store()
        await store.set("principal:scanner", b"1")
        await store.claim_scans([CLAIM])
        await raw_redis.script_flush()
        (result,) = await store.claim_scans([CLAIM])
        assert result.existing == b"scanner:1|"
