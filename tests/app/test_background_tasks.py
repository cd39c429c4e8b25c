"""Shutdown ends even when a background task swallows its cancellation."""

import asyncio
import contextlib

import pytest

from app.background_tasks import stop_tasks


async def _swallows_the_first_cancellation(cancelled: list[int]) -> None:
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(1)
            if len(cancelled) > 1:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]


async def test_a_task_that_ignores_its_cancellation_is_cancelled_again_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cancelled: list[int] = []
    task = asyncio.create_task(_swallows_the_first_cancellation(cancelled), name="stubborn")
    await asyncio.sleep(0)
    await stop_tasks([task], patience=0.05)
    assert task.cancelled()
    assert len(cancelled) == 2
    [record] = [r for r in caplog.records if r.name == "ssc.shutdown"]
    assert "stubborn still runs" in record.getMessage()
    assert "_swallows_the_first_cancellation" in record.getMessage()


async def test_a_task_that_never_ends_is_abandoned_after_the_attempts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def immortal() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)

    task = asyncio.create_task(immortal(), name="immortal")
    await asyncio.sleep(0)
    await stop_tasks([task], patience=0.02, attempts=2)
    assert not task.done()
    assert "immortal abandoned at shutdown" in caplog.text
    release.set()
    task.cancel()
    await asyncio.wait([task])


async def test_a_failed_task_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise RuntimeError("broken")

    task = asyncio.create_task(fails(), name="failing")
    await asyncio.sleep(0)
    await stop_tasks([task])
    assert "background task failing failed" in caplog.text
