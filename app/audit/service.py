"""Audit operations run outside a request (the `ssc audit` commands)."""

from __future__ import annotations

from app.audit.chain import ChainReport, verify_chain
from app.db import Database


async def verify_stored_chain(database_url: str) -> ChainReport:
    """Verifies the whole chain in one read-only session of a short-lived engine."""
    database = Database(database_url)
    try:
        async with database.session() as session:
            return await verify_chain(session)
    finally:
        await database.dispose()
