"""Time for the store's expiry tests, moved forward instead of slept through.

`MemoryStore` reads an injected clock (`ShiftableClock`: real monotonic time plus an offset
a test may advance). Redis keeps its own clock, which a test cannot move, so `elapse` does
to every key of the store's namespace what that much time would: it reads the TTL Redis
reports (PTTL), drops keys whose TTL runs out within it, and shortens the others by it. A
key the store wrote without a TTL, or with a wrong one, thus behaves as it would in
production after that time, without the test waiting for it.
"""

from __future__ import annotations

import re
import time

from app.store import Store
from app.store.memory import MemoryStore
from app.store.redis import RedisStore

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


class ShiftableClock:
    """`time.monotonic` plus an offset that only grows."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class StoreTime:
    def __init__(self, store: Store, clock: ShiftableClock | None) -> None:
        self.store = store
        self.clock = clock

    async def elapse(self, seconds: float) -> None:
        """Lets `seconds` pass for the store's expiries."""
        if isinstance(self.store, MemoryStore):
            assert self.clock is not None, "a MemoryStore built on a ShiftableClock"
            self.clock.advance(seconds)
            return
        assert isinstance(self.store, RedisStore)
        await self._elapse_on_redis(self.store, round(seconds * 1000))

    @staticmethod
    async def _elapse_on_redis(store: RedisStore, millis: int) -> None:
        client = store._redis
        pattern = _GLOB_SPECIAL.sub(r"\\\1", store._prefix) + "*"
        keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
        for key in keys:
            left = await client.pttl(key)
            if left < 0:  # no expiry (-1) or gone meanwhile (-2)
                continue
            if left <= millis:
                await client.unlink(key)
            else:
                await client.pexpire(key, left - millis)
