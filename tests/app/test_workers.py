"""The audit consumer in its own process (`ssc audit consume`) instead of inside the API."""

import asyncio

import pytest
import sqlalchemy as sa

from api.app import create_app
from app.audit.log import record
from app.config import Settings, SettingsError, load_settings
from app.db import Database
from app.workers import run_audit_worker


def test_an_external_consumer_needs_redis() -> None:
    with pytest.raises(SettingsError, match="SSC_REDIS_URL"):
        load_settings(environment="test", audit_consumer_in_api=False, redis_url=None)


async def audit_rows(database_url: str) -> int:
    """The test's own events (the service audits its own, such as the store epoch, too)."""
    database = Database(database_url)
    try:
        async with database.engine.connect() as connection:
            count = (
                await connection.execute(
                    sa.text("SELECT count(*) FROM audit_events WHERE action = 'test.event'")
                )
            ).scalar_one()
    finally:
        await database.dispose()
    return int(count)


@pytest.mark.parametrize("settings", ["servers"], indirect=True)
async def test_the_api_leaves_the_stream_to_the_external_worker(settings: Settings) -> None:
    external = settings.model_copy(update={"audit_consumer_in_api": False})
    app = create_app(external)
    async with app.router.lifespan_context(app):
        for number in range(5):
            await record(app.state.runtime.store, "test.event", "tester", str(number))
        await asyncio.sleep(0.5)
        assert await audit_rows(settings.database_url) == 0

        stop = asyncio.Event()
        worker = asyncio.create_task(run_audit_worker(external, stop))
        for _ in range(100):
            if await audit_rows(settings.database_url) == 5:
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(worker, timeout=10)
    assert await audit_rows(settings.database_url) == 5
