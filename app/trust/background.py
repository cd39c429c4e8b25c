"""Background work of each API worker: key ring sync and scheduled rotation, trust refresh.

- every `SSC_KEY_SYNC_INTERVAL` seconds: re-read the key ring (a rotation by another process
  or `ssc keys rotate`), rotate if due, prune expired keys, and rebuild the token verifier
  if `trust:version` moved (a missed pub/sub message);
- on every `trust-changes` message: rebuild the token verifier at once;
- every few seconds (`status_fetch.fetch_tick`): fetch the other issuers' status lists that
  are due from their announced URLs (`app.trust.status_fetch`), one worker per list;
- on every `key-changes` message (an emergency revocation, `app.trust.key_rotation`): re-read
  the key ring at once, so this worker stops publishing and accepting the revoked key and
  signs with the fresh one.

Both channels are subscribed before the worker serves, so a change announced once it answers
reaches it; after a lost subscription the worker resubscribes and catches up.

Failures are logged and retried at the next tick: a flaky database or store must not stop
the worker from serving with what it already holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx

from app.background_tasks import stop_tasks
from app.runtime import Runtime
from app.store.base import Subscription
from app.store.following import follow_channel
from app.trust.documents import current_version
from app.trust.issuers import TRUST_CHANGES, TRUST_VERSION, refresh_verifier
from app.trust.key_rotation import KEY_CHANGES, RotationPolicy, rotate_if_due
from app.trust.status_fetch import fetch_status_lists, fetch_tick

logger = logging.getLogger("ssc.trust")


class TrustSync:
    """Keeps one worker's keys and trusted issuers current."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._policy = RotationPolicy.of(runtime.settings)
        self._trust_version: int | None = None

    async def refresh_trust(self) -> None:
        """Rebuilds the verifier from the registry, remembering the version it saw first."""
        version = await current_version(self._runtime.store, TRUST_VERSION)
        await refresh_verifier(self._runtime)
        self._trust_version = version

    async def reload_keys(self) -> None:
        """Re-reads the key ring (a revocation made by another process)."""
        self._runtime.keyring.reload()
        self._runtime.oidc_keyring.reload()

    async def tick(self) -> None:
        """One periodic check: keys (reload, rotate if due, prune) and the trust version."""
        runtime = self._runtime
        await rotate_if_due(runtime.keyring, runtime.store, self._policy)
        await rotate_if_due(runtime.oidc_keyring, runtime.store, self._policy, purpose="oidc")
        if await current_version(runtime.store, TRUST_VERSION) != self._trust_version:
            await self.refresh_trust()

    async def run_periodic(self) -> None:
        while True:
            await asyncio.sleep(self._runtime.settings.key_sync_interval)
            try:
                await self.tick()
            except Exception:
                logger.exception("key and trust sync failed; retrying at the next tick")

    async def run_status_lists(self) -> None:
        """Fetches the other issuers' status lists as they fall due, until cancelled."""
        async with httpx.AsyncClient(
            timeout=self._runtime.settings.status_list_fetch_timeout, follow_redirects=False
        ) as http:
            while True:
                await asyncio.sleep(fetch_tick(self._runtime))
                try:
                    await fetch_status_lists(self._runtime, http)
                except Exception:
                    logger.exception("status list fetch failed; retrying at the next tick")


@contextlib.asynccontextmanager
async def trust_sync(runtime: Runtime) -> AsyncIterator[TrustSync]:
    """Loads the trusted issuers, then runs the periodic sync and the listener until exit."""
    sync = TrustSync(runtime)
    subscriptions: dict[str, Subscription | None] = dict.fromkeys((TRUST_CHANGES, KEY_CHANGES))
    for channel in subscriptions:
        try:
            subscriptions[channel] = await runtime.store.subscribe(channel)
        except Exception:
            # The store is down: do not wait for it twice; the listeners keep trying.
            logger.exception("cannot subscribe to %s yet; retrying in the background", channel)
            break
    try:
        await sync.refresh_trust()
    except Exception:
        logger.exception("could not load the trusted issuers; only our own tokens verify")
    tasks = [
        asyncio.create_task(sync.run_periodic(), name="trust-sync:periodic"),
        asyncio.create_task(
            follow_channel(
                runtime.store, TRUST_CHANGES, sync.refresh_trust, subscriptions[TRUST_CHANGES]
            ),
            name="trust-sync:listener",
        ),
        asyncio.create_task(
            follow_channel(
                runtime.store, KEY_CHANGES, sync.reload_keys, subscriptions[KEY_CHANGES]
            ),
            name="trust-sync:keys",
        ),
        asyncio.create_task(sync.run_status_lists(), name="trust-sync:status-lists"),
    ]
    try:
        yield sync
    finally:
        await stop_tasks(tasks)
