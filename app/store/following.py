"""Following a store channel: how every worker learns of a change made on another one.

A listener runs its handler once per message, and once more whenever it (re)subscribes,
because messages published while it was not subscribed are lost (pub/sub keeps nothing).
A failed subscription is retried every second; the handler's own failures are its to log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from app.store.base import Store, Subscription

logger = logging.getLogger("ssc.store")


async def follow_channel(
    store: Store,
    channel: str,
    on_message: Callable[[], Awaitable[None]],
    subscription: Subscription | None = None,
) -> None:
    """Runs `on_message` on every message of `channel` until cancelled, starting with
    `subscription` when the caller already made it (then the caller has loaded the state, so
    there is nothing to catch up on)."""
    while True:
        try:
            catch_up = subscription is None
            if subscription is None:
                subscription = await store.subscribe(channel)
            try:
                if catch_up:
                    await on_message()  # what was announced while we were not subscribed
                async for _ in subscription:
                    await on_message()
            finally:
                closing, subscription = subscription, None
                await closing.aclose()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s listener failed; resubscribing", channel)
            await asyncio.sleep(1)
