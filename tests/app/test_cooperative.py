"""Long loops on the event loop give other tasks a turn between slices."""

from __future__ import annotations

import asyncio

from app.cooperative import in_slices


async def test_items_come_in_order_in_slices_of_the_given_size() -> None:
    parts = [list(part) async for part in in_slices(list(range(7)), size=3)]
    assert parts == [[0, 1, 2], [3, 4, 5], [6]]
    assert [part async for part in in_slices([], size=3)] == []


async def test_other_tasks_run_between_slices_not_before_the_first() -> None:
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    waiting = asyncio.ensure_future(other())
    async for part in in_slices(list(range(4)), size=2):
        ran.append(f"slice {part[0]}")
    await waiting
    assert ran == ["slice 0", "other", "slice 2"]
