"""The PIN attempt gate on each store: reservations, lock, release."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from app.cards.models import utcnow
from app.holders import pin_attempts
from app.holders.pin_attempts import PinChannel, PinGate
from app.store import Store

LIMIT = 5


def gate(key: str = "pin:unbound:test") -> PinGate:
    return PinGate(PinChannel.unbound, key, LIMIT, 900)


class TestGate:
    async def test_of_many_concurrent_reservations_exactly_the_limit_are_granted(
        self, store: Store
    ) -> None:
        outcomes = await asyncio.gather(*(pin_attempts.reserve(store, gate()) for _ in range(100)))
        granted = sorted(o for o in outcomes if isinstance(o, int))
        assert granted == list(range(1, LIMIT + 1))
        assert all(isinstance(o, datetime) for o in outcomes if not isinstance(o, int))

    async def test_a_lock_refuses_until_its_time_and_says_when(self, store: Store) -> None:
        until = utcnow() + timedelta(seconds=600)
        await pin_attempts.lock(store, gate(), until)
        assert await pin_attempts.reserve(store, gate()) == until

    async def test_a_release_starts_the_count_again(self, store: Store) -> None:
        for _ in range(LIMIT):
            await pin_attempts.reserve(store, gate())
        await pin_attempts.lock(store, gate(), utcnow() + timedelta(seconds=600))
        await pin_attempts.release(store, gate())
        assert await pin_attempts.reserve(store, gate()) == 1

    async def test_gates_count_apart(self, store: Store) -> None:
        for _ in range(LIMIT + 1):
            await pin_attempts.reserve(store, gate("pin:unbound:a"))
        assert await pin_attempts.reserve(store, gate("pin:unbound:b")) == 1
