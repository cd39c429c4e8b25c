"""The store epoch: replay protection that survives the store losing its data.

A token's replay record lives in the store (Redis, or the memory store). Should the store
lose its data (a restart without persistence, a failover to a replica that was behind, a
flush, an eviction), every token it had recorded as used would verify `valid` again. The
service cannot tell a lost record from a token never shown, so it notices the loss itself:

- The store holds an *epoch* under `EPOCH_KEY` (an id, the time it started, whether it
  started after a loss), written once, without expiry, by the first worker that finds none.
  A store that lost its data lacks it.
- Every verify claim runs only while the epoch is the one this worker knows (checked inside
  the claim script, in the same round trip: `Store.claim_scans(epoch=...)`); a worker also
  reads it at start and every `CHECK_INTERVAL` seconds.
- A worker that finds the epoch missing starts a new one (`SET NX`: one worker wins, the
  others adopt it). From then on every token whose validity started before
  `refuse_before` is answered `reissue_required`, online, whatever the store says, and the
  phone fetches a new QR. The worker that started the epoch logs the loss (once) and audits
  it (`store.epoch_started`); every worker that notices counts it
  (`ssc_store_epoch_resets_total` in `/metrics`).

Where the line falls, with the clocks as they are. A token's replay record can only have
been written while some verifier admitted it, i.e. at a time T before the loss with the
token's start of validity S <= V(T) + skew (V: that verifier's clock; the verifiers' own
`iat`/`nbf` allowance). The new epoch starts at E = C(T_new) on its creator's clock, with
T_new after the loss, hence after T. With our workers' clocks within `clock_skew` of each
other, V(T) < C(T_new) + skew, so S < E + 2 * skew for every token that can have lost its
record. Tokens with S >= E + 2 * skew cannot have been admitted before the loss (prefetched
ones included, whose `iat` is ahead); every other token is refused. The issuer's own clock
does not enter. The price: for 2 * skew seconds after a loss even a freshly fetched QR is
refused (the phone retries).

The first epoch of a deployment (no epoch in the store, and none ever recorded in the audit
log: a new deployment) refuses nothing, since no token can have been recorded before it.
When the store is found empty and the audit log shows an earlier epoch, or this worker knew
one, the loss is real and the new epoch refuses as above. The memory store starts empty in
every process, so restarting `ssc serve` without Redis is such a loss too, and is handled
the same way.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlmodel import select

from app.audit.log import record
from app.audit.models import AuditEvent
from app.background_tasks import stop_tasks
from app.db import Database
from app.store import EPOCH_KEY, Store, StoreUnavailable

logger = logging.getLogger("ssc.store.epoch")

EPOCH_ACTION = "store.epoch_started"
EPOCH_ACTOR = "system:store-epoch"
CHECK_INTERVAL = 5.0
"""Seconds between a worker's reads of the epoch outside the verify path (the claim script
checks it on every scan anyway)."""
MAX_CLAIM_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Epoch:
    """One generation of the store's data, as stored: `<id>|<started_at>|<kind>`."""

    value: bytes
    started_at: float
    after_loss: bool

    @classmethod
    def new(cls, now: float, *, after_loss: bool) -> Epoch:
        kind = "after-loss" if after_loss else "first"
        value = f"{secrets.token_hex(8)}|{now:.6f}|{kind}".encode()
        return cls(value, now, after_loss)

    @classmethod
    def parse(cls, value: bytes | None) -> Epoch | None:
        """None for a missing or unreadable value (treated alike: a store not ours to trust)."""
        if value is None:
            return None
        try:
            _, started, kind = value.decode().split("|")
            started_at = float(started)
        except ValueError:
            return None
        if not math.isfinite(started_at) or kind not in {"first", "after-loss"}:
            return None
        return cls(value, started_at, kind == "after-loss")

    @property
    def id(self) -> str:
        return self.value.decode().partition("|")[0]


