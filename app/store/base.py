"""The fast store: replay keys, status cache, counters, pub/sub, the audit stream.

`MemoryStore` (embedded, one process) and `RedisStore` (production) implement this
protocol and pass one contract test suite (tests/app/store/test_contract.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# The `outcome` a claim writes into its audit entry; `outcome` and `status` are set by the store.
AUDIT_OUTCOME_FIRST = "first"
AUDIT_OUTCOME_AGAIN = "again"
AUDIT_OUTCOME_PRINCIPAL_REJECTED = "principal_rejected"
"""The scanner's mirror holds something other than `principal_ok`: it is disabled (or unknown,
mirrored as disabled), and that is what the service answers."""
RESERVED_AUDIT_FIELDS = frozenset({"outcome", "status"})


class StoreError(Exception):
    """Base class of store failures."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or timed out; callers must fail closed."""


EPOCH_KEY = "epoch"
"""The key that marks the store's data generation (`app.verification.epoch`): written once,
without expiry, by the service; a store that lost its data lacks it."""


class EpochChanged(StoreError):
    """`claim_scans` found `EPOCH_KEY` not holding the epoch its caller expected: the store
    lost its data (or another worker already started a new epoch). Nothing was claimed and
    nothing appended."""

    def __init__(self, found: bytes | None) -> None:
        super().__init__(f"store epoch is {found!r}, not the one expected")
        self.found = found


@dataclass(slots=True)  # not frozen: a record of the hot path (docs/architecture.md)
class ScanClaim:
    """One presentation of a QR token, claimed in a single round trip on the verify path.

    The store atomically: reads `principal_key`; if it is absent, stops there and appends
    nothing; if its value is not `principal_ok`, appends the audit entry with outcome
    `principal_rejected` and stops there (a disabled scanner consumes nothing). Otherwise
    reads `replay_key`; if absent, stores `claim + b"|" + <card status or b"">` there with
    `ttl` seconds; reads `status_key`; appends `audit_fields` plus `outcome` and `status`
    to `audit_stream`.

    Why a missing mirror appends nothing: it is not an outcome anybody is answered. The
    caller reloads the mirror from SQL and claims again with the same audit fields (the same
    event id), and only that second claim's outcome is answered. Had the first claim
    appended `principal_rejected`, the audit writer (idempotent by event id) would have kept
    it and dropped the real outcome as a duplicate. A mirror still missing after the reload
    is the caller's to audit (`app.verification.service`).
    """

    replay_key: str
    claim: bytes
    ttl: int
    status_key: str
    principal_key: str
    audit_stream: str
    audit_fields: Mapping[str, str] = field(default_factory=dict)
    principal_ok: bytes = b"1"


def check_scan_claim(claim: ScanClaim) -> None:
    """Refuses claims that no store could run faithfully, before anything is written."""
    if claim.ttl <= 0:
        raise ValueError(f"claim ttl must be positive, got {claim.ttl}")
    reserved = RESERVED_AUDIT_FIELDS.intersection(claim.audit_fields)
    if reserved:
        raise ValueError(f"audit fields {sorted(reserved)} are set by the store")


@dataclass(slots=True)  # not frozen: a record of the hot path (docs/architecture.md)
class ScanClaimResult:
    """What the store saw when the claim ran.

    `principal` is the value read at `principal_key` (None when absent).
    `first` is True when this call stored the claim. When False, `existing` is the
    value stored by the first presentation (claim + b"|" + status at that time).
    `status` is the card status read now (None when the card is not in the store).
    When the principal was not ok, `first` is False and `existing` is None; when it was
    absent, nothing was written (no audit entry either).
    """

    principal: bytes | None
    first: bool
    existing: bytes | None
    status: bytes | None


@dataclass(slots=True)  # not frozen: a record of the hot path (docs/architecture.md)
class StreamEntry:
    entry_id: str
    fields: dict[str, str]


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Store(Protocol):
    async def ping(self) -> None:
        """:raises StoreUnavailable: when the store does not answer."""

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of `keys`, in order, in one round trip (None where missing)."""

    async def incr_and_get_many(
        self, counter: str, ttl: float, keys: Sequence[str]
    ) -> tuple[int, list[bytes | None]]:
        """`incr(counter, ttl)` and `get_many(keys)` in one round trip (not atomic as a whole
        on the cluster, where the keys live on several nodes)."""

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None) -> bool:
        """Atomically store `value` unless `key` exists; True when stored. `ttl` None: the
        key does not expire."""

    async def delete(self, key: str) -> None: ...

    async def incr(self, key: str, ttl: float | None = None, amount: int = 1) -> int:
        """Add `amount` to a counter; `ttl` is applied when the counter is created."""

    async def publish(self, channel: str, message: bytes) -> None: ...

    async def subscribe(self, channel: str) -> Subscription:
        """Returns once the subscription is active, so no later publish is missed."""

    async def stream_append(self, stream: str, fields: Mapping[str, str]) -> str: ...

    async def stream_read(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int
    ) -> list[StreamEntry]:
        """Entries delivered to `consumer` but not yet acknowledged come first, then new ones.

        Creates the group (from the start of the stream) when missing. `block_ms <= 0`
        returns at once (unlike Redis' BLOCK 0, which waits forever).
        """

    async def stream_ack(self, stream: str, group: str, entry_ids: Sequence[str]) -> None: ...

    async def stream_trim_acknowledged(self, stream: str) -> int:
        """Removes the entries that every consumer group of `stream` has acknowledged and
        returns how many remain (not yet read by some group, or read and not acknowledged).

        The only way entries leave a stream: an entry no consumer has persisted is never
        dropped, however far behind the consumers are (a stream without groups keeps
        everything). Missing stream: 0."""

    async def stream_reclaim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        """Up to `count` entries delivered to any consumer of `group` and not acknowledged for
        at least `min_idle_ms`, now delivered to `consumer`: what a consumer that died, or
        stalled, left behind. Missing stream or group: nothing."""

    async def write_many(
        self,
        values: Sequence[tuple[str, bytes, float]],
        counters: Sequence[tuple[str, int, float]],
    ) -> list[int]:
        """Sets each `(key, value, ttl)` and adds each `(key, amount, ttl)` to its counter
        (the ttl applies when the counter is created, as `incr`), in one round trip where the
        store allows it; returns the counters' new values in order. Each write is atomic on
        its own, the whole is not (a failure may leave some done)."""

    async def claim_scans(
        self, claims: Sequence[ScanClaim], *, epoch: bytes | None = None
    ) -> list[ScanClaimResult]:
        """Runs every claim in one round trip, in order, each atomically.

        With `epoch`, the claims run only while `EPOCH_KEY` holds exactly `epoch`, checked in
        the same round trip (atomically with the claims on one Redis and the memory store;
        in the cluster's first step, see `RedisClusterStore`).

        :raises EpochChanged: when it does not; then nothing was written.
        """

    async def close(self) -> None: ...
