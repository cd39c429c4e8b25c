"""Long loops that share the event loop with the verify path.

The audit consumer runs in the API workers: a batch of 500 entries parsed, chained and
watched in one go held the event loop for tens of milliseconds, and every verify request
arriving meanwhile waited (p99 at half load, load/PROFILE.md). Walking the batch in slices,
with a turn of the event loop between them, bounds each hold to one slice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

SLICE = 50
"""Items per slice: a few milliseconds of the heaviest per-item work (the misuse watch)."""

T = TypeVar("T")


async def in_slices(items: Sequence[T], size: int = SLICE) -> AsyncIterator[Sequence[T]]:
    """`items` in slices of `size`, letting other tasks run before each slice after the first."""
    for start in range(0, len(items), size):
        if start:
            await asyncio.sleep(0)
        yield items[start : start + size]