class StoreEpochs:
    """This worker's view of the store epoch, and what it refuses because of it."""

    def __init__(
        self,
        store: Store,
        database: Database,
        *,
        clock_skew: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._database = database
        self._skew = clock_skew
        self._clock = clock
        self.resets = 0
        """Losses this worker noticed: an epoch it knew gone, or one it started after a loss
        (`ssc_store_epoch_resets_total`)."""
        self._lock = asyncio.Lock()
        self.current: Epoch | None = None
        self.refuse_before = math.inf
        """Tokens whose validity starts before this (Unix seconds) are `reissue_required`;
        everything until the epoch is known."""

    async def check(self) -> Epoch:
        """Reads the store's epoch; starts or adopts a new one when it changed.

        :raises StoreUnavailable: when the store cannot be reached.
        """
        return await self.changed(await self._store.get(EPOCH_KEY))

    async def known(self) -> Epoch:
        """The current epoch, read from the store only when not known yet."""
        return self.current if self.current is not None else await self.check()

    async def changed(self, found: bytes | None) -> Epoch:
        """The store holds `found` (None: nothing) where this worker expected its epoch."""
        async with self._lock:
            current = self.current
            if current is not None and found == current.value:
                return current
            if current is not None and current.value != found:
                # Another request of this worker may already have settled it.
                found = await self._store.get(EPOCH_KEY)
                if found == current.value:
                    return current
            epoch = Epoch.parse(found)
            started = False
            if epoch is None:
                epoch, started = await self._start(unreadable=found is not None)
            if current is not None and not started:
                logger.warning(
                    "store epoch changed from %s to %s (started by another worker at %.3f)",
                    current.id,
                    epoch.id,
                    epoch.started_at,
                )
            if current is not None or (started and epoch.after_loss):
                self.resets += 1
            self._adopt(epoch)
            return epoch

    def _adopt(self, epoch: Epoch) -> None:
        self.current = epoch
        self.refuse_before = epoch.started_at + 2 * self._skew if epoch.after_loss else -math.inf

    async def _start(self, *, unreadable: bool) -> tuple[Epoch, bool]:
        """A new epoch and True, unless another worker stored one first (then that one and
        False)."""
        after_loss = self.current is not None or unreadable or await self._recorded_before()
        epoch = Epoch.new(self._clock(), after_loss=after_loss)
        if unreadable:
            await self._store.set(EPOCH_KEY, epoch.value)
        elif not await self._store.set_if_absent(EPOCH_KEY, epoch.value, None):
            winner = Epoch.parse(await self._store.get(EPOCH_KEY))
            if winner is None:
                raise StoreUnavailable("the store epoch vanished while it was being started")
            return winner, False
        refuse_before = epoch.started_at + 2 * self._skew
        if after_loss:
            logger.error(
                "THE STORE LOST ITS DATA (no store epoch found%s): new epoch %s; every token "
                "valid from before %.3f is refused as reissue_required. Check the store's "
                "persistence (README: Production Redis).",
                "" if self.current is None else f", this worker knew {self.current.id}",
                epoch.id,
                refuse_before,
            )
        else:
            logger.info("store epoch %s started (first of this deployment)", epoch.id)
        await record(
            self._store,
            EPOCH_ACTION,
            EPOCH_ACTOR,
            data={
                "epoch": epoch.id,
                "started_at": epoch.started_at,
                "after_loss": after_loss,
                "previous": None if self.current is None else self.current.id,
                "refuse_before": refuse_before if after_loss else None,
            },
        )
        return epoch, True

    async def _recorded_before(self) -> bool:
        """Whether the audit log holds an earlier epoch, i.e. this store had data before.
        When the database cannot say, assume it did (refusing is the safe side)."""
        try:
            async with self._database.session() as session:
                statement = select(AuditEvent.id).where(AuditEvent.action == EPOCH_ACTION)
                return (await session.exec(statement.limit(1))).first() is not None
        except Exception:
            logger.warning("cannot read earlier store epochs from the database", exc_info=True)
            return True


@asynccontextmanager
async def epoch_watch(epochs: StoreEpochs, interval: float = CHECK_INTERVAL) -> AsyncIterator[None]:
    """Reads the epoch every `interval` seconds in the background, so a loss is noticed (and
    logged, counted, audited) even while nobody scans."""

    async def watch() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await epochs.check()
            except StoreUnavailable as error:
                logger.debug("store epoch check skipped: %s", error)
            except Exception:
                logger.exception("store epoch check failed")

    task = asyncio.create_task(watch(), name="store-epoch-watch")
    try:
        yield
    finally:
        await stop_tasks([task])
