"""Audit operations run outside a request (the `ssc audit` commands)."""

from __future__ import annotations

from dataclasses import replace

from app.audit.chain import ChainReport, verify_chain
from app.audit.checkpoints import check_latest_checkpoint
from app.db import Database


async def verify_stored_chain(
    database_url: str, checkpoint_key: bytes | None = None
) -> ChainReport:
    """Verifies the whole chain in one read-only session of a short-lived engine, then (with
    `checkpoint_key`) the latest checkpoint: the chain must still reach the head it names."""
    database = Database(database_url)
    try:
        async with database.session() as session:
            report = await verify_chain(session)
            if not report.intact or checkpoint_key is None:
                return report
            checked = await check_latest_checkpoint(session, checkpoint_key)
    finally:
        await database.dispose()
    if checked.checkpoint is None:
        return replace(report, checkpoint="no checkpoint written yet")
    if checked.problem is not None:
        return replace(report, first_broken_id=checked.checkpoint.row_id, reason=checked.problem)
    return replace(
        report, checkpoint=f"reaches the latest checkpoint ({checked.checkpoint.describe()})"
    )
