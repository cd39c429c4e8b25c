"""Refills the fast store from the database at start.

Redis normally keeps its data, but the memory store starts empty and a Redis may have been
flushed; the verify path must never mistake "not in the store" for "no such card".
"""

from __future__ import annotations

from app.cards.service import refill_card_snapshots
from app.clients.service import warm_scanner_principals
from app.runtime import Runtime


async def warm_store(runtime: Runtime) -> None:
    """Writes every card snapshot and scanner principal the verify path reads."""
    async with runtime.database.session() as session:
        await refill_card_snapshots(session, runtime)
        await warm_scanner_principals(session, runtime.store)
