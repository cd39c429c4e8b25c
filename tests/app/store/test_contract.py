"""The `Store` contract: every test runs on `MemoryStore` and on `RedisStore`; the claims on
`RedisStore` both with its claim channel and through redis-py (`SSC_REDIS_CLAIM_CHANNEL`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from app.store import EPOCH_KEY, EpochChanged, ScanClaim, Store, StreamEntry
from tests.app.store.clock import StoreTime

CONCURRENCY = 200
WAIT = 2.0
"""Upper bound for anything that must arrive; only reached when the store is broken."""


def scan_claim(
    cti: str = "cti-1",
    *,
    claim: bytes = b"scanner-1:scan-1",
    card: str = "card-1",
    scanner: str = "scanner-1",
    ttl: int = 120,
    audit: Mapping[str, str] | None = None,
) -> ScanClaim:
    return ScanClaim(
        replay_key=f"replay:{cti}",
        claim=claim,
        ttl=ttl,
        status_key=f"status:{card}",
        principal_key=f"principal:{scanner}",
        audit_stream="audit",
        audit_fields=dict(audit) if audit is not None else {"cti": cti, "scanner": scanner},
    )


async def enable_scanner(store: Store, scanner: str = "scanner-1") -> None:
    await store.set(f"principal:{scanner}", b"1")


async def read_all(store: Store, stream: str) -> list[StreamEntry]:
    return await store.stream_read(stream, "reader", "reader-1", count=1000, block_ms=0)


class TestProtocol:
    def test_implements_store(self, store: Store) -> None:
        assert isinstance(store, Store)

    async def test_ping_answers(self, store: Store) -> None:
        await store.ping()


class TestGetSet:
    async def test_missing_key_is_none(self, store: Store) -> None:
        assert await store.get("nothing") is None

    async def test_set_then_get(self, store: Store) -> None:
        await store.set("k", b"\x00value\xff")
        assert await store.get("k") == b"\x00value\xff"

    async def test_set_overwrites(self, store: Store) -> None:
        await store.set("k", b"old")
        await store.set("k", b"new")
        assert await store.get("k") == b"new"

    async def test_value_expires_after_ttl(self, store: Store, store_time: StoreTime) -> None:
        await store.set("k", b"v", ttl=30)
        await store_time.elapse(29)
        assert await store.get("k") == b"v"
        await store_time.elapse(2)
        assert await store.get("k") is None

    async def test_set_without_ttl_removes_the_previous_ttl(
        self, store: Store, store_time: StoreTime
    ) -> None:
        await store.set("k", b"short", ttl=30)
        await store.set("k", b"kept")
        await store_time.elapse(3600)
        assert await store.get("k") == b"kept"

    async def test_get_many_answers_in_order_with_none_for_missing(
        self, store: Store, store_time: StoreTime
    ) -> None:
        await store.set("a", b"1")
        await store.set("b", b"2", ttl=1)
        await store.set("c", b"3", ttl=100)
        assert await store.get_many(["c", "missing", "a", "b"]) == [b"3", None, b"1", b"2"]
        await store_time.elapse(2)
        assert await store.get_many(["a", "b", "c"]) == [b"1", None, b"3"]
        assert await store.get_many([]) == []

    async def test_delete(self, store: Store) -> None:
        await store.set("k", b"v")
        await store.delete("k")
        await store.delete("never-set")
        assert await store.get("k") is None

    @pytest.mark.parametrize("ttl", [0, -1.5])
    async def test_ttl_must_be_positive(self, store: Store, ttl: float) -> None:
        with pytest.raises(ValueError, match="ttl must be positive"):
            await store.set("k", b"v", ttl=ttl)


class TestSetIfAbsent:
    async def test_stores_only_when_absent(self, store: Store) -> None:
        assert await store.set_if_absent("k", b"first", ttl=10) is True
        assert await store.set_if_absent("k", b"second", ttl=10) is False
        assert await store.get("k") == b"first"

    async def test_stores_again_once_expired(self, store: Store, store_time: StoreTime) -> None:
        assert await store.set_if_absent("k", b"first", ttl=30) is True
        await store_time.elapse(29)
        assert await store.set_if_absent("k", b"second", ttl=10) is False
        await store_time.elapse(2)
        assert await store.set_if_absent("k", b"second", ttl=10) is True
        assert await store.get("k") == b"second"

    async def test_exactly_one_of_many_concurrent_callers_wins(self, store: Store) -> None:
        results = await asyncio.gather(
            *(store.set_if_absent("k", str(i).encode(), ttl=10) for i in range(CONCURRENCY))
        )
        assert results.count(True) == 1
        assert await store.get("k") == str(results.index(True)).encode()


class TestIncr:
    async def test_counts_from_one(self, store: Store) -> None:
        assert [await store.incr("n") for _ in range(3)] == [1, 2, 3]
        assert await store.get("n") == b"3"

    async def test_adds_an_amount_with_and_without_ttl(self, store: Store) -> None:
        assert await store.incr("n", amount=5) == 5
        assert await store.incr("n", amount=2) == 7
        assert await store.incr("t", ttl=10, amount=4) == 4
        assert await store.incr("t", ttl=10, amount=3) == 7

    async def test_incr_and_get_many_counts_and_reads_in_one_call(
        self, store: Store, store_time: StoreTime
    ) -> None:
        await store.set("a", b"1")
        assert await store.incr_and_get_many("n", 10, ["a", "missing"]) == (1, [b"1", None])
        assert await store.incr_and_get_many("n", 10, []) == (2, [])
        await store_time.elapse(11)  # the ttl set at creation, not extended by the second
        assert await store.incr_and_get_many("n", 10, ["a"]) == (1, [b"1"])
        results = await asyncio.gather(
            *(store.incr_and_get_many("c", 10, ["a"]) for _ in range(CONCURRENCY))
        )
        assert sorted(count for count, _ in results) == list(range(1, CONCURRENCY + 1))

    async def test_concurrent_increments_are_not_lost(self, store: Store) -> None:
        results = await asyncio.gather(*(store.incr("n", ttl=10) for _ in range(CONCURRENCY)))
        assert sorted(results) == list(range(1, CONCURRENCY + 1))

    async def test_ttl_applies_from_creation_and_is_not_extended(
        self, store: Store, store_time: StoreTime
    ) -> None:
        assert await store.incr("n", ttl=60) == 1
        await store_time.elapse(30)
        assert await store.incr("n", ttl=60) == 2
        await store_time.elapse(45)
        # 75 s after creation: a ttl renewed by the second call would still hold the counter.
        assert await store.incr("n", ttl=60) == 1


class TestManyAtOnce:
    async def test_get_many_answers_in_order_with_none_for_missing(self, store: Store) -> None:
        await store.set("a", b"1")
        await store.set("c", b"3")
        assert await store.get_many(["c", "b", "a"]) == [b"3", None, b"1"]
        assert await store.get_many([]) == []

    async def test_write_many_sets_values_and_adds_to_counters(self, store: Store) -> None:
        await store.incr("n", ttl=60, amount=2)
        counts = await store.write_many(
            [("v1", b"x", 60), ("v2", b"y\x00z", 60)], [("n", 3, 60), ("m", 1, 60), ("n", 1, 60)]
        )
        assert counts == [5, 1, 6]
        assert await store.get_many(["v1", "v2", "n", "m"]) == [b"x", b"y\x00z", b"6", b"1"]
        assert await store.write_many([], []) == []

    async def test_write_many_ttls_apply_as_set_and_incr_apply_them(
        self, store: Store, store_time: StoreTime
    ) -> None:
        await store.write_many([("v", b"x", 30)], [("n", 1, 60)])
        await store_time.elapse(45)
        assert await store.write_many([], [("n", 1, 60)]) == [2]  # ttl not renewed
        assert await store.get("v") is None
        await store_time.elapse(30)
        assert await store.get("n") is None


class TestPubSub:
    async def test_subscriber_receives_a_message_published_after_subscribe(
        self, store: Store
    ) -> None:
        subscription = await store.subscribe("card-status")
        try:
            await store.publish("card-status", b"card-1")
            async with asyncio.timeout(WAIT):
                assert await anext(aiter(subscription)) == b"card-1"
        finally:
            await subscription.aclose()

    async def test_messages_arrive_in_order_and_only_on_their_channel(self, store: Store) -> None:
        subscription = await store.subscribe("a")
        try:
            await store.publish("b", b"elsewhere")
            for message in (b"1", b"2", b"3"):
                await store.publish("a", message)
            received = []
            async with asyncio.timeout(WAIT):
                async for message in subscription:
                    received.append(message)
                    if len(received) == 3:
                        break
            assert received == [b"1", b"2", b"3"]
        finally:
            await subscription.aclose()

    async def test_every_subscriber_gets_the_message(self, store: Store) -> None:
        first = await store.subscribe("c")
        second = await store.subscribe("c")
        try:
            await store.publish("c", b"m")
            async with asyncio.timeout(WAIT):
                assert await anext(aiter(first)) == b"m"
                assert await anext(aiter(second)) == b"m"
        finally:
            await first.aclose()
            await second.aclose()

    async def test_iteration_ends_after_aclose(self, store: Store) -> None:
        subscription = await store.subscribe("c")
        await subscription.aclose()
        await store.publish("c", b"late")
        async with asyncio.timeout(WAIT):
            assert [message async for message in subscription] == []

    async def test_aclose_wakes_a_waiting_reader(self, store: Store) -> None:
        subscription = await store.subscribe("c")

        async def drain() -> list[bytes]:
            return [message async for message in subscription]

        reader = asyncio.create_task(drain())
        await asyncio.sleep(0.05)
        await subscription.aclose()
        async with asyncio.timeout(WAIT):
            assert await reader == []


class TestStreams:
    async def test_read_delivers_appended_entries_in_order(self, store: Store) -> None:
        first = await store.stream_append("s", {"n": "1"})
        second = await store.stream_append("s", {"n": "2", "x": "y"})
        entries = await store.stream_read("s", "g", "c1", count=10, block_ms=0)
        assert entries == [
            StreamEntry(first, {"n": "1"}),
            StreamEntry(second, {"n": "2", "x": "y"}),
        ]

    async def test_new_group_starts_at_the_beginning_of_the_stream(self, store: Store) -> None:
        await store.stream_append("s", {"n": "1"})
        assert [e.fields for e in await read_all(store, "s")] == [{"n": "1"}]
        other = await store.stream_read("s", "other-group", "c1", count=10, block_ms=0)
        assert [e.fields for e in other] == [{"n": "1"}]

    async def test_read_of_a_missing_stream_is_empty(self, store: Store) -> None:
        assert await store.stream_read("none", "g", "c1", count=10, block_ms=0) == []

    async def test_count_limits_the_batch(self, store: Store) -> None:
        for n in range(5):
            await store.stream_append("s", {"n": str(n)})
        batch = await store.stream_read("s", "g", "c1", count=2, block_ms=0)
        assert [e.fields["n"] for e in batch] == ["0", "1"]

    async def test_unacknowledged_entries_are_redelivered_first(self, store: Store) -> None:
        for n in range(3):
            await store.stream_append("s", {"n": str(n)})
        delivered = await store.stream_read("s", "g", "c1", count=10, block_ms=0)
        await store.stream_ack("s", "g", [delivered[0].entry_id])
        await store.stream_append("s", {"n": "3"})
        again = await store.stream_read("s", "g", "c1", count=10, block_ms=0)
        assert again == delivered[1:]

    async def test_acknowledged_entries_are_not_delivered_again(self, store: Store) -> None:
        await store.stream_append("s", {"n": "0"})
        delivered = await store.stream_read("s", "g", "c1", count=10, block_ms=0)
        await store.stream_ack("s", "g", [entry.entry_id for entry in delivered])
        await store.stream_append("s", {"n": "1"})
        after_ack = await store.stream_read("s", "g", "c1", count=10, block_ms=0)
        assert [e.fields["n"] for e in after_ack] == ["1"]
        await store.stream_ack("s", "g", [entry.entry_id for entry in after_ack])
        assert await store.stream_read("s", "g", "c1", count=10, block_ms=0) == []

    async def test_pending_entries_stay_with_their_consumer(self, store: Store) -> None:
        await store.stream_append("s", {"n": "0"})
        await store.stream_read("s", "g", "c1", count=10, block_ms=0)
        await store.stream_append("s", {"n": "1"})
        other = await store.stream_read("s", "g", "c2", count=10, block_ms=0)
        assert [e.fields["n"] for e in other] == ["1"]

    async def test_entries_left_pending_by_a_consumer_are_reclaimed_by_another(
        self, store: Store
    ) -> None:
        for n in range(3):
            await store.stream_append("s", {"n": str(n)})
        left = await store.stream_read("s", "g", "gone", count=10, block_ms=0)
        await store.stream_ack("s", "g", [left[0].entry_id])
        await asyncio.sleep(0.02)
        reclaimed = await store.stream_reclaim("s", "g", "heir", min_idle_ms=10, count=10)
        assert [e.fields["n"] for e in reclaimed] == ["1", "2"]
        assert await store.stream_read("s", "g", "heir", count=10, block_ms=0) == reclaimed
        assert await store.stream_read("s", "g", "gone", count=10, block_ms=0) == []

    async def test_recently_delivered_entries_are_not_reclaimed(self, store: Store) -> None:
        await store.stream_append("s", {"n": "0"})
        await store.stream_read("s", "g", "busy", count=10, block_ms=0)
        assert await store.stream_reclaim("s", "g", "heir", min_idle_ms=60_000, count=10) == []

    async def test_reclaim_takes_the_oldest_first_up_to_count(self, store: Store) -> None:
        for n in range(4):
            await store.stream_append("s", {"n": str(n)})
        await store.stream_read("s", "g", "gone", count=10, block_ms=0)
        await asyncio.sleep(0.02)
        first = await store.stream_reclaim("s", "g", "heir", min_idle_ms=10, count=3)
        assert [e.fields["n"] for e in first] == ["0", "1", "2"]

    async def test_reclaim_of_a_missing_stream_or_group_is_empty(self, store: Store) -> None:
        assert await store.stream_reclaim("none", "g", "c", min_idle_ms=0, count=10) == []
        await store.stream_append("s", {"n": "0"})
        assert await store.stream_reclaim("s", "no-group", "c", min_idle_ms=0, count=10) == []

    async def test_trimming_removes_only_what_every_group_acknowledged(self, store: Store) -> None:
        for n in range(6):
            await store.stream_append("s", {"n": str(n)})
        fast = await store.stream_read("s", "fast", "c", count=10, block_ms=0)
        await store.stream_ack("s", "fast", [entry.entry_id for entry in fast])
        slow = await store.stream_read("s", "slow", "c", count=2, block_ms=0)
        await store.stream_ack("s", "slow", [slow[0].entry_id])
        # "slow" acknowledged entry 0, holds 1 pending and has not read 2-5.
        assert await store.stream_trim_acknowledged("s") == 5
        assert await store.stream_read("s", "slow", "c", count=10, block_ms=0) == slow[1:]
        await store.stream_ack("s", "slow", [slow[1].entry_id])
        rest = await store.stream_read("s", "slow", "c", count=10, block_ms=0)
        assert [entry.fields["n"] for entry in rest] == ["2", "3", "4", "5"]
        await store.stream_ack("s", "slow", [entry.entry_id for entry in rest])
        assert await store.stream_trim_acknowledged("s") == 0
        await store.stream_append("s", {"n": "6"})
        assert [e.fields["n"] for e in await store.stream_read("s", "fast", "c", 10, 0)] == ["6"]

    async def test_nothing_is_trimmed_without_a_group_or_stream(self, store: Store) -> None:
        assert await store.stream_trim_acknowledged("none") == 0
        for n in range(3):
            await store.stream_append("s", {"n": str(n)})
        assert await store.stream_trim_acknowledged("s") == 3

    async def test_blocking_read_returns_an_entry_appended_while_waiting(
        self, store: Store
    ) -> None:
        await store.stream_read("s", "g", "c1", count=10, block_ms=0)  # Creates the group.
        reader = asyncio.create_task(store.stream_read("s", "g", "c1", count=10, block_ms=1500))
        await asyncio.sleep(0.05)
        await store.stream_append("s", {"n": "late"})
        async with asyncio.timeout(WAIT):
            entries = await reader
        assert [e.fields for e in entries] == [{"n": "late"}]

    async def test_blocking_read_with_nothing_new_returns_empty(self, store: Store) -> None:
        assert await store.stream_read("s", "g", "c1", count=10, block_ms=50) == []

    async def test_ack_of_nothing_is_a_no_op(self, store: Store) -> None:
        await store.stream_ack("s", "g", [])

    async def test_entry_needs_fields(self, store: Store) -> None:
        with pytest.raises(ValueError, match="at least one field"):
            await store.stream_append("s", {})


class TestClaimScans:
    async def test_first_presentation_stores_claim_and_status(self, store: Store) -> None:
        await enable_scanner(store)
        await store.set("status:card-1", b"active")
        (result,) = await store.claim_scans([scan_claim()])
        assert (result.principal, result.first, result.existing, result.status) == (
            b"1",
            True,
            None,
            b"active",
        )
        assert await store.get("replay:cti-1") == b"scanner-1:scan-1|active"

    async def test_card_absent_from_the_store_has_no_status(self, store: Store) -> None:
        await enable_scanner(store)
        (result,) = await store.claim_scans([scan_claim()])
        assert result.first is True
        assert result.status is None
        assert await store.get("replay:cti-1") == b"scanner-1:scan-1|"

    async def test_another_presentation_sees_the_first_one(self, store: Store) -> None:
        await enable_scanner(store)
        await enable_scanner(store, "scanner-2")
        await store.set("status:card-1", b"active")
        await store.claim_scans([scan_claim()])
        await store.set("status:card-1", b"lost")
        (again,) = await store.claim_scans(
            [scan_claim(claim=b"scanner-2:scan-9", scanner="scanner-2")]
        )
        assert again.first is False
        assert again.existing == b"scanner-1:scan-1|active"
        assert again.status == b"lost"
        assert await store.get("replay:cti-1") == b"scanner-1:scan-1|active"

    @pytest.mark.parametrize("principal", [None, b"0", b"disabled"])
    async def test_rejected_principal_consumes_nothing(
        self, store: Store, principal: bytes | None
    ) -> None:
        if principal is not None:
            await store.set("principal:scanner-1", principal)
        await store.set("status:card-1", b"active")
        (result,) = await store.claim_scans([scan_claim()])
        assert (result.principal, result.first, result.existing, result.status) == (
            principal,
            False,
            None,
            None,
        )
        assert await store.get("replay:cti-1") is None

    async def test_replay_key_expires_after_ttl(self, store: Store, store_time: StoreTime) -> None:
        await enable_scanner(store)
        await store.claim_scans([scan_claim(ttl=60)])
        await store_time.elapse(59)
        assert await store.get("replay:cti-1") is not None
        await store_time.elapse(2)
        assert await store.get("replay:cti-1") is None
        (result,) = await store.claim_scans([scan_claim(claim=b"later", ttl=1)])
        assert result.first is True

    async def test_batch_runs_in_order_with_duplicates_inside(self, store: Store) -> None:
        await enable_scanner(store)
        await store.set("status:card-1", b"active")
        claims = [
            scan_claim("a", claim=b"s1:1"),
            scan_claim("b", claim=b"s1:2"),
            scan_claim("a", claim=b"s1:3"),
            scan_claim("c", claim=b"s2:1", scanner="scanner-2"),
            scan_claim("b", claim=b"s1:4"),
        ]
        results = await store.claim_scans(claims)
        assert [r.first for r in results] == [True, True, False, False, False]
        assert [r.existing for r in results] == [
            None,
            None,
            b"s1:1|active",
            None,
            b"s1:2|active",
        ]
        assert [r.principal for r in results] == [b"1", b"1", b"1", None, b"1"]
        assert await store.get("replay:c") is None

    async def test_many_distinct_claims_in_one_batch(self, store: Store) -> None:
        await enable_scanner(store)
        results = await store.claim_scans([scan_claim(f"cti-{n}") for n in range(500)])
        assert [r.first for r in results] == [True] * 500

    async def test_audit_entries_carry_fields_outcome_and_status(self, store: Store) -> None:
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
        assert [entry.fields for entry in await read_all(store, "audit")] == [
            {"cti": "a", "scene": "hospital", "outcome": "first", "status": "suspended"},
            {"cti": "a", "scene": "pharmacy", "outcome": "again", "status": "suspended"},
            {"cti": "b", "outcome": "principal_rejected", "status": ""},
        ]

    async def test_a_scanner_missing_from_the_store_writes_nothing(self, store: Store) -> None:
        """Not even an audit entry: its caller reloads the scanner and claims again with the
        same event, and only that outcome is answered (one event, one outcome)."""
        (result,) = await store.claim_scans([scan_claim("a", scanner="unknown")])
        assert (result.principal, result.first, result.existing) == (None, False, None)
        assert await store.get("replay:a") is None
        assert await read_all(store, "audit") == []

    async def test_claims_run_while_the_epoch_is_the_one_expected(self, store: Store) -> None:
        await enable_scanner(store)
        await store.set_if_absent(EPOCH_KEY, b"e1", None)
        (result,) = await store.claim_scans([scan_claim("a")], epoch=b"e1")
        assert result.first

    @pytest.mark.parametrize("stored", [None, b"e2"])
    async def test_a_missing_or_other_epoch_claims_and_appends_nothing(
        self, store: Store, stored: bytes | None
    ) -> None:
        """A store that lost its data lost its replay keys too: nothing may be claimed."""
        await enable_scanner(store)
        if stored is not None:
            await store.set(EPOCH_KEY, stored)
        with pytest.raises(EpochChanged) as raised:
            await store.claim_scans([scan_claim("a"), scan_claim("b")], epoch=b"e1")
        assert raised.value.found == stored
        assert await store.get("replay:a") is None
        assert await read_all(store, "audit") == []

    async def test_audit_fields_may_be_empty(self, store: Store) -> None:
        await enable_scanner(store)
        await store.claim_scans([scan_claim(audit={})])
        assert [entry.fields for entry in await read_all(store, "audit")] == [
            {"outcome": "first", "status": ""}
        ]

    async def test_exactly_one_of_many_concurrent_presentations_is_first(
        self, store: Store
    ) -> None:
        scanners = [f"scanner-{n}" for n in range(5)]
        for scanner in scanners:
            await enable_scanner(store, scanner)
        claims = [
            scan_claim(claim=f"{scanners[n % 5]}:{n}".encode(), scanner=scanners[n % 5])
            for n in range(CONCURRENCY)
        ]
        batches = await asyncio.gather(*(store.claim_scans([claim]) for claim in claims))
        results = [result for (result,) in batches]
        assert [r.first for r in results].count(True) == 1
        winner = claims[[r.first for r in results].index(True)].claim
        assert {r.existing for r in results if not r.first} == {winner + b"|"}
        outcomes = [entry.fields["outcome"] for entry in await read_all(store, "audit")]
        assert sorted(outcomes) == ["again"] * (CONCURRENCY - 1) + ["first"]

    async def test_empty_batch_returns_nothing(self, store: Store) -> None:
        assert await store.claim_scans([]) == []

    @pytest.mark.parametrize("reserved", ["outcome", "status"])
    async def test_audit_fields_set_by_the_store_are_refused(
        self, store: Store, reserved: str
    ) -> None:
        await enable_scanner(store)
        with pytest.raises(ValueError, match="set by the store"):
            await store.claim_scans([scan_claim("ok"), scan_claim(audit={reserved: "x"})])
        assert await store.get("replay:ok") is None

    async def test_ttl_must_be_positive(self, store: Store) -> None:
        with pytest.raises(ValueError, match="ttl must be positive"):
            await store.claim_scans([scan_claim(ttl=0)])


@pytest.mark.parametrize("store", ["redis-py"], indirect=True)
class TestClaimScansThroughRedisPy(TestClaimScans):
    """The same claims on Redis with `SSC_REDIS_CLAIM_CHANNEL=false`."""
