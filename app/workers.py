"""Background work on the audit stream: persisting it to SQL, and the misuse watch on what was
persisted. It runs inside each API worker by default, or, with
`SSC_AUDIT_CONSUMER_IN_API=false`, in its own process (`ssc audit consume`), which takes its
CPU off the verify path (load/RESULTS.md: at moderate rates it costs about as much as the
requests themselves).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.audit.consumer import AuditConsumer, audit_consumer
from app.config import Settings
from app.long_lived import freeze_long_lived
from app.misuse.watch import MisuseWatch
from app.runtime import Runtime


@asynccontextmanager
async def watched_audit_consumer(runtime: Runtime) -> AsyncIterator[AuditConsumer]:
    async with audit_consumer(runtime, on_persisted=MisuseWatch(runtime).on_persisted) as worker:
        yield worker


async def run_audit_worker(
    settings: Settings, stop: asyncio.Event, *, freeze_after_start: bool = False
) -> None:
    """`ssc audit consume`: drains the shared stream until `stop` is set, then flushes.
    `freeze_after_start`: for its own process (`app.long_lived`)."""
    runtime = await Runtime.start(settings)
    try:
        async with watched_audit_consumer(runtime):
            if freeze_after_start:
                freeze_long_lived()
            await stop.wait()
    finally:
        await runtime.close()
