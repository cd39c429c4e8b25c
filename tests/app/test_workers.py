"""The audit consumer in its own process (`ssc audit consume`) instead of inside the API."""

import asyncio

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from api.app import create_app
from app.audit.consumer import DEFAULT_GROUP
from app.audit.log import AUDIT_STREAM, record
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


async def stream_groups(settings: Settings) -> tuple[int, dict[str, dict[str, object]]]:
    """How many of this test's events the audit stream holds, and its consumer groups, as
    Redis reports them."""
    assert settings.redis_url is not None
    client = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    key = f"{settings.redis_namespace}:{AUDIT_STREAM}"
    try:
        entries = await client.xrange(key)
        length = sum(1 for _, fields in entries if fields["action"] == "test.event")
        groups = {group["name"]: group for group in await client.xinfo_groups(key)}
    finally:
        await client.aclose()
    return length, groups


@pytest.mark.parametrize("settings", ["servers"], indirect=True)
async def test_the_api_leaves_the_stream_to_the_external_worker(settings: Settings) -> None:
    external = settings.model_copy(update={"audit_consumer_in_api": False})
    app = create_app(external)
    async with app.router.lifespan_context(app):
        for number in range(5):
            await record(app.state.runtime.store, "test.event", "tester", str(number))
        # The API started no consumer: the entries wait in the stream, read by no group.
        assert app.state.audit_consumer is None
        length, groups = await stream_groups(settings)
        assert length == 5
        assert DEFAULT_GROUP not in groups
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
    _, groups = await stream_groups(settings)
    assert groups[DEFAULT_GROUP]["pending"] == 0
