"""Stopping the service's background tasks so that shutdown always ends.

Python 3.11's `asyncio.wait_for`, used inside libraries (redis-py among them), can swallow a
cancellation that arrives as the awaited operation completes: the task then goes on with its
loop, and a shutdown that awaits it waits forever (the event loop idle but for the task's own
timers). So a task that outlives its cancellation is logged with where it waits, cancelled
again, and after a few tries abandoned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger("ssc.shutdown")

PATIENCE_SECONDS = 5.0
ATTEMPTS = 3


async def stop_tasks(
    tasks: Iterable[asyncio.Task[Any]],
    *,
    patience: float = PATIENCE_SECONDS,
    attempts: int = ATTEMPTS,
) -> None:
    """Cancel `tasks` and wait until they end; a task's own failure is logged, never raised."""
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    for attempt in range(attempts):
        if not pending:
            break
        _, pending = await asyncio.wait(pending, timeout=patience)
        for task in pending:
            logger.error(
                "background task %s still runs %.0f s after it was told to stop "
                "(attempt %d of %d); cancelling it again. It waits in: %s",
                task.get_name(),
                patience * (attempt + 1),
                attempt + 1,
                attempts,
                awaiting(task),
            )
            task.cancel()
    for task in pending:
        logger.error("background task %s abandoned at shutdown", task.get_name())
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=task.exception())


def awaiting(task: asyncio.Task[Any]) -> str:
    """Where a suspended task waits: its chain of awaited coroutines, outermost first."""
    places: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(places) < 40:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            places.append(repr(awaited)[:120])
            break
        places.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_lineno})")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return " -> ".join(places) or "(not started)"
