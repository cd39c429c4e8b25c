"""Keeps each worker's catalog snapshot current: loaded at start, rebuilt on every
`catalog-changes` message (within a second of a change anywhere), and re-read every
`SSC_KEY_SYNC_INTERVAL` seconds in case a message was lost. The verify path reads the
snapshot only; a database that is down leaves the worker serving with what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from app.background_tasks import stop_tasks
from app.catalog.service import CATALOG_CHANGES, ensure_default_catalog, refresh_catalog
from app.runtime import Runtime
from app.store.base import Subscription
from app.store.following import follow_channel

logger = logging.getLogger("ssc.catalog")


async def _refresh(runtime: Runtime) -> None:
    try:
        await refresh_catalog(runtime)
    except Exception:
        logger.exception("catalog not re-read; serving the snapshot held")


async def _periodic(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(runtime.settings.key_sync_interval)
        await _refresh(runtime)


@contextlib.asynccontextmanager
async def catalog_sync(runtime: Runtime) -> AsyncIterator[None]:
    """Subscribes, loads the catalog (seeding the default on an empty table), then keeps it
    current until exit."""
    subscription: Subscription | None = None
    try:
        subscription = await runtime.store.subscribe(CATALOG_CHANGES)
    except Exception:
        logger.exception("cannot subscribe to %s yet; retrying in the background", CATALOG_CHANGES)
    try:
        await ensure_default_catalog(runtime)
    except Exception:
        logger.exception("default catalog not checked; serving the built-in default")
    await _refresh(runtime)
    tasks = [
        asyncio.create_task(
            follow_channel(runtime.store, CATALOG_CHANGES, lambda: _refresh(runtime), subscription),
            name="catalog-sync:listener",
        ),
        asyncio.create_task(_periodic(runtime), name="catalog-sync:periodic"),
    ]
    try:
        yield
    finally:
        await stop_tasks(tasks)
