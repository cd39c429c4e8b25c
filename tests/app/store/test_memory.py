"""What only `MemoryStore` promises: bounded memory in a long-running embedded process."""

from __future__ import annotations

import pytest

from app.store import ScanClaim, StoreUnavailable
from app.store.memory import SUBSCRIPTION_BUFFER, MemoryStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestExpiry:
    async def test_value_lives_exactly_its_ttl(self) -> None:
        clock = FakeClock()
        store = MemoryStore(clock=clock)
        await store.set("k", b"v", ttl=30)
        clock.now += 29.999
        assert await store.get("k") == b"v"
        clock.now += 0.001
        assert await store.get("k") is None

    async def test_expired_replay_keys_that_nobody_reads_are_dropped(self) -> None:
        clock = FakeClock()
        store = MemoryStore(clock=clock)
        await store.set("principal:s", b"1")
        for n in range(100):
            claim = ScanClaim(
                replay_key=f"replay:{n}",
                claim=b"c",
                ttl=60,
                status_key="status:card",
                principal_key="principal:s",
                audit_stream="audit",
            )
            await store.claim_scans([claim])
        clock.now += 61
        await store.set("unrelated", b"write")
        assert sorted(store._values) == ["principal:s", "unrelated"]


class TestSlowSubscriber:
    async def test_is_cut_off_rather_than_silently_missing_messages(self) -> None:
        store = MemoryStore()
        subscription = await store.subscribe("c")
        for n in range(SUBSCRIPTION_BUFFER + 1):
            await store.publish("c", str(n).encode())
        received = 0
        with pytest.raises(StoreUnavailable, match="fell behind"):
            async for _ in subscription:
                received += 1
        assert received == SUBSCRIPTION_BUFFER


class TestClose:
    async def test_closed_store_does_not_answer_ping(self) -> None:
        store = MemoryStore()
        await store.close()
        with pytest.raises(StoreUnavailable):
            await store.ping()

    async def test_close_ends_open_subscriptions(self) -> None:
        store = MemoryStore()
        subscription = await store.subscribe("c")
        await store.close()
        assert [message async for message in subscription] == []
