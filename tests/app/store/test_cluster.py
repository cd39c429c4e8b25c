"""`RedisClusterStore` on a real three-master cluster: the store contract, and what sharding adds.

The contract classes are re-collected here with `store` bound to the cluster store.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
from redis.crc import key_slot

from app.store import ScanClaim, Store, StoreUnavailable
from app.store.redis import RedisClusterStore, RedisStore, group_tags
from tests.app.store import test_contract as contract
from tests.app.store.conftest import LocalCluster
from tests.app.store.test_contract import CONCURRENCY, enable_scanner, read_all, scan_claim
from tests.app.store.test_redis import unused_port


@pytest.fixture
async def store(cluster_store: RedisClusterStore) -> AsyncIterator[Store]:
    yield cluster_store


TestProtocol = contract.TestProtocol
TestGetSet = contract.TestGetSet
TestSetIfAbsent = contract.TestSetIfAbsent
TestIncr = contract.TestIncr
TestManyAtOnce = contract.TestManyAtOnce
TestPubSub = contract.TestPubSub
TestStreams = contract.TestStreams


class TestClaimScans(contract.TestClaimScans):
    async def test_audit_entries_carry_fields_outcome_and_status(self, store: Store) -> None:
        """Entries of one token share a shard and keep their order; across shards, entry-id
        order is all a cluster can give."""
        await enable_scanner(store)
        await store.set("principal:scanner-off", b"0")
        await store.set("status:card-1", b"suspended")
        await store.claim_scans(
            [
                scan_claim("a", audit={"cti": "a", "scene": "hospital"}),
                scan_claim("a", audit={"cti": "a", "scene": "pharmacy"}),
                scan_claim("b", scanner="scanner-off", audit={"cti": "b"}),
            ]
        )
        entries = [entry.fields for entry in await read_all(store, "audit")]
        assert [fields for fields in entries if fields["cti"] == "a"] == [
            {"cti": "a", "scene": "hospital", "outcome": "first", "status": "suspended"},
            {"cti": "a", "scene": "pharmacy", "outcome": "again", "status": "suspended"},
        ]
        assert [fields for fields in entries if fields["cti"] == "b"] == [
            {"cti": "b", "outcome": "principal_rejected", "status": ""}
        ]


def node_of(store: RedisClusterStore, key: str) -> str:
    """The master that owns the slot where the store puts `key`."""
    node = store._cluster.nodes_manager.get_node_from_slot(key_slot(store._key(key).encode()))
    return node.name


def tokens_on_distinct_nodes(store: RedisClusterStore, masters: int) -> list[str]:
    seen: dict[str, str] = {}
    for n in itertools.count():
        seen.setdefault(node_of(store, f"replay:cti-{n}"), f"cti-{n}")
        if len(seen) == masters:
            return list(seen.values())
    raise AssertionError("unreachable")


class TestSlotGroups:
    def test_tags_spread_evenly_over_the_slots(self) -> None:
        tags = group_tags(16)
        assert [key_slot(tag.encode()) * 16 // 16384 for tag in tags] == list(range(16))

    async def test_groups_land_on_every_master(
        self, cluster_store: RedisClusterStore, redis_cluster: LocalCluster
    ) -> None:
        await cluster_store.ping()  # Loads the slot table.
        nodes = {node_of(cluster_store, f"replay:cti-{n}") for n in range(200)}
        assert len(nodes) == len(redis_cluster.ports)

    async def test_replay_key_and_its_audit_shard_share_a_slot(
        self, cluster_store: RedisClusterStore
    ) -> None:
        for n in range(50):
            replay = cluster_store._key(f"cti:{n:032x}")
            group = cluster_store._group(f"cti:{n:032x}")
            audit_shard = cluster_store._heads[group] + "audit"
            assert key_slot(replay.encode()) == key_slot(audit_shard.encode())


class TestClusterClaims:
    async def test_exactly_one_of_many_concurrent_claims_of_one_token_is_first(
        self, cluster_store: RedisClusterStore
    ) -> None:
        await enable_scanner(cluster_store)
        batches = await asyncio.gather(
            *(
                cluster_store.claim_scans([scan_claim("hot", claim=f"s:{n}".encode())])
                for n in range(CONCURRENCY)
            )
        )
        assert [result.first for (result,) in batches].count(True) == 1

    async def test_one_batch_claims_tokens_held_by_different_masters(
        self, cluster_store: RedisClusterStore, redis_cluster: LocalCluster
    ) -> None:
        await cluster_store.ping()
        await enable_scanner(cluster_store)
        await cluster_store.set("status:card-1", b"active")
        tokens = tokens_on_distinct_nodes(cluster_store, len(redis_cluster.ports))
        batch = [scan_claim(cti, claim=f"s:{cti}".encode()) for cti in tokens]
        batch += [scan_claim(cti, claim=b"again") for cti in reversed(tokens)]
        results = await cluster_store.claim_scans(batch)
        assert [r.first for r in results] == [True] * len(tokens) + [False] * len(tokens)
        assert [r.existing for r in results[len(tokens) :]] == [
            f"s:{cti}|active".encode() for cti in reversed(tokens)
        ]
        assert {r.status for r in results} == {b"active"}
        for cti in tokens:
            assert await cluster_store.get(f"replay:{cti}") == f"s:{cti}|active".encode()

    async def test_a_disabled_scanner_consumes_nothing_on_any_master(
        self, cluster_store: RedisClusterStore, redis_cluster: LocalCluster
    ) -> None:
        await cluster_store.ping()
        await cluster_store.set("principal:scanner-1", b"0")
        tokens = tokens_on_distinct_nodes(cluster_store, len(redis_cluster.ports))
        results = await cluster_store.claim_scans([scan_claim(cti) for cti in tokens])
        assert [(r.principal, r.first, r.status) for r in results] == [(b"0", False, None)] * 3
        for cti in tokens:
            assert await cluster_store.get(f"replay:{cti}") is None


class TestShardedAuditStream:
    async def test_entries_of_every_shard_are_read_and_acknowledged(
        self, cluster_store: RedisClusterStore
    ) -> None:
        await enable_scanner(cluster_store)
        tokens = [f"cti-{n}" for n in range(100)]
        await cluster_store.claim_scans([scan_claim(cti) for cti in tokens])
        await cluster_store.stream_append("audit", {"cti": "plain"})
        read: list[str] = []
        shards: set[str] = set()
        while batch := await cluster_store.stream_read("audit", "g", "c1", count=30, block_ms=0):
            assert len(batch) <= 30
            read += [entry.fields["cti"] for entry in batch]
            shards |= {entry.entry_id.rpartition("@")[2] for entry in batch}
            await cluster_store.stream_ack("audit", "g", [entry.entry_id for entry in batch])
        assert sorted(read) == sorted([*tokens, "plain"])
        assert len(shards) == 16
        await cluster_store.claim_scans([scan_claim("later")])
        after = await cluster_store.stream_read("audit", "g", "c1", count=30, block_ms=0)
        assert [e.fields["cti"] for e in after] == ["later"]

    async def test_unacknowledged_entries_of_any_shard_come_back_first(
        self, cluster_store: RedisClusterStore
    ) -> None:
        await enable_scanner(cluster_store)
        await cluster_store.claim_scans([scan_claim(f"cti-{n}") for n in range(40)])
        delivered = await cluster_store.stream_read("audit", "g", "c1", count=100, block_ms=0)
        await cluster_store.stream_ack("audit", "g", [e.entry_id for e in delivered[::2]])
        await cluster_store.claim_scans([scan_claim("new")])
        again = await cluster_store.stream_read("audit", "g", "c1", count=100, block_ms=0)
        assert sorted(e.entry_id for e in again) == sorted(e.entry_id for e in delivered[1::2])

    async def test_a_waiting_read_sees_an_entry_appended_to_another_shard(
        self, cluster_store: RedisClusterStore
    ) -> None:
        await enable_scanner(cluster_store)
        await cluster_store.stream_read("audit", "g", "c1", count=10, block_ms=0)
        reader = asyncio.create_task(
            cluster_store.stream_read("audit", "g", "c1", count=10, block_ms=1500)
        )
        await asyncio.sleep(0.1)
        await cluster_store.claim_scans([scan_claim("late")])
        async with asyncio.timeout(contract.WAIT):
            entries = await reader
        assert [e.fields["cti"] for e in entries] == ["late"]

    async def test_ids_naming_no_shard_are_ignored(self, cluster_store: RedisClusterStore) -> None:
        await cluster_store.stream_ack("audit", "g", ["1-0", "1-0@999", "@3"])


class TestTrim:
    async def test_a_group_whose_pending_entries_were_acknowledged_meanwhile_is_trimmed(
        self, cluster_store: RedisClusterStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """As on one Redis: XPENDING may find nothing left pending after XINFO said some."""
        for n in range(3):
            await cluster_store.stream_append("s", {"n": str(n)})
        delivered = await cluster_store.stream_read("s", "g", "c", count=2, block_ms=0)
        client = cluster_store._redis
        xinfo_groups = client.xinfo_groups

        async def groups_then_acknowledged(name: str) -> object:
            groups = await xinfo_groups(name)
            await client.xack(name, "g", *(e.entry_id.rpartition("@")[0] for e in delivered))
            return groups

        monkeypatch.setattr(client, "xinfo_groups", groups_then_acknowledged)
        assert await cluster_store.stream_trim_acknowledged("s") == 1
        monkeypatch.undo()
        rest = await cluster_store.stream_read("s", "g", "c", count=10, block_ms=0)
        assert [entry.fields["n"] for entry in rest] == ["2"]


class TestClusterUrl:
    def test_scheme_selects_the_cluster_store_with_its_startup_nodes(self) -> None:
        store = RedisStore.from_url("redis+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2?slot_groups=8")
        assert isinstance(store, RedisClusterStore)
        assert len(store._heads) == 8
        nodes = store._cluster.nodes_manager.startup_nodes
        assert sorted(nodes) == ["10.0.0.1:7000", "10.0.0.2:6379"]
        assert store._cluster.connection_kwargs["password"] == "p@ss"

    @pytest.mark.parametrize(
        "url",
        [
            "redis+cluster://127.0.0.1:7000?slot_groups=0",
            "redis+cluster://127.0.0.1:7000?slot_groups=257",
            "redis+cluster://127.0.0.1:7000?db=1",
            "redis+cluster://:7000",
        ],
    )
    def test_refuses_what_it_cannot_honour(self, url: str) -> None:
        with pytest.raises(ValueError):
            RedisStore.from_url(url)

    async def test_unreachable_cluster_fails_closed(self) -> None:
        store = RedisStore.from_url(f"redis+cluster://127.0.0.1:{unused_port()}")
        claim = ScanClaim("r", b"c", 60, "s", "p", "audit")
        try:
            with pytest.raises(StoreUnavailable):
                await store.ping()
            with pytest.raises(StoreUnavailable):
                await store.claim_scans([claim])
            with pytest.raises(StoreUnavailable):
                await store.subscribe("c")
        finally:
            await store.close()
