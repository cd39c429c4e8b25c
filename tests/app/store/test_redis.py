"""What only `RedisStore` promises: namespacing, failing closed, surviving a script flush."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from app.config import load_settings
from app.runtime import build_store
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


@pytest.fixture(params=[True, False], ids=["claim-channel", "redis-py"])
def claim_channel(request: pytest.FixtureRequest) -> bool:
    """Both ways a claim can travel: `SSC_REDIS_CLAIM_CHANNEL` true (default) and false."""
    return bool(request.param)


@pytest.fixture
async def new_store(redis_url: str, claim_channel: bool) -> AsyncIterator[NewStore]:
    """Makes stores in fresh namespaces and drops them afterwards."""
    created: list[RedisStore] = []

    def new() -> RedisStore:
        store = RedisStore.from_url(
            redis_url, namespace=f"test-{uuid.uuid4().hex[:12]}", claim_channel=claim_channel
        )
        assert store.uses_claim_channel is claim_channel
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

    async def test_claim_raises_store_unavailable(self, claim_channel: bool) -> None:
        store = RedisStore.from_url(
            f"redis://127.0.0.1:{unused_port()}/0", claim_channel=claim_channel
        )
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


class TestTrim:
    async def test_a_group_whose_pending_entries_were_acknowledged_meanwhile_is_trimmed(
        self, new_store: NewStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """XINFO GROUPS reports pending entries, then the consumer acknowledges them before
        XPENDING runs (which then reports no oldest entry): the trim goes on, not crash."""
        store = new_store()
        for n in range(3):
            await store.stream_append("s", {"n": str(n)})
        delivered = await store.stream_read("s", "g", "c", count=2, block_ms=0)
        client = store._redis
        xinfo_groups = client.xinfo_groups

        async def groups_then_acknowledged(name: str) -> object:
            groups = await xinfo_groups(name)
            await store.stream_ack("s", "g", [entry.entry_id for entry in delivered])
            return groups

        monkeypatch.setattr(client, "xinfo_groups", groups_then_acknowledged)
        assert await store.stream_trim_acknowledged("s") == 1
        monkeypatch.undo()
        rest = await store.stream_read("s", "g", "c", count=10, block_ms=0)
        assert [entry.fields["n"] for entry in rest] == ["2"]


def _claim(n: int) -> ScanClaim:
    return ScanClaim(
        replay_key=f"replay:{n}",
        claim=f"scanner|{n}".encode(),
        ttl=60,
        status_key=f"status:{n}",
        principal_key="principal:scanner",
        audit_stream="audit",
        audit_fields={"n": str(n)},
    )


class TestClaimChannel:
    """Claims travel on one pipelined connection; every caller must get its own reply."""

    async def test_concurrent_claims_each_get_their_own_reply(self, new_store: NewStore) -> None:
        store = new_store()
        await store.set("principal:scanner", b"1")
        for n in range(300):
            await store.set(f"status:{n}", f"card-{n}".encode())
        results = await asyncio.gather(*(store.claim_scans([_claim(n)]) for n in range(300)))
        assert [result.status for (result,) in results] == [
            f"card-{n}".encode() for n in range(300)
        ]
        assert all(result.first for (result,) in results)

    async def test_a_cancelled_claim_does_not_shift_later_replies(
        self, new_store: NewStore
    ) -> None:
        store = new_store()
        await store.set("principal:scanner", b"1")
        for n in range(3):
            await store.set(f"status:{n}", f"card-{n}".encode())
        abandoned = asyncio.ensure_future(store.claim_scans([_claim(0)]))
        await asyncio.sleep(0)  # written to the connection, reply not read yet
        abandoned.cancel()
        first, second = await asyncio.gather(
            store.claim_scans([_claim(1)]), store.claim_scans([_claim(2)])
        )
        assert (first[0].status, second[0].status) == (b"card-1", b"card-2")

    async def test_selects_the_database_of_the_url(
        self, redis_url: str, raw_redis: aioredis.Redis
    ) -> None:
        namespace = f"test-{uuid.uuid4().hex[:12]}"
        url = redis_url.rsplit("/", 1)[0] + "/7"
        store = RedisStore.from_url(url, namespace=namespace)
        other_db = aioredis.Redis.from_url(url)
        try:
            await store.set("principal:scanner", b"1")
            (result,) = await store.claim_scans([_claim(1)])
            assert result.first
            assert await other_db.get(f"{namespace}:replay:1") == b"scanner|1|"
            assert await raw_redis.get(f"{namespace}:replay:1") is None
        finally:
            await store.drop_namespace()
            await store.close()
            await other_db.aclose()

    async def test_authenticates_with_the_url_credentials(
        self, redis_url: str, raw_redis: aioredis.Redis
    ) -> None:
        user, password = f"ssc-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        await raw_redis.acl_setuser(
            user, enabled=True, passwords=[f"+{password}"], keys=["*"], channels=["*"],
            commands=["+@all"],
        )  # fmt: skip
        host = redis_url.split("://", 1)[1]
        namespace = f"test-{uuid.uuid4().hex[:12]}"
        good = RedisStore.from_url(f"redis://{user}:{password}@{host}", namespace=namespace)
        bad = RedisStore.from_url(f"redis://{user}:wrong@{host}", namespace=namespace)
        try:
            await good.set("principal:scanner", b"1")
            (result,) = await good.claim_scans([_claim(1)])
            assert result.first
            with pytest.raises(StoreUnavailable):
                await bad.claim_scans([_claim(2)])
        finally:
            await good.drop_namespace()
            await good.close()
            await bad.close()
            await raw_redis.acl_deluser(user)


class TestClaimChannelSetting:
    @pytest.mark.parametrize("enabled", [True, False])
    async def test_the_setting_chooses_how_claims_travel(
        self, redis_url: str, redis_namespace: str, enabled: bool
    ) -> None:
        settings = load_settings(
            redis_url=redis_url, redis_namespace=redis_namespace, redis_claim_channel=enabled
        )
        store = build_store(settings)
        try:
            assert isinstance(store, RedisStore)
            assert store.uses_claim_channel is enabled
            await store.set("principal:scanner", b"1")
            (first,) = await store.claim_scans([_claim(1)])
            (again,) = await store.claim_scans([_claim(1)])
            assert (first.first, again.first) == (True, False)
        finally:
            assert isinstance(store, RedisStore)
            await store.drop_namespace()
            await store.close()

    def test_the_channel_is_on_by_default(self, redis_url: str) -> None:
        assert load_settings(redis_url=redis_url).redis_claim_channel is True
        assert RedisStore.from_url(redis_url).uses_claim_channel

    def test_unix_sockets_keep_redis_py(self) -> None:
        assert not RedisStore.from_url("unix:///tmp/no-such-redis.sock").uses_claim_channel


def test_claims_work_on_uvloop_as_served(redis_url: str) -> None:
    """`ssc serve` runs uvloop, whose transports are not asyncio's own classes."""
    uvloop = pytest.importorskip("uvloop")

    async def claim_twice() -> tuple[bool, bool]:
        store = RedisStore.from_url(redis_url, namespace=f"test-{uuid.uuid4().hex[:12]}")
        try:
            await store.set("principal:scanner", b"1")
            (first,) = await store.claim_scans([_claim(1)])
            (again,) = await store.claim_scans([_claim(1)])
            return first.first, again.first
        finally:
            await store.drop_namespace()
            await store.close()

    assert uvloop.run(claim_twice()) == (True, False)
